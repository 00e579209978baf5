-- tests/generate/test_bf16_weights.lua — sampling with bf16 copies of the
-- weights (sample option bf16_weights): the C decoder on the copies gives
-- the bits of the f32 decoder on a model whose projections and LM head
-- were rounded to bf16 (every token, log-prob and entropy, an untied model
-- so the embedding stays f32 in both); on a tied model the log-probs move
-- a little from f32's, not nothing; the copies are made at each call, so a
-- changed weight is seen at once; a model on the Lua path stays f32 and the
-- stats say so; mixed dtypes are refused by name; and the trainer, when
-- its sampler runs on bf16 weights, recomputes the old log-probs in f32.
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_bf16_weights')

local PROMPTS = { { 5, 9, 2, 33, 7, 1, 60, 12, 8 }, { 41 }, { 3, 3, 3, 17 } }
local OPTS = { n = 4, temperature = 1.0, max_new_tokens = 16, seed = 3, ignore_eos = true, token_stats = true }
local function with(over) return check.with(OPTS, over) end

local ROUNDED = { 'q_proj', 'k_proj', 'v_proj', 'o_proj' }
local MLP = { 'gate_proj', 'up_proj', 'down_proj' }

-- the model's projections and LM head rounded to bf16 (and back to f32), in place
local function round_model(model)
  local function round(lin) lin.weight:copy_(lin.weight:detach():bfloat16():float()) end
  for l = 1, model.config.num_hidden_layers do
    local b = model.model.layers:at(l)
    for _, n in ipairs(ROUNDED) do round(b.self_attn[n]) end
    for _, n in ipairs(MLP) do round(b.mlp[n]) end
  end
  round(model.lm_head)
end

-- ---- the bits of the rounded f32 model ----
local cfg = check.tiny_hf{ tie_word_embeddings = false, max_position_embeddings = 64 }
local model = empo.models.new(cfg, 5)
local out_bf, st_bf = empo.sample.generate(model, nil, PROMPTS, with({ bf16_weights = true }))
c.eq(st_bf.weights, 'bf16', 'the decode steps read bf16 weights')
c.eq(st_bf.decode, 'c', 'through the C decoder')
local out_f32, st_f32 = empo.sample.generate(model, nil, PROMPTS, with())
c.eq(st_f32.weights, 'f32', 'off by default')
local rounded = empo.models.new(cfg, 5)
round_model(rounded)
local out_r = empo.sample.generate(rounded, nil, PROMPTS, with())
local same, moved = true, 0
for i, a in ipairs(out_bf) do
  local r, f = out_r[i], out_f32[i]
  for t = 1, #a.ids do
    same = same and a.ids[t] == r.ids[t] and a.logprobs[t] == r.logprobs[t] and a.entropy[t] == r.entropy[t]
  end
  for t = 1, #a.ids do   -- against f32: up to the first token drawn otherwise
    if a.ids[t] ~= f.ids[t] then break end
    moved = math.max(moved, math.abs(a.logprobs[t] - f.logprobs[t]))
  end
end
c.ok(same, 'bf16 sampling = f32 sampling of the rounded model, bit for bit (tokens, log-probs, entropies)')
c.ok(moved > 0 and moved < 0.05, string.format('the log-probs moved from f32\'s by at most %.2e (> 0, < 0.05)', moved))

-- ---- the copies follow the weights ----
local q = model.model.layers:at(1).self_attn.q_proj.weight
q:copy_(q:detach() * 1.5)
local out_new = empo.sample.generate(model, nil, PROMPTS, with({ bf16_weights = true }))
local changed = false
for i, a in ipairs(out_new) do
  for t = 1, #a.ids do changed = changed or a.logprobs[t] ~= out_bf[i].logprobs[t] end
end
c.ok(changed, 'a weight changed after one call is in the next call\'s bf16 copy')

-- ---- a tied model: the head's copy is of the embedding, the lookup stays f32 ----
local tied = empo.models.new(check.tiny_hf{ tie_word_embeddings = true, max_position_embeddings = 64 }, 6)
local a = empo.sample.generate(tied, nil, PROMPTS, with({ bf16_weights = true }))
local b = empo.sample.generate(tied, nil, PROMPTS, with())
local worst = 0
for i = 1, #a do
  for t = 1, #a[i].ids do
    if a[i].ids[t] ~= b[i].ids[t] then break end
    worst = math.max(worst, math.abs(a[i].logprobs[t] - b[i].logprobs[t]))
  end
end
c.ok(worst > 0 and worst < 0.05, string.format('tied: log-probs within %.2e of f32\'s', worst))

-- ---- the Lua path stays f32, and says so ----
local _, st = empo.sample.generate(tied, nil, PROMPTS, with({ bf16_weights = true, c_decode = false }))
c.eq(st.weights, 'f32', 'the Lua model has no bf16 path')
c.ok(st.decode_note and st.decode_note:find('bf16_weights needs the C decoder', 1, true) ~= nil,
     'and the note says why: ' .. tostring(st.decode_note))
c.raises(function() empo.sample.generate(tied, nil, PROMPTS, with({ bf16_weights = 1 })) end,
         'bf16_weights must be true or false')

-- ---- mixed dtypes are refused by name ----
local ffi = require 'ffi'
local Engine, decoder = require 'empo.generate.engine', require 'empo.generate.decoder'
local o = with({ n = 1 })
o.sampling = ffi.new('empo_sampling', { 1.0, 0, 1.0, 0.0 })
o.stop_strings, o.stop_ids, o.stop_keep, o.c_decode = {}, {}, 0, true
o.max_cache_bytes, o.prefill_tokens, o.max_batch = 2 ^ 30, 8192, 4
local list = { { ids = PROMPTS[1], max_new = 4, key = 1ULL } }
local e = Engine.new(model, nil, list, o)
c.eq(e.decoder.kind, 'c', 'an engine with a C decoder')
local function refusal(edit)
  local spec = model:decoder_spec()
  edit(spec)
  local d, msg = decoder.c(model, spec, e.cache, e.ids_t)
  if d then d:free() end
  return d == nil and msg or 'accepted'
end
local msg = refusal(function(spec)
  decoder.bf16_copies(spec)
  spec.layer[2].up = model.model.layers:at(2).mlp.up_proj.weight
end)
c.ok(msg:find('layer 1 up', 1, true) ~= nil and msg:find('must all be f32 or all bf16', 1, true) ~= nil,
     'bf16 weights with one f32 among them: ' .. msg)
msg = refusal(function(spec) spec.layer[1].q = spec.layer[1].q:detach():bfloat16() end)
c.ok(msg:find('layer 0 gate', 1, true) ~= nil and msg:find('must all be f32 or all bf16', 1, true) ~= nil,
     'layer 0\'s q in bf16, the rest f32: ' .. msg)
msg = refusal(function(spec) spec.layer[2].gate = spec.layer[2].gate:detach():bfloat16() end)
c.ok(msg:find('layer 1 gate', 1, true) ~= nil and msg:find('must all be f32 or all bf16', 1, true) ~= nil,
     'f32 weights with one bf16 among them: ' .. msg)
msg = refusal(function(spec)
  decoder.bf16_copies(spec)
  spec.head = model.lm_head.weight
end)
c.ok(msg:find('head', 1, true) ~= nil and msg:find('must all be f32 or all bf16', 1, true) ~= nil,
     'an f32 head to bf16 weights: ' .. msg)
e:free()

-- ---- the trainer recomputes the old log-probs in f32 ----
local corpus = {}
for i = 1, 40 do corpus[i] = string.format('%d and %d make %d.', i, i, 2 * i) end
local tok = check.tiny_tokenizer(corpus)
local tmodel = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 9)
local t = empo.rl.trainer{
  model = tmodel, tokenizer = tok, data = empo.data.list({ 'what do 3 and 3 make?', 'and 5 and 5?' }),
  sample = { n = 4, temperature = 1.0, max_new_tokens = 8, bf16_weights = true }, extract = false,
  cluster = empo.cluster.exact, optim = { lr = 0 }, steps = 1, seed = 2 }
local groups = t:rollout({ { question = 'what do 3 and 3 make?' } }, 1)
local rows, sampled = {}, {}
for k, s in ipairs(groups[1].samples) do
  rows[k] = { prompt = groups[1].prompt_ids, completion = s.ids, old = s.logprobs, adv = 0.5 }
  sampled[k] = { unpack(s.logprobs) }
end
t:update(rows)
local f32 = empo.no_grad(require('empo.rl.logprob').completions, tmodel, rows).logp:tolist()
local differs, matches = false, true
for k, row in ipairs(rows) do
  for i = 1, #row.completion do
    matches = matches and math.abs(row.old[i] - f32[k][i]) <= 1e-6
    differs = differs or row.old[i] ~= sampled[k][i]
  end
end
c.ok(matches, 'the old log-probs of the update are the f32 model\'s')
c.ok(differs, 'not the bf16 sampler\'s')

c.done()
