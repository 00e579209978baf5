-- tests/generate/test_decode.lua — the sampling engine's C decoder (prefill
-- and decode step, core/include/empo/decoder.h) against the Lua model it stands in
-- for: the same tokens and log-probs for the model families (biases, tied
-- heads, one KV head, a head_dim that is not hidden / heads), batch limits
-- that force admission and compaction, the same bits at one and two
-- threads; the prefill's keys, values and logits as the Lua model's, bad
-- prompts failing by name; the
-- engine falls back to the Lua model when any part of it was replaced,
-- when c_decode = false, or when the decoder refuses the weights (its
-- message kept in the stats); bad rows fail naming the row; a NaN weight
-- is reported, not sampled from.
local ffi = require 'ffi'
local empo = require 'empo'
local E = require 'empo.tensor.ffi'
local check = require 'check'
local c = check.new('test_decode')

local function hf(over) return check.tiny_hf({ max_position_embeddings = 96 }, over) end

local PROMPTS = { { 5, 9, 2, 33, 7, 1, 60, 12, 8 }, { 41 }, { 3, 3, 3, 17 }, { 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                  30, 31, 32, 33, 34, 35, 36 } }
local OPTS = { n = 3, temperature = 1.0, top_p = 0.9, max_new_tokens = 20, seed = 4 }

local function with(over) return check.with(OPTS, over) end

local compare = check.compare_samples

-- ---- the C step equals the Lua model ----
for _, case in ipairs({ { name = 'qwen2 (q/k/v biases)', over = {} },
                        { name = 'llama, 1 KV head, tied', over = { model_type = 'llama', num_key_value_heads = 1,
                                                                   tie_word_embeddings = true } },
                        { name = 'mistral MHA', over = { model_type = 'mistral', num_key_value_heads = 4 } },
                        { name = 'head_dim 12', over = { head_dim = 12 } } }) do
  local model = check.random_biases(empo.models.new(hf(case.over), 3), 3)
  for _, max_batch in ipairs({ false, 4 }) do
    local label = string.format('%s, max_batch %s', case.name, tostring(max_batch or 'all'))
    local a, sa = empo.sample.generate(model, nil, PROMPTS, with({ max_batch = max_batch or nil }))
    local b, sb = empo.sample.generate(model, nil, PROMPTS, with({ max_batch = max_batch or nil, c_decode = false }))
    c.eq(sa.decode, 'c', label .. ': the stock model decodes in C')
    c.eq(sb.decode, 'lua', label .. ': c_decode = false runs the Lua model')
    c.ok(tostring(a):find('C decoder', 1, true) and tostring(b):find('Lua decoder', 1, true),
         label .. ': the printed summary says which decoder ran')
    local same, worst = compare(a, b)
    c.ok(same, label .. ': the same tokens as the Lua model')
    c.ok(worst < 1e-5, string.format('%s: the same log-probs (worst %.2e)', label, worst))
  end
end

-- greedy, with stops and uneven lengths, through the C step
do
  local model = empo.models.new(hf(), 9)
  local o = { n = 2, temperature = 0, max_new_tokens = 25, stop = { 7, 30 } }
  local a = empo.sample.generate(model, nil, PROMPTS, o)
  o.c_decode = false
  local b = empo.sample.generate(model, nil, PROMPTS, o)
  local same = compare(a, b)
  c.ok(same, 'greedy with stop ids: the same completions and finish reasons')
end

-- ---- reproducible at one and two threads, and in smaller batches ----
-- (neither the C prefill's numbers nor the step's depend on either: the
-- same bits; the Lua prefill's oneDNN products may differ in the last
-- bit, as in test_sample)
do
  local model = empo.models.new(hf(), 5)
  local threads = empo.get_num_threads()
  empo.set_num_threads(1)
  local one = empo.sample.generate(model, nil, PROMPTS, OPTS)
  empo.set_num_threads(2)
  local two = empo.sample.generate(model, nil, PROMPTS, OPTS)
  local small = empo.sample.generate(model, nil, PROMPTS, with({ max_batch = 2 }))
  empo.set_num_threads(threads)
  local same, worst = compare(one, two)
  c.ok(same and worst == 0, string.format('C decoder: the same samples and bits at 1 and 2 threads (%.1e)', worst))
  same, worst = compare(one, small)
  c.ok(same and worst == 0, string.format('C decoder: the same samples and bits with max_batch = 2 (%.1e)', worst))
end

-- ---- anything replaced: the Lua model runs, and its change shows ----
do
  local model = empo.models.new(hf(), 6)
  local base = empo.sample.generate(model, nil, PROMPTS, OPTS)
  local mlp = model.model.layers:at(2).mlp
  mlp.forward = function(self, x) return empo.nn.MLP.forward(self, x) * 3 end   -- one module's own forward
  local out, st = empo.sample.generate(model, nil, PROMPTS, OPTS)
  c.eq(st.decode, 'lua', 'a module with its own forward: the Lua path')
  c.ok(not compare(base, out), 'and its forward is what ran')
  mlp.forward = nil
  local norm = empo.nn.RMSNorm.forward
  empo.nn.RMSNorm.forward = function(self, x) return norm(self, x) end       -- a class's function
  _, st = empo.sample.generate(model, nil, PROMPTS, OPTS)
  c.eq(st.decode, 'lua', 'a replaced class function: the Lua path')
  empo.nn.RMSNorm.forward = norm
  _, st = empo.sample.generate(model, nil, PROMPTS, OPTS)
  c.eq(st.decode, 'c', 'restored: C again')
  c.raises(function() empo.sample.generate(model, nil, PROMPTS, with({ c_decode = 1 })) end,
           'c_decode must be true or false')
end

-- ---- the decoder refuses what it cannot run; the engine falls back ----
do
  local model = empo.models.new(hf(), 7)
  local base = empo.sample.generate(model, nil, PROMPTS, OPTS)
  local gate = model.model.layers:at(2).mlp.gate_proj
  local w = gate.weight
  gate.weight = w:transpose(1, 2):contiguous():transpose(1, 2)   -- the same values, column-major
  local out, st = empo.sample.generate(model, nil, PROMPTS, OPTS)
  c.eq(st.decode, 'lua', 'a non-contiguous weight: the Lua path')
  c.ok(st.decode_note and st.decode_note:find('layer 1 gate', 1, true) ~= nil,
       'decode_note names the layer and weight: ' .. tostring(st.decode_note))
  local same, worst = compare(base, out)
  c.ok(same and worst < 1e-5, 'and the completions are unchanged')
  gate.weight = w
end

-- ---- the C prefill leaves the Lua model's keys, values and logits ----
-- (prompts of 9 and 17 tokens and of one; GQA, one KV head, head_dim 12;
-- 230 tokens: the products in two row blocks, the last one short; and a
-- model whose MLP weights pass 512 KB: all rows in one block)
local function long_prompts(lens)
  local out, g = {}, empo.Generator(0, 7)
  for i, n in ipairs(lens) do out[i] = g:randint(0, 61, n):tolist() end
  return out
end
for _, case in ipairs({ { over = {}, prompts = { PROMPTS[1], PROMPTS[4], PROMPTS[2] } },
                        { over = { model_type = 'llama', num_key_value_heads = 1 },
                          prompts = { PROMPTS[1], PROMPTS[4], PROMPTS[2] } },
                        { over = { head_dim = 12 }, prompts = { PROMPTS[1], PROMPTS[4], PROMPTS[2] } },
                        { name = '230 tokens', over = { max_position_embeddings = 128 },
                          prompts = long_prompts({ 100, 1, 129 }) },
                        { name = 'wide MLP', over = { max_position_embeddings = 160, hidden_size = 64,
                                                      intermediate_size = 1100 },
                          prompts = long_prompts({ 150, 30 }) } }) do
  local over = case.over
  local model = empo.models.new(hf(over), 11)
  local Engine, decoder = require 'empo.generate.engine', require 'empo.generate.decoder'
  local o = with({ n = 1 })
  o.sampling = ffi.new('empo_sampling', { 1.0, 0, 1.0, 0.0 })
  o.stop_strings, o.stop_ids, o.stop_keep, o.c_decode = {}, {}, 0, true
  o.max_cache_bytes, o.prefill_tokens, o.max_batch = 2 ^ 30, 8192, 8
  local list, m = {}, #case.prompts
  for i, p in ipairs(case.prompts) do
    list[i] = { ids = p, max_new = 4, key = 0ULL + i }
    list[m + i] = list[i]   -- the same prompts again, for the Lua model's prefill
  end
  local first, second = {}, {}
  for i = 1, m do first[i], second[i] = i, m + i end
  local e = Engine.new(model, nil, list, o)
  c.ok(e.decoder.kind == 'c', 'prefill: the engine made a C decoder')
  local lc = e.decoder:prefill(list, first)
  local slots_c = {}
  for i = 1, m do slots_c[i] = list[i].slot end
  local ll = decoder.lua(model, e.cache, e.ids_t):prefill(list, second)   -- the Lua model, same cache
  local worst, scale = 0, 0
  for i = 1, m do
    local len, a, b = #list[i].ids, slots_c[i] + 1, list[i].slot + 1
    for l = 1, #e.cache.pk do
      for _, cache in ipairs({ e.cache.pk[l], e.cache.pv[l] }) do
        local x, y = cache:narrow(1, a, 1):narrow(3, 1, len), cache:narrow(1, b, 1):narrow(3, 1, len)
        worst = math.max(worst, (x - y):abs():max():item())
        scale = math.max(scale, y:abs():max():item())
      end
    end
  end
  local dl = (lc - ll):abs():max():item()
  c.ok(slots_c[1] ~= list[1].slot and worst <= 1e-5 * scale,
       string.format('prefill %s: every layer\'s keys and values as the Lua model\'s (worst %.1e of %.1f)',
                     case.name or over.model_type or over.head_dim or 'qwen2', worst, scale))
  c.ok(dl <= 1e-5 * ll:abs():max():item(), string.format('and the last tokens\' logits (worst %.1e)', dl))
  lc:free(); ll:free()

  -- bad prompts fail naming the prompt, before anything is written
  local C = E.C
  local logits = empo.zeros(2, 61)
  local ids, len, slot = ffi.new('int64_t[5]', { 1, 2, 3, 4, 5 }), ffi.new('int64_t[2]', { 2, 3 }),
                         ffi.new('int64_t[2]', { 0, 1 })
  local function prefill(n, lg) E.check(C.empo_decoder_prefill(e.decoder.handle, (lg or logits).h, n, ids, len, slot)) end
  local Sp = e.cache.pk[1]:size(3)
  len[1] = Sp + 1
  c.raises(function() prefill(2) end, string.format('prompt 1 has %d tokens, a slot holds 1 to %d', Sp + 1, Sp))
  len[1] = 0
  c.raises(function() prefill(2) end, 'prompt 1 has 0 tokens')
  len[1] = 3
  slot[1] = 0
  c.raises(function() prefill(2) end, 'prompts 0 and 1 both go to slot 0')
  slot[1] = e.cache.pk[1]:size(1)
  c.raises(function() prefill(2) end, string.format('prompt 1 goes to slot %d of %d', slot[1], slot[1]))
  slot[1] = 1
  ids[4] = 61
  c.raises(function() prefill(2) end, 'prompt 1 token 2 is 61, the vocabulary has 61')
  ids[4] = 5
  c.raises(function() prefill(2, empo.zeros(1, 61)) end, 'logits [1 x 61] f32, expected contiguous [>= 2, 61]')
  c.eq(logits:abs():sum():item(), 0, 'prefill: nothing written before the checks failed')
  c.runs(function() prefill(2) end, 'good prompts run')
  logits:free()
  e:free()
end

-- ---- bad rows fail naming the row; nothing is written ----
do
  local model = empo.models.new(hf(), 8)
  local Engine = require 'empo.generate.engine'
  local o = with({ max_new_tokens = 6 })
  o.sampling = ffi.new('empo_sampling', { 1.0, 0, 1.0, 0.0 })
  o.stop_strings, o.stop_ids, o.stop_keep, o.c_decode = {}, {}, 0, true
  o.max_cache_bytes, o.prefill_tokens = 2 ^ 30, 8192
  local list = {}
  for i, p in ipairs(PROMPTS) do list[i] = { ids = p, max_new = 6, key = 0ULL + i } end
  local e = Engine.new(model, nil, list, o)
  c.ok(e.decoder.kind == 'c', 'the engine made a C decoder')
  local logits = empo.zeros(4, 61)
  local ids, pos, col, prow, plen = ffi.new('int64_t[4]', { 1, 2, 3, 99 }), ffi.new('int64_t[4]', { 9, 1, 4, 17 }),
                                    ffi.new('int64_t[4]'), ffi.new('int64_t[4]'), ffi.new('int64_t[4]', { 9, 1, 4, 17 })
  local C = E.C
  local function step(B, lg) E.check(C.empo_decoder_step(e.decoder.handle, (lg or logits).h, B, ids, pos, col, prow, plen)) end
  c.raises(function() step(4) end, 'row 3 feeds token 99, the vocabulary has 61')
  c.eq(logits:abs():sum():item(), 0, 'nothing written before the check failed')
  ids[3] = 5
  col[1] = 5
  c.raises(function() step(4) end, 'row 1 writes own column 5 of a cache of 5')
  col[1] = 0
  prow[2] = 7
  c.raises(function() step(4) end, 'row 2 reads prompt slot 7')
  prow[2] = 0
  local held = e.cache.pk[1]:size(3) + e.cache.k[1]:size(3)   -- prompt and own positions: the rope table's
  pos[1] = held
  c.raises(function() step(4) end, string.format('row 1 has position %d, the cache holds %d', held, held))
  pos[1] = -1
  c.raises(function() step(4) end, 'row 1 has position -1')
  pos[1] = held - 1   -- the last position there is
  c.raises(function() step(13) end, '13 rows, the decoder was made for at most 12')
  c.raises(function() step(4, empo.zeros(4, 60)) end, 'logits [4 x 60] f32, expected contiguous [>= 4, 61]')
  c.runs(function() step(4) end, 'good rows run')
  local threads = empo.get_num_threads()
  empo.set_num_threads(threads + 2)   -- more threads than the decoder was made for: it keeps to its own
  c.runs(function() step(4) end, 'a step after the thread count grew')
  empo.set_num_threads(threads)
  local finite = true
  for _, v in ipairs(logits:view(4 * 61):tolist()) do finite = finite and v == v and math.abs(v) < math.huge end
  c.ok(finite and logits:abs():sum():item() > 0, 'and give finite logits')
  logits:free()
  e:free()
end

-- ---- a NaN weight is reported, not sampled from ----
do
  local model = empo.models.new(hf(), 10)
  model.model.layers:at(2).mlp.down_proj.weight:data_ptr()[0] = 0 / 0
  c.raises(function() empo.sample.generate(model, nil, { { 1, 2, 3 } }, { n = 2, max_new_tokens = 4 }) end, 'NaN')
end

c.done()
