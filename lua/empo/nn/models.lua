-- empo.nn.models (empo.models) — decoder models of the Qwen2 / Llama /
-- Mistral family (empo.nn.transformer) from a Hugging Face directory (config.json + model.safetensors or sharded
-- model-0000N-of-0000M.safetensors with model.safetensors.index.json), and
-- back to the same layout, so checkpoints round-trip with the Hugging Face
-- ecosystem.
--
--     local model = empo.models.from_pretrained('models/arith-base')
--     local logits = model:forward(ids)          -- ids i64 [B, T] -> f32 [B, T, V]
--     model:save_pretrained('runs/x/checkpoint-100')
--
-- Weights stored as bf16/f16 are converted to f32 (the compute dtype) on
-- load. The model's definition is transformer.lua; tokenizers are
-- empo.text.tokenizer's.
local empo = require 'empo'
local nn = require 'empo.nn'
local json = require 'empo.io.json'
local fs = require 'empo.io.fs'

local format = string.format
local M = {}

-- Per-family defaults and bias layout. Qwen2 has biases on q/k/v only;
-- Llama's attention_bias puts them on q/k/v/o; Mistral has none.
local FAMILIES = {
  qwen2 = { architecture = 'Qwen2ForCausalLM', bias = function() return true, false end,
            rope_theta = 1000000, max_position_embeddings = 32768, rms_norm_eps = 1e-6 },
  llama = { architecture = 'LlamaForCausalLM', bias = function(c) return c.attention_bias == true, c.attention_bias == true end,
            rope_theta = 10000, max_position_embeddings = 2048, rms_norm_eps = 1e-6 },
  mistral = { architecture = 'MistralForCausalLM', bias = function() return false, false end,
              rope_theta = 10000, max_position_embeddings = 32768, rms_norm_eps = 1e-5 },
}
M.families = FAMILIES

local function family_names()
  local n = {}
  for k in pairs(FAMILIES) do n[#n + 1] = k end
  table.sort(n)
  return table.concat(n, ', ')
end

-- The runtime's config (plain Lua values) from a config.json table. Every
-- problem is an error naming `source` and the field.
function M.config(hf, source)
  source = source or 'config'
  if type(hf) ~= 'table' then error(format('%s: expected a JSON object', source), 2) end
  local fam = FAMILIES[hf.model_type]
  if not fam then
    error(format('%s: model_type %s is not supported (supported: %s)', source, tostring(hf.model_type), family_names()), 2)
  end
  local function int(name, default)
    local v = hf[name]
    if v == nil or v == json.null then v = default end
    if type(v) ~= 'number' or v % 1 ~= 0 or v < 1 then
      error(format('%s: %s must be a positive integer, got %s', source, name, tostring(v)), 3)
    end
    return v
  end
  local function num(name, default)
    local v = hf[name]
    if v == nil or v == json.null then v = default end
    if type(v) ~= 'number' or v ~= v or v <= 0 then
      error(format('%s: %s must be a positive number, got %s', source, name, tostring(v)), 3)
    end
    return v
  end
  local c = { model_type = hf.model_type }
  c.vocab_size = int('vocab_size')
  c.hidden_size = int('hidden_size')
  c.intermediate_size = int('intermediate_size')
  c.num_hidden_layers = int('num_hidden_layers')
  c.num_attention_heads = int('num_attention_heads')
  c.num_key_value_heads = int('num_key_value_heads', c.num_attention_heads)
  c.head_dim = int('head_dim', math.floor(c.hidden_size / c.num_attention_heads))
  c.rms_norm_eps = num('rms_norm_eps', fam.rms_norm_eps)
  c.rope_theta = num('rope_theta', fam.rope_theta)
  c.max_position_embeddings = int('max_position_embeddings', fam.max_position_embeddings)
  c.initializer_range = num('initializer_range', 0.02)
  c.tie_word_embeddings = hf.tie_word_embeddings == true
  c.torch_dtype = type(hf.torch_dtype) == 'string' and hf.torch_dtype or 'float32'
  c.qkv_bias, c.o_bias = fam.bias(hf)
  if c.num_attention_heads % c.num_key_value_heads ~= 0 then
    error(format('%s: num_attention_heads %d is not a multiple of num_key_value_heads %d', source,
                 c.num_attention_heads, c.num_key_value_heads), 2)
  end
  if hf.head_dim == nil and c.hidden_size % c.num_attention_heads ~= 0 then
    error(format('%s: hidden_size %d is not a multiple of num_attention_heads %d (and no head_dim)', source,
                 c.hidden_size, c.num_attention_heads), 2)
  end
  if c.head_dim % 2 ~= 0 then error(format('%s: head_dim %d must be even for rotary embeddings', source, c.head_dim), 2) end
  if hf.hidden_act ~= nil and hf.hidden_act ~= 'silu' then
    error(format('%s: hidden_act %s is not supported (only silu)', source, tostring(hf.hidden_act)), 2)
  end
  if hf.rope_scaling ~= nil and hf.rope_scaling ~= json.null then
    error(format('%s: rope_scaling is not supported yet', source), 2)
  end
  return c
end

-- config.json contents for a runtime config.
function M.hf_config(c)
  local fam = FAMILIES[c.model_type]
  local hf = {
    architectures = json.array{ fam.architecture }, model_type = c.model_type, hidden_act = 'silu',
    vocab_size = c.vocab_size, hidden_size = c.hidden_size, intermediate_size = c.intermediate_size,
    num_hidden_layers = c.num_hidden_layers, num_attention_heads = c.num_attention_heads,
    num_key_value_heads = c.num_key_value_heads, head_dim = c.head_dim, rms_norm_eps = c.rms_norm_eps,
    rope_theta = c.rope_theta, max_position_embeddings = c.max_position_embeddings,
    initializer_range = c.initializer_range, tie_word_embeddings = c.tie_word_embeddings,
    torch_dtype = 'float32',
  }
  if c.model_type == 'llama' then hf.attention_bias = c.qkv_bias end
  for k, v in pairs(c.extra or {}) do hf[k] = v end
  return hf
end

-- A new randomly initialised model (normal(0, initializer_range) from
-- Philox stream `seed`). cfg may be a runtime config or config.json fields.
function M.new(cfg, seed)
  if type(cfg) ~= 'table' then error('models.new: expected a config table, got ' .. type(cfg), 2) end
  local c = {}   -- a copy: the caller's table (maybe another model's config) stays as it was
  for k, v in pairs(cfg) do c[k] = v end
  if c.qkv_bias == nil then
    local ok, r = pcall(M.config, c, 'models.new')
    if not ok then error(r, 2) end
    c = r
  end
  cfg = c
  cfg.seed = seed or cfg.seed or 0
  local model = nn.Transformer(cfg)
  model.save_pretrained = M.save_pretrained
  return model
end

function M.from_pretrained(dir, opts)
  opts = opts or {}
  if type(dir) ~= 'string' then error('from_pretrained: expected a directory path, got ' .. type(dir), 2) end
  local cfg_path = dir .. '/config.json'
  if not fs.exists(cfg_path) then error(format('from_pretrained: %s not found (is %s a model directory?)', cfg_path, dir), 2) end
  local cfg = M.config(json.read_file(cfg_path), cfg_path)
  if not fs.exists(dir .. '/model.safetensors') and not fs.exists(dir .. '/model.safetensors.index.json') then
    -- said before the model is built (at a real size that is gigabytes and seconds)
    error(format('from_pretrained: %s: a directory without model.safetensors or model.safetensors.index.json', dir), 2)
  end
  if opts.dtype == 'bf16' then return M.load_bf16(dir, cfg, opts) end
  if opts.dtype ~= nil and opts.dtype ~= 'f32' then
    error(format("from_pretrained: dtype must be 'f32' or 'bf16', got %s", tostring(opts.dtype)), 2)
  end
  local model = M.new(cfg, 0)
  local weights = empo.safetensors.load(dir, { dtype = 'f32' })
  if cfg.tie_word_embeddings then weights['lm_head.weight'] = nil end   -- some tied checkpoints store it anyway
  model:load_state(weights, { source = dir, strict = opts.strict })
  for _, t in pairs(weights) do t:free() end
  return model
end

-- from_pretrained(dir, { dtype = 'bf16' }): every matrix kept in bf16 (a
-- frozen base: empo.nn.lora), norms and biases in f32. The model is built
-- without weights and takes each tensor as the file gives it (a bf16
-- checkpoint: views of the mapped file, no copy), so its peak is one
-- bf16 model, not an f32 model and a copy.
function M.load_bf16(dir, cfg, opts)
  cfg.empty_weights = 'bf16'
  local model = M.new(cfg, 0)
  model.config.empty_weights = nil
  local f = empo.safetensors.open(dir)
  local weights = {}
  for _, p in ipairs(model:named_parameters()) do
    if f:has(p.name) then
      -- a bf16 matrix is taken as a view of the mapped file; everything else is converted or copied, so
      -- that no small view keeps a converted file's pages mapped
      local matrix = p.tensor:dim() == 2
      local want = matrix and 'bf16' or 'f32'
      local same = f:info(p.name).dtype == want
      if matrix and same then
        weights[p.name] = f:get(p.name)
      elseif same then
        local view = f:get(p.name)
        weights[p.name] = view:clone()
        view:free()
      else
        weights[p.name] = f:get(p.name, want)
      end
    end
  end
  local extra = {}
  for _, name in ipairs(f:names()) do
    if weights[name] == nil and not (cfg.tie_word_embeddings and name == 'lm_head.weight') then
      extra[#extra + 1] = name
    end
  end
  if #extra > 0 and opts.strict ~= false then
    f:close()
    table.sort(extra)
    error(format('%s: %d unexpected tensor(s): %s', dir, #extra, table.concat(extra, ', ', 1, math.min(#extra, 8))), 2)
  end
  f:close()      -- (views of the file keep its mapping; converted tensors need none: its pages go)
  model:adopt_state(weights, { source = dir })
  return model
end

-- Writes config.json and model.safetensors (sharded with an index when
-- opts.max_shard_bytes is given), each atomically.
function M.save_pretrained(model, dir, opts)
  opts = opts or {}
  local ok, err = fs.make_dirs(dir)
  if not ok then error('save_pretrained: ' .. err, 2) end
  json.write_file(dir .. '/config.json', M.hf_config(model.config))
  empo.safetensors.save(dir .. '/model.safetensors', model:state(), { format = 'pt' },
                        { max_shard_bytes = opts.max_shard_bytes })
end

return M
