-- tests/generate/test_sample.lua — empo.sample.generate on random-weight models
-- (empo.models.new) and a BPE tokenizer trained here: greedy decoding with
-- the cache against the argmax of the full forward re-run at every step
-- (prompts of different lengths, batch limits that force admission of
-- waiting sequences); returned log-probs against the full forward's logits
-- with every truncation rule; reproducibility across batch size, prompt
-- order, subsets and thread count; stop strings across token boundaries,
-- stop ids and end-of-sequence; the context limit; errors; memory; the
-- printed form and the `empo generate` command.
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_sample')

local hf = check.tiny_hf

local PROMPTS = { { 5, 9, 2, 33, 7, 1, 60, 12, 8 }, { 41 }, { 3, 3, 3, 17 }, { 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                  31, 32, 33, 34, 35, 36 } }

-- full (no-cache) forward logits of one sequence (ids, a Lua list) -> [T, V]
local function full_logits(model, ids)
  return empo.no_grad(function() return model(empo.tensor({ ids }, 'i64')) end)[1]
end

local function concat(a, b)
  local r = {}
  for i = 1, #a do r[i] = a[i] end
  for i = 1, #b do r[#a + i] = b[i] end
  return r
end

-- fn(row, id, t, x) for every token t of every completion x, with row the
-- full forward's logits [V] that token was drawn from
local function each_token(model, prompts, out, fn)
  for _, x in ipairs(out) do
    local prompt = prompts[x.prompt]
    local lg = full_logits(model, concat(prompt, x.ids))
    for t, id in ipairs(x.ids) do fn(lg[#prompt + t - 1], id, t, x) end
  end
end

-- the completions' ids as one comparable list
local function ids_of(out)
  local r = {}
  for i, x in ipairs(out) do r[i] = x.ids end
  return r
end

-- ---- greedy: the cache path equals the argmax of the full forward ----
for _, case in ipairs({ { name = 'qwen2 GQA', over = {} },
                        { name = 'llama, 1 KV head, tied', over = { model_type = 'llama', num_key_value_heads = 1,
                                                                   tie_word_embeddings = true } },
                        { name = 'mistral MHA', over = { model_type = 'mistral', num_key_value_heads = 4 } } }) do
  local model = empo.models.new(hf(case.over), 11)
  for _, max_batch in ipairs({ false, 3, 1 }) do
    local out = empo.sample.generate(model, nil, PROMPTS, { n = 2, temperature = 0, max_new_tokens = 14,
                                                           max_batch = max_batch or nil })
    local mismatches, worst_ref, nonzero = 0, 0, 0
    each_token(model, PROMPTS, out, function(row, id, t, x)
      if row:argmax():item() ~= id then mismatches = mismatches + 1 end
      worst_ref = math.max(worst_ref, math.abs(row:log_softmax(1)[id + 1] - x.ref_logprobs[t]))
      if x.logprobs[t] ~= 0 then nonzero = nonzero + 1 end
    end)
    local label = string.format('%s, max_batch %s', case.name, tostring(max_batch or 'all'))
    c.eq(mismatches, 0, label .. ': greedy tokens = argmax of the full forward at every step')
    c.ok(worst_ref < 1e-5, string.format('%s: ref_logprobs = log_softmax of the full forward (%.2e)', label, worst_ref))
    c.eq(nonzero, 0, label .. ': greedy log-probs are 0 (a point mass)')
    c.eq(#out, #PROMPTS * 2, label .. ': n completions per prompt')
  end
end

-- ---- log-probs under every truncation rule ----
local model = empo.models.new(hf(), 5)

-- log p(id) under the sampling rules for one logits row (a Lua list), or nil when id is not kept
local function sampling_logp(row, id, o)
  local m = -math.huge
  for _, v in ipairs(row) do m = math.max(m, v) end
  local p, order = {}, {}
  for j, v in ipairs(row) do p[j] = math.exp((v - m) / o.temperature); order[j] = j end
  table.sort(order, function(a, b) return p[a] > p[b] or (p[a] == p[b] and a < b) end)
  local cut = 0
  if (o.top_k or 0) > 0 and o.top_k < #row then cut = p[order[o.top_k]] end
  if (o.top_p or 1) < 1 then
    local kept, acc = 0, 0
    for _, j in ipairs(order) do if p[j] >= cut then kept = kept + p[j] end end
    for _, j in ipairs(order) do
      acc = acc + p[j]
      if acc >= o.top_p * kept then cut = math.max(cut, p[j]); break end
    end
  end
  cut = math.max(cut, (o.min_p or 0) * p[order[1]])
  if p[id + 1] < cut then return nil end
  local kept = 0
  for j = 1, #row do if p[j] >= cut then kept = kept + p[j] end end
  return math.log(p[id + 1] / kept)
end

for _, o in ipairs({ { temperature = 1.0 }, { temperature = 0.7 }, { temperature = 1.0, top_k = 5 },
                     { temperature = 1.0, top_p = 0.8 }, { temperature = 1.0, min_p = 0.2 },
                     { temperature = 1.3, top_k = 12, top_p = 0.9, min_p = 0.05 } }) do
  local opts = { n = 3, max_new_tokens = 10, seed = 3 }
  for k, v in pairs(o) do opts[k] = v end
  local out = empo.sample.generate(model, nil, PROMPTS, opts)
  local worst, worst_ref, outside = 0, 0, 0
  each_token(model, PROMPTS, out, function(row, id, t, x)
    worst_ref = math.max(worst_ref, math.abs(row:log_softmax(1)[id + 1] - x.ref_logprobs[t]))
    local lp = sampling_logp(row:tolist(), id, o)
    if lp then worst = math.max(worst, math.abs(lp - x.logprobs[t])) else outside = outside + 1 end
  end)
  local label = string.format('T %g top_k %s top_p %s min_p %s', o.temperature, tostring(o.top_k), tostring(o.top_p),
                              tostring(o.min_p))
  c.eq(outside, 0, label .. ': every token drawn is in the kept set')
  c.ok(worst < 2e-5, string.format('%s: logprobs = the sampling distribution at the drawn tokens (%.2e)', label, worst))
  c.ok(worst_ref < 1e-5, string.format('%s: ref_logprobs = log_softmax of the full forward (%.2e)', label, worst_ref))
end
do   -- T = 1 without truncation: both log-probs are the model's
  local out = empo.sample.generate(model, nil, PROMPTS, { n = 2, max_new_tokens = 8, seed = 9 })
  local worst = 0
  for _, x in ipairs(out) do
    for t = 1, #x.ids do worst = math.max(worst, math.abs(x.logprobs[t] - x.ref_logprobs[t])) end
  end
  c.ok(worst < 1e-5, string.format('plain sampling: logprobs = ref_logprobs (%.2e)', worst))
end

-- ---- reproducibility ----
do
  local opts = { n = 3, max_new_tokens = 12, seed = 42, temperature = 1.0, top_p = 0.95 }
  local function gen(prompts, over)
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    for k, v in pairs(over or {}) do o[k] = v end
    return empo.sample.generate(model, nil, prompts, o)
  end
  local base = gen(PROMPTS)
  local function same_as_base(out, map, label)   -- map: out's prompt index -> PROMPTS index
    local ok, worst = true, 0
    for _, x in ipairs(out) do
      local b = base[(map[x.prompt] - 1) * opts.n + x.sample]
      if not check.same(x.ids, b.ids) then ok = false end
      for t = 1, math.min(#x.ids, #b.ids) do worst = math.max(worst, math.abs(x.logprobs[t] - b.logprobs[t])) end
    end
    c.ok(ok, label .. ': the same tokens')
    c.ok(worst < 1e-5, string.format('%s: the same log-probs (%.2e)', label, worst))
  end
  local id = { 1, 2, 3, 4 }
  for _, mb in ipairs({ 1, 2, 5, 7 }) do same_as_base(gen(PROMPTS, { max_batch = mb }), id, 'max_batch ' .. mb) end
  same_as_base(gen(PROMPTS, { max_cache_bytes = 1 }), id, 'a 1-byte cache budget (one row)')
  same_as_base(gen({ PROMPTS[4], PROMPTS[3], PROMPTS[2], PROMPTS[1] }), { 4, 3, 2, 1 }, 'prompts reversed')
  same_as_base(gen({ PROMPTS[3] }), { 3 }, 'one prompt alone')
  same_as_base(gen({ PROMPTS[2], PROMPTS[4] }, { max_batch = 2 }), { 2, 4 }, 'a subset, 2 rows')
  local threads = empo.get_num_threads()
  empo.set_num_threads(threads == 1 and 2 or 1)
  same_as_base(gen(PROMPTS), id, 'another thread count')
  empo.set_num_threads(threads)
  c.ok(not check.same(ids_of(gen(PROMPTS, { seed = 43 })), ids_of(base)), 'another seed: other samples')
  local dup = gen({ PROMPTS[1], PROMPTS[1] })
  c.ok(check.same(dup[1].ids, base[1].ids), 'a repeated prompt: its first copy as alone')
  c.ok(not check.same(dup[1].ids, dup[4].ids), 'a repeated prompt: the second copy samples anew')
  c.ok(check.same(ids_of(gen({ PROMPTS[1], PROMPTS[1] }, { max_batch = 2 })), ids_of(dup)),
       'a repeated prompt: the copies do not depend on the batch either')
  local keyed = gen({ PROMPTS[1], PROMPTS[2] }, { keys = { 10, 20 } })
  local swapped = gen({ PROMPTS[2], PROMPTS[1] }, { keys = { 20, 10 } })
  c.ok(check.same(keyed[1].ids, swapped[4].ids) and check.same(keyed[4].ids, swapped[1].ids), 'keys follow their prompts')
  c.ok(not check.same(keyed[1].ids, base[1].ids), 'keys replace the prompt hash')
end

-- ---- a tokenizer: text, stop strings across token boundaries, stop ids, EOS ----
local texts = {}
for i = 1, 300 do
  texts[i] = string.format('Q: what is %d plus %d? A: %d. Then %d times 2 is %d.\n', i, i % 13, i + i % 13, i, 2 * i)
end
local tok = empo.tokenizer.train{ texts = texts, vocab_size = 300, special_tokens = { '<|endoftext|>' },
                                  eos = '<|endoftext|>' }
local tmodel = empo.models.new(hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 8)
local printable = function(s) return s:find('^[%w%p ]+$') ~= nil end

-- ---- an embedding padded past the tokenizer (Qwen2.5: 271 rows): those ids are never drawn ----
do
  local padded = empo.models.new(hf{ vocab_size = tok.vocab_size + 64, max_position_embeddings = 128 }, 9)
  local prompts = {}
  for i = 1, 10 do prompts[i] = texts[i]:sub(1, 12) end
  for _, path in ipairs({ { name = 'C decoder', c_decode = true }, { name = 'Lua decoder', c_decode = false } }) do
    local out = empo.sample.generate(padded, tok, prompts, { n = 10, max_new_tokens = 100, seed = 4, ignore_eos = true,
                                                             c_decode = path.c_decode })
    local n, past = 0, 0
    for _, x in ipairs(out) do
      for _, id in ipairs(x.ids) do n, past = n + 1, past + (id >= tok.vocab_size and 1 or 0) end
    end
    c.eq(n, 10000, path.name .. ': 10,000 tokens sampled at T = 1')
    c.eq(past, 0, path.name .. ': none past the tokenizer\'s ' .. tok.vocab_size .. ' ids')
    local greedy = empo.sample.generate(padded, tok, prompts, { n = 1, temperature = 0, max_new_tokens = 50, seed = 4,
                                                                ignore_eos = true, c_decode = path.c_decode })
    past = 0
    for _, x in ipairs(greedy) do
      for _, id in ipairs(x.ids) do past = past + (id >= tok.vocab_size and 1 or 0) end
    end
    c.eq(past, 0, path.name .. ': greedy, none past the tokenizer')
  end
end
do
  local base = empo.sample.generate(tmodel, tok, { 'Q: what is 4 plus 4?', 'Then 7' },
                                    { n = 2, max_new_tokens = 40, seed = 1, ignore_eos = true })
  c.eq(base[1].text, tok:decode(base[1].ids, { skip_special = true }), 'text = the decoded ids')
  c.eq(base[1].finish, 'length', 'no stop: finish = length')
  -- a stop string made of the end of one token and the start of the next, first seen there
  local x, stop, at = base[1], nil, nil
  local pieces, text = {}, ''
  for t, id in ipairs(x.ids) do pieces[t] = tok:decode({ id }, { raw = true }) end
  for t = 1, #x.ids - 1 do
    local a, b = pieces[t], pieces[t + 1]
    if t >= 3 and printable(text .. a .. b) then
      local s = a:sub(-1) .. b:sub(1, 1)
      if (text .. a .. b):find(s, 1, true) == #text + #a then   -- first seen across this boundary
        stop, at = s, t
        break
      end
    end
    text = text .. pieces[t]
  end
  c.ok(stop ~= nil, 'found a stop string across a token boundary')
  if stop then
    local out = empo.sample.generate(tmodel, tok, { 'Q: what is 4 plus 4?' },
                                     { n = 1, max_new_tokens = 40, seed = 1, ignore_eos = true, stop = { 'never seen \1', stop } })
    local y = out[1]
    c.eq(y.finish, 'stop', 'a stop string across tokens: finish = stop')
    c.eq(y.stopped_by, stop, 'stopped_by names the string')
    c.ok(check.same(y.ids, { unpack(x.ids, 1, at + 1) }), 'ids end with the token that completes the stop string')
    local full = tok:decode({ unpack(x.ids, 1, at + 1) })
    c.eq(y.text, full:sub(1, #full - #pieces[at + 1] - 1), 'the text is cut before the stop string')
    c.ok(not y.text:find(stop, 1, true), 'the stop string is not in the text')
  end
  -- a stop id: the 5th token, when it did not come before
  local k = 5
  while k <= #x.ids do
    local earlier = false
    for t = 1, k - 1 do if x.ids[t] == x.ids[k] then earlier = true end end
    if not earlier then break end
    k = k + 1
  end
  local out = empo.sample.generate(tmodel, tok, { 'Q: what is 4 plus 4?' },
                                   { max_new_tokens = 40, seed = 1, ignore_eos = true, stop = x.ids[k] })
  c.ok(check.same(out[1].ids, { unpack(x.ids, 1, k) }), 'a stop id: ids end with it')
  c.eq(out[1].stopped_by, x.ids[k], 'stopped_by names the id')
  c.eq(out[1].text, tok:decode({ unpack(x.ids, 1, k - 1) }, { skip_special = true }), 'the stop id is not in the text')
  -- the tokenizer's end-of-sequence stops by default
  local eos = tok.eos_id
  tok.eos_id = x.ids[k]
  out = empo.sample.generate(tmodel, tok, { 'Q: what is 4 plus 4?' }, { max_new_tokens = 40, seed = 1 })
  c.eq(#out[1].ids, k, 'the tokenizer\'s eos_id stops a sequence by default')
  out = empo.sample.generate(tmodel, tok, { 'Q: what is 4 plus 4?' }, { max_new_tokens = 40, seed = 1, ignore_eos = true })
  c.eq(#out[1].ids, 40, 'ignore_eos = true')
  tok.eos_id = eos
  -- sequences that finish early stop costing steps; the others are unchanged
  local mixed = empo.sample.generate(tmodel, tok, { 'Q: what is 4 plus 4?', 'Then 7' },
                                     { n = 2, max_new_tokens = 40, seed = 1, ignore_eos = true, stop = x.ids[k] })
  c.ok(check.same(mixed[1].ids, { unpack(x.ids, 1, k) }), 'early stop in a mixed batch')
  for i = 2, 4 do
    local b = base[i]
    local stop_at
    for t, id in ipairs(b.ids) do if id == x.ids[k] then stop_at = t break end end
    c.ok(check.same(mixed[i].ids, { unpack(b.ids, 1, stop_at or #b.ids) }),
         'completion ' .. i .. ' is the same sample, cut at its own stop')
  end
  -- input forms
  local s1 = empo.sample.generate(tmodel, tok, 'Then 7', { max_new_tokens = 5, seed = 1, ignore_eos = true })
  local s2 = empo.sample.generate(tmodel, tok, tok:encode('Then 7'), { max_new_tokens = 5, seed = 1, ignore_eos = true })
  local s3 = empo.sample.generate(tmodel, tok, { tok:encode('Then 7', { tensor = true }) },
                                  { max_new_tokens = 5, seed = 1, ignore_eos = true })
  c.ok(#s1 == 1 and check.same(s1[1].ids, s2[1].ids) and check.same(s1[1].ids, s3[1].ids),
       'a string, an id list and a tensor give the same completion')
  c.ok(check.same(s1[1].ids, { unpack(base[3].ids, 1, 5) }), 'and the same as inside a bigger call')
  -- printing
  local shown = tostring(base)
  c.ok(shown:find('4 completions (2 prompts x 2)', 1, true) ~= nil, 'the printed header')
  local lines = 0
  for _ in shown:gmatch('\n') do lines = lines + 1 end
  c.eq(lines, 4, 'one printed line per completion')
  c.ok(shown:find('[3] prompt 2 sample 1', 1, true) ~= nil, 'printed lines name prompt and sample')
end

-- ---- the context limit, finish reasons, order and statistics ----
do
  local long = {}
  for i = 1, 60 do long[i] = i % 61 end
  local out, st = empo.sample.generate(model, nil, { long, { 1, 2 } }, { n = 2, max_new_tokens = 10, seed = 2 })
  c.eq(#out[1].ids, 4, 'a prompt of 60 tokens in a context of 64 gets 4 new tokens')
  c.eq(out[1].finish, 'length', 'finish = length at the context limit')
  c.eq(#out[3].ids, 10, 'the other prompt gets its max_new_tokens')
  c.ok(out[1].prompt == 1 and out[2].prompt == 1 and out[2].sample == 2 and out[3].prompt == 2, 'prompt-major order')
  c.eq(st.tokens, 4 + 4 + 10 + 10, 'stats.tokens counts every new token')
  c.ok(st.tokens_per_s > 0 and st.time_to_first_token > 0 and st.time_to_first_token <= st.seconds, 'timings')
  -- cache: per layer, K and V of max_batch rows of [kv heads, max_new - 1, head dim] and of a slot
  -- per prompt of [kv heads, longest prompt, head dim], f32
  local own, slot = 2 * 2 * 2 * (10 - 1) * 8 * 4, 2 * 2 * 2 * 60 * 8 * 4
  c.eq(st.cache_bytes, 4 * own + 2 * slot, 'stats.cache_bytes')
  c.eq(st.max_batch, 4, 'every sequence fits one batch by default')
  c.ok(st.peak_bytes >= st.cache_bytes, 'stats.peak_bytes covers the cache')
  c.eq(st.prefills, 1, 'one prefill for all prompts')
  c.eq(st.decode, 'c', 'the C decoder ran')
  c.eq(st.prefill_tokens, 60 + 2, 'each prompt prefilled once, its own tokens only (the C prefill)')
  local _, stl = empo.sample.generate(model, nil, { long, { 1, 2 } }, { n = 2, max_new_tokens = 10, seed = 2,
                                                                        c_decode = false })
  c.eq(stl.prefill_tokens, 2 * 60, 'the Lua prefill pads each prompt to the longest')
  local _, st2 = empo.sample.generate(model, nil, { long, { 1, 2 } }, { n = 2, max_new_tokens = 10, seed = 2,
                                                                        max_cache_bytes = 3 * own + 2 * slot - 1 })
  c.eq(st2.max_batch, 2, 'max_cache_bytes bounds the rows')
  c.eq(st2.cache_bytes, 2 * own + 2 * slot, 'and the cache')
  local _, st3 = empo.sample.generate(model, nil, { long, { 1, 2 } }, { n = 1, max_new_tokens = 10, seed = 2,
                                                                        max_cache_bytes = 1 })
  c.ok(st3.max_batch == 1 and st3.cache_bytes == own + 2 * slot, 'one row and two prompt slots at least')
  -- two collections each time: a box finalized in one cycle may hold the
  -- last reference to another, released only in the next
  empo.collect(); empo.collect()
  local live = empo.memory().live
  empo.sample.generate(model, nil, PROMPTS, { n = 4, max_new_tokens = 10 })
  empo.collect(); empo.collect()
  c.eq(empo.memory().live, live, 'nothing stays allocated after a call')
end

-- ---- bad options and prompts ----
local function bad(prompts, opts, msg, m)
  c.raises(function() empo.sample.generate(m or model, nil, prompts, opts) end, msg)
end
bad(PROMPTS, { n = 0 }, 'n (samples per prompt) must be an integer >= 1, got 0')
bad(PROMPTS, { n = 1.5 }, 'n (samples per prompt) must be an integer >= 1')
bad(PROMPTS, { top_p = 0 }, 'top_p must be in (0, 1] (1 = off), got 0')
bad(PROMPTS, { top_p = 1.5 }, 'top_p must be in (0, 1]')
bad(PROMPTS, { temperature = -1 }, 'temperature must be a number >= 0 (0 = greedy), got -1')
bad(PROMPTS, { temperature = 0 / 0 }, 'temperature must be a number >= 0')
bad(PROMPTS, { top_k = -1 }, 'top_k must be an integer >= 0')
bad(PROMPTS, { min_p = 2 }, 'min_p must be in [0, 1]')
bad(PROMPTS, { max_new_tokens = 0 }, 'max_new_tokens must be an integer >= 1')
bad(PROMPTS, { seed = -3 }, 'seed must be an integer >= 0')
bad(PROMPTS, { max_batch = 0 }, 'max_batch must be an integer >= 1')
bad(PROMPTS, { temprature = 1 }, 'unknown option temprature (known:')
bad(PROMPTS, { ignore_eos = 'yes' }, 'ignore_eos must be true or false, got yes')
bad(PROMPTS, { stop = { '' } }, 'stop[1] is an empty string')
bad(PROMPTS, { stop = { 61 } }, 'stop[1] must be a string or a token id in [0, 61), got 61')
bad(PROMPTS, { stop = 'x' }, 'stop strings need a tokenizer')
bad(PROMPTS, { keys = { 1 } }, 'keys must be a list of 4 integers')
bad(PROMPTS, 'fast', 'options must be a table')
do
  local long = {}
  for i = 1, 64 do long[i] = 1 end
  bad({ { 1 }, long }, {}, 'prompt 2 has 64 tokens, longer than the context allows: the model\'s context is 64')
end
bad({ { 1 }, {} }, {}, 'prompt 2 is empty (no tokens)')
bad({ 'hello' }, {}, 'prompt 1 is text: a tokenizer is needed')
bad({ { 1, 61 } }, {}, 'prompt 1: token 2 is 61, not an id in [0, 61)')
bad({}, {}, 'prompts must be a non-empty list')
bad({ { 1 } }, {}, 'argument 1 must be a model', {})
c.raises(function() empo.sample.generate(tmodel, tok, { '' }, {}) end, 'prompt 1 is empty (no tokens)')
c.raises(function() empo.sample.generate(tmodel, tok, { 'x' }, { stop = { 'a', 7.5 } }) end, 'stop[2] must be a string or a token id')

-- ---- the empo generate command ----
do
  local bin = os.getenv('EMPO_BINARY') or arg[-1]
  local dir = os.tmpname()
  os.remove(dir)
  tmodel:save_pretrained(dir)
  local f = io.open(dir .. '/tokenizer.json', 'w')
  f:write(tok.json)
  f:close()
  f = io.open(dir .. '/tokenizer_config.json', 'w')
  f:write(tok.config_json)
  f:close()
  local function run(args)
    local p = io.popen(string.format("'%s' generate '%s' %s 2>&1; echo \"rc=$?\"", bin, dir, args))
    local s = p:read('*a')
    p:close()
    return s, tonumber(s:match('rc=(%d+)%s*$'))
  end
  local s, rc = run("'Then 7' 'Q: what' n=2 max_new_tokens=5 seed=1 ignore_eos=true")
  local want = empo.sample.generate(tmodel, tok, { 'Then 7', 'Q: what' }, { n = 2, max_new_tokens = 5, seed = 1,
                                                                          ignore_eos = true })
  c.eq(rc, 0, 'empo generate exits 0')
  c.ok(s:find('=== prompt 2, sample 2: length, 5 tokens', 1, true) ~= nil, 'empo generate prints every completion')
  c.ok(s:find('\n' .. want[4].text .. '\n', 1, true) ~= nil, 'empo generate prints the texts')
  c.ok(s:find('tokens/s', 1, true) ~= nil, 'empo generate reports speed')
  s, rc = run("'Then 7' n=0")
  c.eq(rc, 1, 'a bad setting exits 1')
  c.ok(s:find('empo generate: n must be an integer >= 1, got 0', 1, true) ~= nil, 'with its message')
  s, rc = run("top_p=2")
  c.ok(rc == 1 and s:find('top_p must be a finite number in (0, 1], got 2', 1, true) ~= nil, 'a value out of range')
  s, rc = run("top_p=0.5")
  c.ok(rc == 1 and s:find('no prompt given', 1, true) ~= nil, 'no prompt: a message')
  os.execute("rm -rf '" .. dir .. "'")
end

c.done()
