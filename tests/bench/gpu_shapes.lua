-- tests/bench/gpu_shapes.lua — the model shapes the GPU benchmarks run
-- (random weights): Qwen2.5-0.5B and 1.5B as their config.json give them,
-- and a tiny one for a smoke run on the host emulation. gpu_step_torch.py
-- holds the same table for the PyTorch side.
local M = {}

local SHAPES = {
  qwen05 = { hidden_size = 896, intermediate_size = 4864, num_hidden_layers = 24, num_attention_heads = 14,
             num_key_value_heads = 2, vocab_size = 151936, tie_word_embeddings = true, rope_theta = 1000000 },
  qwen15 = { hidden_size = 1536, intermediate_size = 8960, num_hidden_layers = 28, num_attention_heads = 12,
             num_key_value_heads = 2, vocab_size = 151936, tie_word_embeddings = true, rope_theta = 1000000 },
  tiny = { hidden_size = 64, intermediate_size = 128, num_hidden_layers = 2, num_attention_heads = 4,
           num_key_value_heads = 2, vocab_size = 512, tie_word_embeddings = true, rope_theta = 10000 },
}

-- the HF config table of a shape (a fresh copy)
function M.config(name)
  local s = SHAPES[name]
  if not s then error('shape: qwen05, qwen15 or tiny, got ' .. tostring(name), 2) end
  local cfg = { model_type = 'qwen2', rms_norm_eps = 1e-6, max_position_embeddings = 32768, initializer_range = 0.02 }
  for k, v in pairs(s) do cfg[k] = v end
  return cfg
end

return M
