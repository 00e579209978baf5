-- tests/nn/test_models.lua — empo.nn / empo.models without an oracle:
-- module protocol and Hugging Face names, config.json validation, save ->
-- load bit-exact round trips (single file and sharded), corrupt inputs,
-- and the KV-cache path against the full forward.
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_models')

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function hf(over) return check.tiny_hf({ tie_word_embeddings = false }, over) end

local function max_abs_diff(a, b) return (a - b):abs():max():item() end

-- ---- names and the module protocol ----
local m = empo.models.new(hf(), 1)
local names = {}
for _, p in ipairs(m:named_parameters()) do names[#names + 1] = p.name end
c.eq(names[1], 'model.embed_tokens.weight', 'first parameter name')
c.eq(names[2], 'model.layers.0.input_layernorm.weight')
c.eq(names[3], 'model.layers.0.self_attn.q_proj.weight')
c.eq(names[4], 'model.layers.0.self_attn.q_proj.bias', 'qwen2 has q/k/v biases')
c.eq(names[#names], 'lm_head.weight', 'untied head last')
c.eq(#names, 1 + 2 * 12 + 1 + 1, 'parameter count (embed, 2 x 12 per layer, norm, head)')
c.eq(m:num_parameters(), 61 * 32 * 2 + 32 + 2 * (2 * 32 + (32 * 32 + 32) + 2 * (16 * 32 + 16) + 32 * 32 + 3 * 32 * 48))
c.eq(empo.models.new(hf{ tie_word_embeddings = true }):state()['lm_head.weight'], nil, 'tied: no lm_head')
local llama = empo.models.new(hf{ model_type = 'llama', attention_bias = true })
c.ok(llama:state()['model.layers.0.self_attn.o_proj.bias'] ~= nil, 'llama attention_bias adds o_proj.bias')
c.eq(empo.models.new(hf{ model_type = 'mistral' }):state()['model.layers.0.self_attn.q_proj.bias'], nil, 'mistral: no biases')
c.ok(m:eval().training == false and m.model.layers:at(1).mlp.training == false, 'eval() reaches every module')

-- ---- config.json validation ----
c.raises(function() empo.models.config(hf{ model_type = 'gpt2' }, 'x/config.json') end,
         'x/config.json: model_type gpt2 is not supported')
c.raises(function() empo.models.config(hf{ num_key_value_heads = 3 }, 'cfg') end,
         'num_attention_heads 4 is not a multiple of num_key_value_heads 3')
c.raises(function() empo.models.config(hf{ hidden_size = -4 }, 'cfg') end, 'hidden_size must be a positive integer')
c.raises(function() empo.models.config(hf{ vocab_size = 'many' }, 'cfg') end, 'vocab_size must be a positive integer')
c.raises(function() empo.models.config(hf{ hidden_act = 'gelu' }, 'cfg') end, 'hidden_act gelu is not supported')

-- ---- save -> load round trip, bit-exact, and the same logits ----
local ids = empo.randint(0, 61, 2, 9)
local logits = empo.no_grad(function() return m(ids) end)
m:save_pretrained(tmp .. '/one')
local m2 = empo.models.from_pretrained(tmp .. '/one')
local exact = true
for name, t in pairs(m:state()) do
  if max_abs_diff(t, m2:state()[name]) ~= 0 then exact = false end
end
c.ok(exact, 'every tensor round-trips bit-exactly')
c.eq(max_abs_diff(logits, empo.no_grad(function() return m2(ids) end)), 0, 'same logits after reload')
m:save_pretrained(tmp .. '/sharded', { max_shard_bytes = 20000 })
local f = io.open(tmp .. '/sharded/model.safetensors.index.json')
c.ok(f ~= nil, 'sharded save writes an index')
if f then f:close() end
local m3 = empo.models.from_pretrained(tmp .. '/sharded')
c.eq(max_abs_diff(logits, empo.no_grad(function() return m3(ids) end)), 0, 'sharded checkpoint gives the same logits')

-- ---- corrupt inputs ----
c.raises(function() empo.models.from_pretrained(tmp .. '/nowhere') end, 'config.json not found')
os.execute("mkdir -p '" .. tmp .. "/bad' && cp '" .. tmp .. "/one/model.safetensors' '" .. tmp .. "/bad/'")
local cf = io.open(tmp .. '/bad/config.json', 'w')
cf:write('{"model_type": "qwen2", "vocab_size": 61,')
cf:close()
c.raises(function() empo.models.from_pretrained(tmp .. '/bad') end, 'config.json: malformed JSON')
empo.json.write_file(tmp .. '/bad/config.json', hf{ hidden_size = 64, head_dim = 8 })
c.raises(function() empo.models.from_pretrained(tmp .. '/bad') end, 'the model expects')
empo.json.write_file(tmp .. '/bad/config.json', hf{ num_hidden_layers = 3 })
c.raises(function() empo.models.from_pretrained(tmp .. '/bad') end, 'missing 12 tensor(s): model.layers.2.')
empo.json.write_file(tmp .. '/bad/config.json', hf())
do  -- a truncated weights file
  local src = io.open(tmp .. '/one/model.safetensors', 'rb')
  local bytes = src:read('*a')
  src:close()
  local out = io.open(tmp .. '/bad/model.safetensors', 'wb')
  out:write(bytes:sub(1, math.floor(#bytes / 2)))
  out:close()
end
c.raises(function() empo.models.from_pretrained(tmp .. '/bad') end, 'model.safetensors')

-- ---- one model, two paths: cached incremental decoding = full forward ----
for _, over in ipairs({ {}, { model_type = 'llama', num_key_value_heads = 1 }, { tie_word_embeddings = true } }) do
  local mm = empo.models.new(hf(over), 7)
  local x = empo.randint(0, 61, 3, 11)
  empo.no_grad(function()
    local full = mm(x)
    local cache = mm:new_cache(3, 16)
    local worst = max_abs_diff(mm(x:narrow(2, 1, 4), { cache = cache }), full:narrow(2, 1, 4))
    for t = 5, 11 do
      worst = math.max(worst, max_abs_diff(mm(x:narrow(2, t, 1), { cache = cache }), full:narrow(2, t, 1)))
    end
    c.ok(worst < 1e-5, string.format('cached decoding matches the full forward (%s): max diff %.2e',
                                     over.model_type or 'qwen2', worst))
    c.raises(function() mm(x, { cache = cache }) end, 'exceed its 16')
  end)
end

-- ---- hidden(ids, {last = ...}): one position per batch row = the full forward's rows ----
for _, over in ipairs({ {}, { model_type = 'llama', num_key_value_heads = 1 } }) do
  local mm = empo.models.new(hf(over), 9)
  local x = empo.randint(0, 61, 3, 9)
  local last = { 8, 0, 4 }
  local function rows_diff(full, part, offset)
    local worst = 0
    for b = 1, 3 do
      worst = math.max(worst, max_abs_diff(full:select(1, b):select(1, last[b] + 1 - (offset or 0)),
                                           part:select(1, b):select(1, 1)))
    end
    return worst
  end
  empo.no_grad(function()
    local full = mm:hidden(x)
    local part = mm:hidden(x, { last = last })
    c.eq(part:size(), { 3, 1, 32 }, 'last: one row per batch row')
    c.ok(rows_diff(full, part) < 1e-5, 'last: the full forward\'s rows (' .. (over.model_type or 'qwen2') .. ')')
    -- after 4 cached tokens, and the cache still gets every position
    local ca, cb = mm:new_cache(3, 16), mm:new_cache(3, 16)
    mm:hidden(x:narrow(2, 1, 4), { cache = ca }); mm:hidden(x:narrow(2, 1, 4), { cache = cb })
    local f2 = mm:hidden(x, { cache = ca })
    local p2 = mm:hidden(x, { cache = cb, last = empo.tensor(last, { dtype = 'i64' }) })
    c.ok(rows_diff(f2, p2) < 1e-5 and cb.len == 13 and max_abs_diff(ca.k[2], cb.k[2]) == 0,
         'last after cached tokens: same rows, same cache')
    -- left padding (positions) and a key mask
    local pos = empo.tensor({ { 0, 0, 0, 1, 2, 3, 4, 5, 6 }, { 0, 1, 2, 3, 4, 5, 6, 7, 8 }, { 0, 0, 0, 0, 0, 1, 2, 3, 4 } },
                            { dtype = 'i64' })
    local mask = empo.tensor({ { 0, 0, 1, 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 0, 1, 1, 1, 1, 1 } },
                             { dtype = 'u8' })
    local f3 = mm:hidden(x, { positions = pos, key_mask = mask })
    local p3 = mm:hidden(x, { positions = pos, key_mask = mask, last = last })
    c.ok(rows_diff(f3, p3) < 1e-5, 'last with positions and a key mask')
  end)
  c.raises(function() mm:hidden(x, { last = { 9, 0, 0 } }) end, 'opts.last[1] = 9 is not a position of the 9 ids')
  c.raises(function() mm:hidden(x, { last = { 1, 2 } }) end, 'opts.last has 2 positions for 3 batch rows')
  c.raises(function() mm:hidden(x, { last = empo.zeros(2, { dtype = 'i64' }) }) end, 'tensor of 3 positions')
  c.raises(function() mm:hidden(x, { last = { 1.5, 0, 0 } }) end, 'opts.last[1] = 1.5')
end

-- ---- checkpoints pair optimizer moments by parameter, whatever the order ----
do
  local a = empo.models.new(hf(), 3)
  local opt = empo.optim.adamw{ params = a:state(), lr = 1e-2 }      -- sorted-name order
  local loss = empo.train.lm_loss(a, empo.randint(0, 61, 2, 6))
  loss:backward()
  opt:step()
  empo.train.save_checkpoint(tmp .. '/run', { model = a, optimizer = opt, step = 1 })
  local b = empo.models.new(hf(), 4)
  local opt_b = empo.optim.adamw{ params = b:parameters(), lr = 1e-2 }   -- model order
  empo.train.load_checkpoint(tmp .. '/run', { model = b, optimizer = opt_b })
  local worst = 0
  for i, p in ipairs(b:named_parameters()) do
    local ja
    for j, t in ipairs(opt.params) do if t == a:state()[p.name] then ja = j end end
    worst = math.max(worst, max_abs_diff(opt_b.m[i], opt.m[ja]), max_abs_diff(opt_b.v[i], opt.v[ja]))
  end
  c.eq(worst, 0, 'moments restored to their own parameters across optimizer orders')
  c.eq(opt_b.t, 1, 'optimizer step count restored')
end

os.execute("rm -rf '" .. tmp .. "'")
c.done()
