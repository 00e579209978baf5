-- empo.generate.engine — the scheduler behind empo.sample.generate (see the
-- top of sample.lua for the design): which sequence holds which row of the
-- batch, admission of waiting sequences (their prompts prefilled once),
-- decode steps, the draws, stop conditions, and compaction of finished
-- rows. The KV cache is kv_cache.lua, and decoder.lua runs the model (in C
-- for a stock model, else the Lua model). Not a public module: generate()
-- validates everything before an Engine is made.
--
-- Row state beside the cache's, for rows 0 .. B-1 (0-based C arrays):
--   ids[r]      the row's last drawn token (the next step's input; ids_t
--               the same values as an i64 tensor)
--   lp[r], ref[r]   its log-prob under the sampling distribution and the model's
--   stream[r], counter[r]   the Philox counter of the row's next draw:
--               (prompt key, sample << 32 | token index)
--   row[r]      the sequence (a Lua table collecting ids and log-probs)
-- A prompt record pr (of `prompts`) holds its slot in the cache while a
-- row uses it or a sample waits (pr.left samples without a row, pr.live
-- rows alive), and its last-token logits until all its samples have rows.
-- A model on the GPU: the cache, the logits and the draws live there (dev:
-- the device twins of ids_t, lp_t, ref_t, ent_t, sc_t); the drawn rows come
-- down into the host arrays above after each draw (the decoder sends the
-- rows' input tokens up).
local ffi = require 'ffi'
local bit = require 'bit'
local empo = require 'empo'
local E = require 'empo.tensor.ffi'
local KVCache = require 'empo.generate.kv_cache'
local decoder = require 'empo.generate.decoder'
local clock = require('empo.run.log').clock
local C = E.C
local new_table = require 'table.new'

local check = E.check
local Engine = {}
Engine.__index = Engine

function Engine.new(model, tok, prompts, o)
  local e = setmetatable({ tok = tok, prompts = prompts, o = o, B = 0, next_seq = 1, pieces = {}, done = {},
                           row = {} }, Engine)
  local seqs, Tp, Wg = {}, 0, 1
  for p, pr in ipairs(prompts) do
    for s = 1, o.n do
      local m = pr.max_new   -- preallocated: no resizing as tokens arrive
      seqs[#seqs + 1] = { prompt = p, sample = s, ids = new_table(m, 0), logprobs = new_table(m, 0),
                          ref_logprobs = new_table(m, 0), tail = '',
                          entropy = o.token_stats and new_table(m, 0) or nil,
                          self_certainty = o.token_stats and new_table(m, 0) or nil,
                          max_new = m, n = 0 }
    end
    pr.left, pr.live = o.n, 0   -- samples without a row yet; rows alive
    Tp = math.max(Tp, #pr.ids)
    Wg = math.max(Wg, pr.max_new - 1)   -- the last token is never fed back: it needs no column
  end
  e.seqs, e.N = seqs, #seqs
  local device = require('empo.nn.module').device_of(model)
  local cache = KVCache.new(model.config, e.N, #prompts, Tp, Wg, o, device)
  local Bmax = cache.Bmax
  e.cache, e.Bmax = cache, Bmax
  e.ids_t, e.lp_t, e.ref_t = empo.zeros(Bmax, { dtype = 'i64' }), empo.zeros(Bmax), empo.zeros(Bmax)
  e.ids, e.lp, e.ref = e.ids_t:data_ptr(), e.lp_t:data_ptr(), e.ref_t:data_ptr()
  if o.token_stats then
    e.ent_t, e.sc_t = empo.zeros(Bmax), empo.zeros(Bmax)
    e.ent, e.sc = e.ent_t:data_ptr(), e.sc_t:data_ptr()
  end
  if device ~= 'cpu' then
    local on = { device = device }
    e.dev = { ids = empo.zeros(Bmax, { dtype = 'i64', device = device }), lp = empo.empty(Bmax, on),
              ref = empo.empty(Bmax, on), ent = o.token_stats and empo.empty(Bmax, on) or nil,
              sc = o.token_stats and empo.empty(Bmax, on) or nil }
  end
  e.stream, e.counter = ffi.new('uint64_t[?]', Bmax), ffi.new('uint64_t[?]', Bmax)
  e.u = ffi.new('double[?]', Bmax)
  e.seed = o.seed + 0ULL
  e.stats = { prompts = #prompts, n = o.n, sequences = e.N, tokens = 0, steps = 0, prefills = 0,
              prefill_tokens = 0, max_batch = Bmax, cache_bytes = cache.bytes }
  -- stats.decode: 'c' or 'lua'; decode_note: why the C decoder refused the model
  e.decoder, e.stats.decode_note = decoder.new(model, cache, e.ids_t, o)
  e.stats.decode = e.decoder.kind
  e.stats.weights = e.decoder.weights or 'f32'   -- what the decode steps read
  return e
end

function Engine:free()
  if self.dev and self.decoder.graph_counts then self.stats.cuda_graphs = self.decoder:graph_counts() end
  self.decoder:free()
  self.cache:free()
  for _, t in ipairs({ self.ids_t, self.lp_t, self.ref_t, self.ent_t, self.sc_t }) do t:free() end
  for _, t in pairs(self.dev or {}) do t:free() end
  for _, pr in ipairs(self.prompts) do
    if pr.logits then pr.logits:free(); pr.logits = nil end
  end
end

-- ---- drawing and bookkeeping ----

-- Draws the tokens of rows lo .. lo+n-1 from logits [n, V] (or [n, 1, V]).
function Engine:draw(logits, lo, n)
  C.empo_sample_uniforms(self.u + lo, n, self.seed, self.stream + lo, self.counter + lo)
  local host = { ids = self.ids_t, lp = self.lp_t, ref = self.ref_t, ent = self.ent_t, sc = self.sc_t }
  local rows = {}
  for k, t in pairs(self.dev or host) do rows[k] = t:narrow(1, lo + 1, n) end
  check(C.empo_sample(rows.ids.h, rows.lp.h, rows.ref.h, logits.h, self.o.sampling, self.u + lo), 2)
  if rows.ent then
    check(C.empo_sample_token_stats(rows.ent.h, rows.sc.h, logits.h, self.o.temperature, self.o.sampling.vocab), 2)
  end
  if self.dev then   -- the drawn rows come down to the arrays record() reads
    for k, t in pairs(rows) do host[k]:narrow(1, lo + 1, n):copy_(t) end
  end
  if not self.stats.first_token_at then self.stats.first_token_at = clock() end
end

-- The stop string the text of seq ends with after token id, if any. Only
-- the last (longest stop - 1) bytes are kept between tokens: a new match
-- must end in the new token's bytes.
function Engine:stop_string(seq, id)
  local piece = self.pieces[id]
  if not piece then
    piece = self.tok:decode({ id }, { raw = true })
    self.pieces[id] = piece
  end
  local tail = seq.tail .. piece
  for _, s in ipairs(self.o.stop_strings) do
    if tail:find(s, 1, true) then return s end
  end
  local keep = self.o.stop_keep
  seq.tail = keep == 0 and '' or (#tail > keep and tail:sub(-keep) or tail)
  return nil
end

-- Appends rows lo .. hi-1's drawn tokens to their sequences; notes the
-- rows whose sequence is finished.
function Engine:record(lo, hi)
  local o, ids, lp, ref, counter, done = self.o, self.ids, self.lp, self.ref, self.counter, self.done
  local stop_ids, strings = o.stop_ids, #o.stop_strings > 0
  for r = lo, hi - 1 do
    local seq = self.row[r]
    local id = tonumber(ids[r])
    local k = seq.n + 1
    seq.n = k
    seq.ids[k], seq.logprobs[k], seq.ref_logprobs[k] = id, tonumber(lp[r]), tonumber(ref[r])
    if seq.entropy then seq.entropy[k], seq.self_certainty[k] = tonumber(self.ent[r]), tonumber(self.sc[r]) end
    counter[r] = counter[r] + 1
    local why = stop_ids[id] and id or (strings and self:stop_string(seq, id)) or nil
    if why ~= nil then
      seq.finish, seq.stopped_by = 'stop', why
    elseif k >= seq.max_new then
      seq.finish = 'length'
    end
    if seq.finish then done[#done + 1] = r end
  end
  self.stats.tokens = self.stats.tokens + (hi - lo)
end

-- A prompt's slot goes back when no row uses it and no sample waits.
function Engine:release(pr)
  if pr.left == 0 and pr.live == 0 and pr.slot then
    self.cache:give_slot(pr.slot)
    pr.slot = nil
  end
end

-- Removes the finished rows: the live rows at the end of the batch move
-- into their places (their cache rows and row state), so only as many rows
-- move as there are holes below the new batch size.
function Engine:compact()
  local done = self.done
  if #done == 0 then return end
  local B = self.B
  local nb = B - #done
  local gone, holes, movers = {}, {}, {}
  for _, r in ipairs(done) do
    gone[r] = true
    if r < nb then holes[#holes + 1] = r end
    local pr = self.prompts[self.row[r].prompt]
    pr.live = pr.live - 1
    self:release(pr)
  end
  for r = nb, B - 1 do
    if not gone[r] then movers[#movers + 1] = r end
  end
  local m = #holes
  if m > 0 then
    local dst, src = ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m)
    for i = 1, m do dst[i - 1], src[i - 1] = holes[i], movers[i] end
    self.cache:move_rows(m, dst, src)
    for i = 1, m do
      local d, s = holes[i], movers[i]
      self.ids[d], self.stream[d], self.counter[d] = self.ids[s], self.stream[s], self.counter[s]
      self.row[d] = self.row[s]
    end
  end
  for r = nb, B - 1 do self.row[r] = nil end
  self.B, self.done = nb, {}
end

-- ---- prefill and admission ----

-- Runs the prompts `list` (indices) once and leaves their keys and values
-- in free prompt slots; keeps each prompt's last-token logits [1, V] until
-- all its samples have rows.
function Engine:prefill(list)
  local logits, tokens = self.decoder:prefill(self.prompts, list)
  for i, p in ipairs(list) do self.prompts[p].logits = logits:narrow(1, i, 1) end
  logits:free()   -- the prompts' views keep its storage
  self.stats.prefills = self.stats.prefills + 1
  self.stats.prefill_tokens = self.stats.prefill_tokens + tokens
end

-- Prefills the prompts of `take` (sequences) that have no slot yet, in
-- chunks of at most prefill_tokens padded tokens.
function Engine:prefill_for(take)
  local chunk, T = {}, 0
  local function flush()
    if #chunk > 0 then self:prefill(chunk) end
    chunk, T = {}, 0
  end
  for _, q in ipairs(take) do
    local p = q.prompt
    if not self.prompts[p].slot and chunk[#chunk] ~= p then
      local len = #self.prompts[p].ids
      if (#chunk + 1) * math.max(T, len) > self.o.prefill_tokens then flush() end
      chunk[#chunk + 1] = p
      T = math.max(T, len)
    end
  end
  flush()
end

-- Gives free rows to waiting sequences (prompt-major order): at the start,
-- and later when every remaining sample of the next prompt fits (and a
-- prompt slot is free for it).
function Engine:admit()
  local free, first = self.Bmax - self.B, self.seqs[self.next_seq]
  if not first or free == 0 then return end
  if self.B > 0 and free < math.min(self.o.n - first.sample + 1, self.Bmax) then return end
  local take, slots = {}, self.cache:slots_free()
  while #take < free and self.next_seq <= self.N do
    local q = self.seqs[self.next_seq]
    local pr = self.prompts[q.prompt]
    if not pr.slot and not pr.taking then
      if slots == 0 then break end
      slots, pr.taking = slots - 1, true
    end
    take[#take + 1] = q
    self.next_seq = self.next_seq + 1
  end
  if #take == 0 then return end
  self:prefill_for(take)
  local r0 = self.B
  for a, q in ipairs(take) do
    local r, pr = r0 + a - 1, self.prompts[q.prompt]
    pr.taking = nil
    self.cache:open_row(r, pr.slot)
    self.stream[r] = pr.key
    self.counter[r] = bit.lshift(q.sample - 1 + 0ULL, 32)
    self.row[r] = q
    pr.left, pr.live = pr.left - 1, pr.live + 1
  end
  -- first tokens, from each prompt's last logits: runs of rows of one prompt
  local i = 1
  while i <= #take do
    local pr = self.prompts[take[i].prompt]
    local j = i
    while j < #take and take[j + 1].prompt == take[i].prompt do j = j + 1 end
    local logits = pr.logits:expand(j - i + 1, pr.logits:size(2)):contiguous()
    self:draw(logits, r0 + i - 1, j - i + 1)
    logits:free()
    if pr.left == 0 then pr.logits:free(); pr.logits = nil end
    i = j + 1
  end
  self.B = r0 + #take
  self:record(r0, self.B)
end

-- ---- the loop ----

-- One decode step for every row: feed the last tokens, draw the next.
function Engine:step()
  local B = self.B
  local logits = self.decoder:step(B)
  self:draw(logits, 0, B)
  logits:free()
  self.cache:advance(B)
  self.stats.steps = self.stats.steps + 1
  self:record(0, B)
end

function Engine:run()
  repeat
    self:admit()
    self:compact()
    if self.B > 0 then
      self:step()
      self:compact()
    end
  until self.B == 0 and self.next_seq > self.N
end

return Engine
