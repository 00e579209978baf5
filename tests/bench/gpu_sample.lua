-- tests/bench/gpu_sample.lua — sampling on the GPU: random weights of a
-- Qwen2 shape, P random prompts of T tokens, G samples each, NEW tokens
-- per sample (no early stop), temperature 1, the KV cache and the C
-- decoder on the card; timed after a warm-up call. tests/bench/
-- gpu_sample_torch.py is Hugging Face transformers' generate on the same
-- card (batched, KV cache, bf16); tests/device/check.sh prints the two side
-- by side, and this one again with EMPO_CUDA_GRAPHS=1 (the decode steps as
-- CUDA graphs; graphs=recorded/replayed in its line).
--
--     empo run tests/bench/gpu_sample.lua [shape] [P] [G] [T] [NEW] [bf16]
--       shape: qwen05, qwen15 or tiny (tests/bench/gpu_shapes.lua); defaults
--       qwen05 16 8 256 512 1 (bf16 1: the decoder reads bf16 weights)
-- Prints one line: gpu_sample shape=... tokens_per_s=... peak_mb=... (and the card).
local empo = require 'empo'
local shapes = require 'gpu_shapes'

local shape, P, G = arg[1] or 'qwen05', tonumber(arg[2] or 16), tonumber(arg[3] or 8)
local T, NEW, bf16 = tonumber(arg[4] or 256), tonumber(arg[5] or 512), (arg[6] or '1') == '1'
local cfg = shapes.config(shape)

local gpu, why = empo.cuda_device()
if not gpu then
  io.stderr:write('gpu_sample: no CUDA device: ' .. why .. '\n')
  os.exit(77)
end

local model = empo.models.new(cfg, 1):to('cuda')
local g = empo.Generator(0, 3)
local prompts = {}
for i = 1, P do prompts[i] = g:randint(0, cfg.vocab_size - 300, T):tolist() end
local o = { n = G, temperature = 1.0, max_new_tokens = NEW, ignore_eos = true, seed = 1, bf16_weights = bf16,
            max_cache_bytes = 64 * 2 ^ 30 }

local clock = require('empo.run.log').clock
empo.sample.generate(model, nil, prompts, o)   -- warm-up: the pool's blocks, cuBLASLt's plans
empo.collect()
local t0 = clock()
local out, st = empo.sample.generate(model, nil, prompts, o)
local secs = clock() - t0
local tokens = 0
for _, s in ipairs(out) do tokens = tokens + #s.ids end
local mem = empo.memory().cuda or { peak = 0 }
local graphs = st.cuda_graphs and string.format('%d/%d', st.cuda_graphs.recorded, st.cuda_graphs.replayed) or 'none'
print(string.format('gpu_sample shape=%s prompts=%d n=%d prompt_len=%d new=%d weights=%s decode=%s graphs=%s '
                    .. 'tokens_per_s=%.0f seconds=%.2f peak_mb=%.0f gpu="%s"', shape, P, G, T, NEW, st.weights,
                    st.decode, graphs, tokens / secs, secs, mem.peak / 2 ^ 20, gpu))
