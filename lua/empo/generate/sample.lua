-- empo.generate.sample (empo.sample) — batched generation with a KV cache.
--
--     local out = empo.sample.generate(model, tok, { 'What is 2+3?', 'Name a color.' },
--                                      { n = 4, temperature = 1.0, top_p = 0.95, max_new_tokens = 64,
--                                        stop = { '\n\n' }, seed = 1 })
--     out[1].text, out[1].ids, out[1].finish      -- prompt 1's first sample ('stop' | 'length')
--     out[1].logprobs, out[1].ref_logprobs         -- per token: sampling distribution, model at T = 1
--     -- with token_stats = true also out[1].entropy, out[1].self_certainty: per token, of
--     -- softmax(logits / T) before truncation (C, from the logits the draw used)
--     print(out)                                   -- readable completions; out.stats: speed, memory
--
-- How it runs. The model is the one Lua definition (empo.nn.transformer);
-- this folder only schedules it: this file checks the options and the
-- prompts and shapes the results, engine.lua schedules the batch,
-- kv_cache.lua holds the cache, decoder.lua runs the model (prefill and
-- decode steps in C for a stock model). The per-token math (temperature,
-- top-k, top-p, min-p, the draw, log-probs), the KV-cache row moves and the
-- decode-step attention are C (core/include/empo/sample.h). A batch holds up to `max_batch`
-- sequences; its KV cache is allocated once, per layer: a slot per prompt
-- in the batch ([kv heads, longest prompt, head dim]) shared by all its
-- samples, and per row the positions it generates ([kv heads,
-- max_new_tokens - 1, head dim]). Rows never need padding: each keeps its
-- own length and position.
--   * admission: the prompts of the next sequences are prefilled ONCE
--     (right-padded, causal) into free prompt slots, and the first tokens
--     of their samples drawn from each prompt's last logits;
--   * a step feeds every row its last token ([B, 1] ids, per-row
--     positions), appends one position per row and attends over the row's
--     prompt (read once for all the rows sharing it) and its own positions;
--   * a finished row is replaced at once by the last live row (a finished
--     sequence costs no more compute), and waiting sequences take free rows
--     (continuous batching) when all samples of their prompt fit.
-- Reproducibility: token t of sample s of a prompt is drawn with the
-- uniform Philox(seed; key, s << 32 | t). The prompt's key is by default a
-- hash of its token ids (and of how many equal prompts came before it in
-- the call), or opts.keys[i]; so a completion depends on (model, prompt,
-- settings, seed, s) only, not on the batch size, the order of the
-- prompts or the thread count. Give each call its own seed (e.g. per
-- training step).
local ffi = require 'ffi'
local bit = require 'bit'
local empo = require 'empo'
local Engine = require 'empo.generate.engine'
local clock = require('empo.run.log').clock

local format = string.format
local M = {}

-- ---- options ----

local DEFAULTS = { n = 1, temperature = 1.0, top_k = 0, top_p = 1.0, min_p = 0.0, max_new_tokens = 128, seed = 0,
                   ignore_eos = false, skip_special = true, max_cache_bytes = 2 ^ 30, prefill_tokens = 8192,
                   c_decode = true, token_stats = false, bf16_weights = false }
local OPTIONAL = { stop = true, keys = true, max_batch = true }   -- no default

local function is_int(v) return type(v) == 'number' and v % 1 == 0 and v == v end

local function known_options()
  local k = {}
  for name in pairs(DEFAULTS) do k[#k + 1] = name end
  for name in pairs(OPTIONAL) do k[#k + 1] = name end
  table.sort(k)
  return table.concat(k, ', ')
end

-- Checked settings, or nil and a message. V: vocabulary size.
local function settings(opts, V)
  if opts ~= nil and type(opts) ~= 'table' then return nil, 'options must be a table, got ' .. type(opts) end
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do
    if DEFAULTS[k] == nil and not OPTIONAL[k] then
      return nil, format('unknown option %s (known: %s)', tostring(k), known_options())
    end
    o[k] = v
  end
  if not is_int(o.n) or o.n < 1 then return nil, 'n (samples per prompt) must be an integer >= 1, got ' .. tostring(o.n) end
  local t = o.temperature
  if type(t) ~= 'number' or not (t >= 0) or t == math.huge then
    return nil, 'temperature must be a number >= 0 (0 = greedy), got ' .. tostring(t)
  end
  if not is_int(o.top_k) or o.top_k < 0 then return nil, 'top_k must be an integer >= 0 (0 = off), got ' .. tostring(o.top_k) end
  if type(o.top_p) ~= 'number' or not (o.top_p > 0 and o.top_p <= 1) then
    return nil, 'top_p must be in (0, 1] (1 = off), got ' .. tostring(o.top_p)
  end
  if type(o.min_p) ~= 'number' or not (o.min_p >= 0 and o.min_p <= 1) then
    return nil, 'min_p must be in [0, 1] (0 = off), got ' .. tostring(o.min_p)
  end
  if not is_int(o.max_new_tokens) or o.max_new_tokens < 1 then
    return nil, 'max_new_tokens must be an integer >= 1, got ' .. tostring(o.max_new_tokens)
  end
  if not (is_int(o.seed) and o.seed >= 0) and type(o.seed) ~= 'cdata' then
    return nil, 'seed must be an integer >= 0, got ' .. tostring(o.seed)
  end
  if o.max_batch ~= nil and (not is_int(o.max_batch) or o.max_batch < 1) then
    return nil, 'max_batch must be an integer >= 1, got ' .. tostring(o.max_batch)
  end
  for _, k in ipairs({ 'ignore_eos', 'skip_special', 'c_decode', 'bf16_weights' }) do
    if type(o[k]) ~= 'boolean' then return nil, format('%s must be true or false, got %s', k, tostring(o[k])) end
  end
  if type(o.max_cache_bytes) ~= 'number' or not (o.max_cache_bytes > 0) then
    return nil, 'max_cache_bytes must be a number > 0, got ' .. tostring(o.max_cache_bytes)
  end
  if not is_int(o.prefill_tokens) or o.prefill_tokens < 1 then
    return nil, 'prefill_tokens must be an integer >= 1, got ' .. tostring(o.prefill_tokens)
  end
  -- stop: a string, an id, or a list of both
  local stop = o.stop
  if type(stop) == 'string' or type(stop) == 'number' then stop = { stop } end
  if stop ~= nil and type(stop) ~= 'table' then return nil, 'stop must be a string, a token id or a list of them' end
  o.stop_strings, o.stop_ids, o.stop_keep = {}, {}, 0
  for i, s in ipairs(stop or {}) do
    if type(s) == 'string' then
      if s == '' then return nil, format('stop[%d] is an empty string', i) end
      o.stop_strings[#o.stop_strings + 1] = s
      o.stop_keep = math.max(o.stop_keep, #s - 1)
    elseif is_int(s) and s >= 0 and s < V then
      o.stop_ids[s] = true
    else
      return nil, format('stop[%d] must be a string or a token id in [0, %d), got %s', i, V, tostring(s))
    end
  end
  o.sampling = ffi.new('empo_sampling', { o.temperature, o.top_k, o.top_p, o.min_p })
  return o
end

-- ---- prompts ----

local FNV_OFFSET, FNV_PRIME = 0xcbf29ce484222325ULL, 0x100000001b3ULL

-- 64-bit FNV-1a of the ids and of the occurrence number
local function prompt_key(ids, occurrence)
  local h = FNV_OFFSET
  for i = 1, #ids do h = bit.bxor(h, ids[i] + 0ULL) * FNV_PRIME end
  return bit.bxor(h, occurrence + 0ULL) * FNV_PRIME
end

-- The prompts as { ids = {...}, key = u64, max_new = n } records, or nil and a message.
local function read_prompts(tok, prompts, o, cfg)
  if type(prompts) == 'string' or empo.is_tensor(prompts) or (type(prompts) == 'table' and type(prompts[1]) == 'number') then
    prompts = { prompts }
  end
  if type(prompts) ~= 'table' or #prompts == 0 then
    return nil, 'prompts must be a non-empty list of strings or token id lists'
  end
  if o.keys ~= nil and (type(o.keys) ~= 'table' or #o.keys ~= #prompts) then
    return nil, format('keys must be a list of %d integers (one per prompt)', #prompts)
  end
  local V, ctx = cfg.vocab_size, cfg.max_position_embeddings
  local out, seen = {}, {}
  for i, p in ipairs(prompts) do
    local ids
    if type(p) == 'string' then
      if tok == nil then return nil, format('prompt %d is text: a tokenizer is needed (argument 2)', i) end
      ids = tok:encode(p)
    elseif empo.is_tensor(p) then
      if p:dim() ~= 1 then return nil, format('prompt %d: a tensor of ids must be 1-d, got %s', i, p:describe()) end
      ids = p:tolist()
    elseif type(p) == 'table' then
      ids = p
    else
      return nil, format('prompt %d must be a string, a list of ids or a 1-d tensor, got %s', i, type(p))
    end
    if #ids == 0 then return nil, format('prompt %d is empty (no tokens)', i) end
    for j = 1, #ids do
      if not is_int(ids[j]) or ids[j] < 0 or ids[j] >= V then
        return nil, format('prompt %d: token %d is %s, not an id in [0, %d)', i, j, tostring(ids[j]), V)
      end
    end
    if #ids >= ctx then
      return nil, format('prompt %d has %d tokens, longer than the context allows: the model\'s context is %d '
                         .. '(max_position_embeddings), which leaves no room for new tokens', i, #ids, ctx)
    end
    local key
    if o.keys then
      key = o.keys[i]
      if not (is_int(key) and key >= 0) then return nil, format('keys[%d] must be an integer >= 0', i) end
      key = key + 0ULL
    else
      local sig = table.concat(ids, ',')
      seen[sig] = (seen[sig] or 0) + 1
      key = prompt_key(ids, seen[sig])
    end
    out[i] = { ids = ids, key = key, max_new = math.min(o.max_new_tokens, ctx - #ids) }
  end
  return out
end

-- ---- results ----

local Completions = {}
Completions.__index = Completions

local function short(text, width)
  text = text:gsub('\\', '\\\\'):gsub('\n', '\\n'):gsub('\t', '\\t'):gsub('\r', '\\r')
  if #text > width then text = text:sub(1, width - 3) .. '...' end
  return text
end

function Completions:__tostring()
  local s = self.stats
  local lines = { format('%d completion%s (%d prompt%s x %d): %d tokens in %.2f s (%.0f tokens/s, first token '
                         .. 'after %.3f s), KV cache %.1f MB for %d rows, peak %.1f MB, %s decoder',
                         #self, #self == 1 and '' or 's', s.prompts, s.prompts == 1 and '' or 's', s.n, s.tokens,
                         s.seconds, s.tokens_per_s, s.time_to_first_token, s.cache_bytes / 2 ^ 20, s.max_batch,
                         s.peak_bytes / 2 ^ 20, s.decode == 'c' and 'C' or 'Lua') }
  for i, c in ipairs(self) do
    local body = c.text and format('"%s"', short(c.text, 100))
                 or table.concat(c.ids, ' ', 1, math.min(#c.ids, 24)) .. (#c.ids > 24 and ' ...' or '')
    lines[#lines + 1] = format('[%d] prompt %d sample %d  %-6s %3d tokens  %s', i, c.prompt, c.sample, c.finish,
                               #c.ids, body)
  end
  return table.concat(lines, '\n')
end

-- Cuts the text at the earliest stop string it holds.
local function cut_at_stop(text, stops)
  local at
  for _, s in ipairs(stops) do
    local i = text:find(s, 1, true)
    if i and (not at or i < at) then at = i end
  end
  return at and text:sub(1, at - 1) or text
end

local function completions(seqs, tok, o, stats)
  local out = setmetatable({ stats = stats }, Completions)
  for i, q in ipairs(seqs) do
    local c = { prompt = q.prompt, sample = q.sample, ids = q.ids, logprobs = q.logprobs,
                ref_logprobs = q.ref_logprobs, entropy = q.entropy, self_certainty = q.self_certainty,
                finish = q.finish, stopped_by = q.stopped_by }
    if tok then
      local ids = q.ids
      if type(q.stopped_by) == 'number' then   -- the stop id is not text
        ids = {}
        for j = 1, #q.ids - 1 do ids[j] = q.ids[j] end
      end
      c.text = tok:decode(ids, { skip_special = o.skip_special })
      if type(q.stopped_by) == 'string' then c.text = cut_at_stop(c.text, o.stop_strings) end
    end
    out[i] = c
  end
  return out
end

-- ---- generate ----

-- generate(model, tok, prompts, opts) -> completions (a list, prompt-major:
-- prompt 1's n samples, then prompt 2's, ...), stats. tok may be nil when
-- the prompts are id lists and no stop strings are given (then no text).
-- See docs/sampling.md for every option.
function M.generate(model, tok, prompts, opts)
  if type(model) ~= 'table' or type(model.hidden) ~= 'function' or type(model.config) ~= 'table' then
    error('sample.generate: argument 1 must be a model (empo.models.new / from_pretrained)', 2)
  end
  local cfg = model.config
  local o, msg = settings(opts, cfg.vocab_size)
  if not o then error('sample.generate: ' .. msg, 2) end
  if tok ~= nil and type(tok) ~= 'table' then error('sample.generate: argument 2 must be a tokenizer or nil', 2) end
  if tok == nil and #o.stop_strings > 0 then error('sample.generate: stop strings need a tokenizer (argument 2)', 2) end
  if tok and tok.eos_id and not o.ignore_eos then o.stop_ids[tok.eos_id] = true end
  -- an embedding padded past the tokenizer's last id (Qwen2.5: 271 rows):
  -- those ids are never drawn, greedy included (empo_sampling.vocab)
  if tok and tok.vocab_size and tok.vocab_size < cfg.vocab_size then o.sampling.vocab = tok.vocab_size end
  local list
  list, msg = read_prompts(tok, prompts, o, cfg)
  if not list then error('sample.generate: ' .. msg, 2) end
  local t0 = clock()
  empo.reset_peak_memory()
  local engine = Engine.new(model, tok, list, o)
  local ok, err = pcall(empo.no_grad, engine.run, engine)
  engine:free()
  if not ok then error(err, 0) end
  local st = engine.stats
  st.seconds = clock() - t0
  st.time_to_first_token = (st.first_token_at or clock()) - t0
  st.first_token_at = nil
  st.tokens_per_s = st.tokens / math.max(st.seconds, 1e-9)
  st.peak_bytes = empo.memory().peak
  local out = completions(engine.seqs, tok, o, st)
  return out, st
end

-- (the options' defaults, for those who plan around them: empo.rl.preflight)
M.DEFAULTS = DEFAULTS

return M
