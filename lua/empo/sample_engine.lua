-- empo.sample_engine — the batch behind empo.sample.generate (see the top of
-- lua/empo/sample.lua for the design): one KV cache whose rows each hold
-- one sequence at its own length, prefill of new prompts, decode steps,
-- row compaction and admission. Not a public module: generate() validates
-- everything before an Engine is made.
--
-- Row state, for rows 0 .. B-1 (0-based, C arrays beside the cache):
--   pos[r]      the column (= position) where the row's next token goes
--   ids[r]      the row's last drawn token (the next step's input)
--   lens[r]     pos[r] + 1 during a step: the positions the row attends to
--   stream[r], counter[r]   the Philox counter of the row's next draw:
--               (prompt key, sample << 32 | token index)
--   row[r]      the sequence (a Lua table collecting ids and log-probs)
-- The engine object is itself the decoder's cache (len, append and
-- attention: empo_kv_attention reads each row's own positions only).
local ffi = require 'ffi'
local bit = require 'bit'
local empo = require 'empo'
local E = require 'empo.ffi'
local clock = require('empo.log').clock
local C = E.C

local check = E.check
local Engine = {}
Engine.__index = Engine

function Engine.new(model, tok, prompts, o)
  local cfg = model.config
  local e = setmetatable({ model = model, tok = tok, prompts = prompts, o = o, len = 0, B = 0, next_seq = 1,
                           pre = {}, pieces = {}, done = {}, row = {} }, Engine)
  local seqs, W = {}, 0
  for p, pr in ipairs(prompts) do
    for s = 1, o.n do
      seqs[#seqs + 1] = { prompt = p, sample = s, ids = {}, logprobs = {}, ref_logprobs = {}, tail = '',
                          max_new = pr.max_new }
    end
    -- the last token of a sequence is never fed back: it needs no column
    W = math.max(W, #pr.ids + pr.max_new - 1)
  end
  e.seqs, e.N, e.W = seqs, #seqs, W
  local L, Hkv, Dh = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim
  local row_bytes = L * 2 * Hkv * W * Dh * 4
  local Bmax = math.min(e.N, o.max_batch or math.max(1, math.floor(o.max_cache_bytes / row_bytes)))
  e.Bmax = Bmax
  e.k, e.v = {}, {}
  for l = 1, L do   -- never read before written: hidden key slots are skipped by attention
    e.k[l] = empo.empty(Bmax, Hkv, W, Dh)
    e.v[l] = empo.empty(Bmax, Hkv, W, Dh)
  end
  e.ids_t, e.pos_t = empo.zeros(Bmax, { dtype = 'i64' }), empo.zeros(Bmax, { dtype = 'i64' })
  e.lp_t, e.ref_t = empo.zeros(Bmax), empo.zeros(Bmax)
  e.ids, e.pos, e.lp, e.ref = e.ids_t:data_ptr(), e.pos_t:data_ptr(), e.lp_t:data_ptr(), e.ref_t:data_ptr()
  e.lens = ffi.new('int64_t[?]', Bmax)
  e.stream, e.counter = ffi.new('uint64_t[?]', Bmax), ffi.new('uint64_t[?]', Bmax)
  e.u = ffi.new('double[?]', Bmax)
  e.seed = o.seed + 0ULL
  e.stats = { prompts = #prompts, n = o.n, sequences = e.N, tokens = 0, steps = 0, prefills = 0,
              prefill_tokens = 0, max_batch = Bmax, cache_bytes = Bmax * row_bytes }
  return e
end

function Engine:free()
  for l = 1, #self.k do self.k[l]:free(); self.v[l]:free() end
  for _, t in ipairs({ self.ids_t, self.pos_t, self.lp_t, self.ref_t }) do t:free() end
  for _, pre in pairs(self.pre) do self:drop_prefill(pre.batch) end
  self.k, self.v, self.pre = {}, {}, {}
end

-- ---- the decoder's cache protocol ----

-- k, v [B, Hkv, 1, Dh] go to column pos[r] of each row r.
function Engine:append(l, k, v)
  check(C.empo_kv_write(self.k[l].h, k.h, self.pos), 2)
  check(C.empo_kv_write(self.v[l].h, v.h, self.pos), 2)
  return k, v
end

local outp = ffi.new('empo_tensor*[1]')

-- q [B, Hq, 1, Dh] over positions 0 .. lens[r]-1 of each row r.
function Engine:attention(l, q)
  check(C.empo_kv_attention(outp, q.h, self.k[l].h, self.v[l].h, self.lens, 0), 2)
  return empo.wrap(outp[0])
end

-- Views of the first B rows (made again when B changes).
function Engine:views()
  local B = self.B
  if self.views_of == B then return end
  self.views_of = B
  self.fwd = { cache = self, positions = self.pos_t:narrow(1, 1, B):view(B, 1) }
  self.ids_in = self.ids_t:narrow(1, 1, B):view(B, 1)
end

-- ---- drawing and bookkeeping ----

-- Draws the tokens of rows lo .. lo+n-1 from logits [n, V] (or [n, 1, V]).
function Engine:draw(logits, lo, n)
  C.empo_sample_uniforms(self.u + lo, n, self.seed, self.stream + lo, self.counter + lo)
  local ids, lp, ref = self.ids_t:narrow(1, lo + 1, n), self.lp_t:narrow(1, lo + 1, n), self.ref_t:narrow(1, lo + 1, n)
  check(C.empo_sample(ids.h, lp.h, ref.h, logits.h, self.o.sampling, self.u + lo), 2)
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
    local k = #seq.ids + 1
    seq.ids[k], seq.logprobs[k], seq.ref_logprobs[k] = id, tonumber(lp[r]), tonumber(ref[r])
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

-- Removes the finished rows: the live rows at the end of the batch move
-- into their places (cache rows, mask, counters), so only as many rows
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
  end
  for r = nb, B - 1 do
    if not gone[r] then movers[#movers + 1] = r end
  end
  local m = #holes
  if m > 0 then
    local dst, src, cols = ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m), 0
    for i = 1, m do
      dst[i - 1], src[i - 1] = holes[i], movers[i]
      cols = math.max(cols, tonumber(self.pos[movers[i]]))
    end
    for l = 1, #self.k do
      check(C.empo_kv_copy_rows(self.k[l].h, self.k[l].h, m, dst, src, cols))
      check(C.empo_kv_copy_rows(self.v[l].h, self.v[l].h, m, dst, src, cols))
    end
    for i = 1, m do
      local d, s = holes[i], movers[i]
      self.pos[d], self.ids[d], self.stream[d], self.counter[d] = self.pos[s], self.ids[s], self.stream[s], self.counter[s]
      self.row[d] = self.row[s]
    end
  end
  for r = nb, B - 1 do self.row[r] = nil end
  self.B, self.done = nb, {}
end

-- ---- prefill and admission ----

-- The prefill's cache: keeps each layer's keys and values (contiguous).
local function prefill_append(pc, l, k, v)
  k, v = k:contiguous(), v:contiguous()
  pc.k[l], pc.v[l] = k, v
  return k, v
end

-- Runs the prompts `list` (indices) once, right-padded: their keys and
-- values and last-token logits stay in a prefill record until all their
-- samples have rows.
function Engine:prefill(list)
  local m, T = #list, 0
  for _, p in ipairs(list) do T = math.max(T, #self.prompts[p].ids) end
  local ids, last = empo.zeros(m, T, { dtype = 'i64' }), empo.zeros(m, { dtype = 'i64' })
  local pi, pl = ids:data_ptr(), last:data_ptr()
  for i, p in ipairs(list) do
    local pr = self.prompts[p].ids
    for t = 1, #pr do pi[(i - 1) * T + t - 1] = pr[t] end
    pl[i - 1] = (i - 1) * T + #pr - 1
  end
  local pc = { len = 0, k = {}, v = {}, append = prefill_append }
  local h = self.model:hidden(ids, { cache = pc })   -- causal: no real token sees the padding after it
  local hl = h:view(m * T, h:size(3)):index_select(1, last)
  local batch = { k = pc.k, v = pc.v, logits = self.model:logits(hl), T = T, left = m * self.o.n }
  h:free(); hl:free(); ids:free(); last:free()
  for i, p in ipairs(list) do self.pre[p] = { batch = batch, row = i - 1 } end
  self.stats.prefills = self.stats.prefills + 1
  self.stats.prefill_tokens = self.stats.prefill_tokens + m * T
end

function Engine:drop_prefill(batch)
  if batch.logits then
    for l = 1, #batch.k do batch.k[l]:free(); batch.v[l]:free() end
    batch.logits:free()
    batch.logits = nil
  end
end

-- Prefills the prompts of `take` (sequences) that have no prefill yet, in
-- chunks of at most prefill_tokens padded tokens.
function Engine:prefill_for(take)
  local chunk, T = {}, 0
  local function flush()
    if #chunk > 0 then self:prefill(chunk) end
    chunk, T = {}, 0
  end
  for _, q in ipairs(take) do
    local p = q.prompt
    if not self.pre[p] and chunk[#chunk] ~= p then
      local len = #self.prompts[p].ids
      if (#chunk + 1) * math.max(T, len) > self.o.prefill_tokens then flush() end
      chunk[#chunk + 1] = p
      T = math.max(T, len)
    end
  end
  flush()
end

-- Gives free rows to waiting sequences (prompt-major order): at the start,
-- and later when every remaining sample of the next prompt fits.
function Engine:admit()
  local free, first = self.Bmax - self.B, self.seqs[self.next_seq]
  if not first or free == 0 then return end
  if self.B > 0 and free < math.min(self.o.n - first.sample + 1, self.Bmax) then return end
  local take = {}
  while #take < free and self.next_seq <= self.N do
    take[#take + 1] = self.seqs[self.next_seq]
    self.next_seq = self.next_seq + 1
  end
  self:prefill_for(take)
  local r0 = self.B
  -- rows r0 .. r0 + #take - 1, in runs of one prefill batch each
  local i = 1
  while i <= #take do
    local batch = self.pre[take[i].prompt].batch
    local j = i
    while j < #take and self.pre[take[j + 1].prompt].batch == batch do j = j + 1 end
    local m = j - i + 1
    local dst, src = ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m)
    local rows = empo.zeros(m, { dtype = 'i64' })
    local rp = rows:data_ptr()
    for a = i, j do
      local q, r = take[a], r0 + a - 1
      local pre, plen = self.pre[q.prompt], #self.prompts[q.prompt].ids
      dst[a - i], src[a - i], rp[a - i] = r, pre.row, pre.row
      self.pos[r] = plen
      self.stream[r] = self.prompts[q.prompt].key
      self.counter[r] = bit.lshift(q.sample - 1 + 0ULL, 32)
      self.row[r] = q
    end
    for l = 1, #self.k do
      check(C.empo_kv_copy_rows(self.k[l].h, batch.k[l].h, m, dst, src, batch.T))
      check(C.empo_kv_copy_rows(self.v[l].h, batch.v[l].h, m, dst, src, batch.T))
    end
    local logits = batch.logits:index_select(1, rows)
    self:draw(logits, r0 + i - 1, m)
    logits:free(); rows:free()
    batch.left = batch.left - m
    if batch.left == 0 then self:drop_prefill(batch) end
    i = j + 1
  end
  for _, q in ipairs(take) do
    local pre = self.pre[q.prompt]
    if pre and not pre.batch.logits then self.pre[q.prompt] = nil end
  end
  self.B = r0 + #take
  self:record(r0, self.B)
end

-- ---- the loop ----

-- One decode step for every row: feed the last tokens, draw the next.
function Engine:step()
  self:views()
  local B, pos, lens = self.B, self.pos, self.lens
  for r = 0, B - 1 do lens[r] = pos[r] + 1 end
  local h = self.model:hidden(self.ids_in, self.fwd)
  local logits = self.model:logits(h)
  h:free()
  self:draw(logits, 0, B)
  logits:free()
  for r = 0, B - 1 do pos[r] = pos[r] + 1 end
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
