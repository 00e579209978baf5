-- empo.sample_engine — the batch behind empo.sample.generate (see the top of
-- lua/empo/sample.lua for the design): the KV cache, prefill of new
-- prompts, decode steps, row compaction and admission. Not a public
-- module: generate() validates everything before an Engine is made.
--
-- The cache has two parts, per layer:
--   pk, pv [slots, Hkv, longest prompt, Dh]   each prompt in the batch once
--              (a slot), shared by all its samples' rows;
--   k, v   [max_batch, Hkv, max_new - 1, Dh]  each row's generated tokens.
-- Row state, for rows 0 .. B-1 (0-based, C arrays beside the cache):
--   col[r]      the row's own column where its next token goes (= tokens fed)
--   pos[r]      that token's position: prompt length + col[r]
--   ids[r]      the row's last drawn token (the next step's input)
--   prow[r]     the row's prompt slot; plen[slot] its prompt length
--   lens[r]     col[r] + 1 during a step: the own positions the row attends to
--   stream[r], counter[r]   the Philox counter of the row's next draw:
--               (prompt key, sample << 32 | token index)
--   row[r]      the sequence (a Lua table collecting ids and log-probs)
-- The engine object is itself the decoder's cache (len, append and
-- attention: empo_kv_attention reads each prompt once for all its rows,
-- then each row's own positions). For the stock decoder (model:is_stock())
-- the prefill and each decode step run in C instead (core/empo_decode.h:
-- the same arithmetic in one parallel region per call, on the same
-- cache).
local ffi = require 'ffi'
local bit = require 'bit'
local empo = require 'empo'
local E = require 'empo.tensor.ffi'
local clock = require('empo.run.log').clock
local C = E.C
local new_table = require 'table.new'

local check = E.check
local Engine = {}
Engine.__index = Engine

-- The most rows (<= N) whose cache fits the budget: B own rows and up to
-- B + 1 prompt slots (the prompts of live rows, and one whose samples wait).
local function rows_for(o, N, P, own_bytes, prompt_bytes)
  if o.max_batch then return math.min(N, o.max_batch) end
  for B = N, 2, -1 do
    if B * own_bytes + math.min(P, B + 1) * prompt_bytes <= o.max_cache_bytes then return B end
  end
  return 1
end

function Engine.new(model, tok, prompts, o)
  local cfg = model.config
  local e = setmetatable({ model = model, tok = tok, prompts = prompts, o = o, len = 0, B = 0, next_seq = 1,
                           pieces = {}, done = {}, row = {}, free_slots = {} }, Engine)
  local seqs, Tp, Wg = {}, 0, 1
  for p, pr in ipairs(prompts) do
    for s = 1, o.n do
      local m = pr.max_new   -- preallocated: no resizing as tokens arrive
      seqs[#seqs + 1] = { prompt = p, sample = s, ids = new_table(m, 0), logprobs = new_table(m, 0),
                          ref_logprobs = new_table(m, 0), tail = '',
                          max_new = m, n = 0 }
    end
    pr.left, pr.live = o.n, 0   -- samples without a row yet; rows alive
    Tp = math.max(Tp, #pr.ids)
    Wg = math.max(Wg, pr.max_new - 1)   -- the last token is never fed back: it needs no column
  end
  e.seqs, e.N = seqs, #seqs
  local L, Hkv, Dh = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim
  local own_bytes, prompt_bytes = L * 2 * Hkv * Wg * Dh * 4, L * 2 * Hkv * Tp * Dh * 4
  local Bmax = rows_for(o, e.N, #prompts, own_bytes, prompt_bytes)
  local slots = math.min(#prompts, Bmax + 1)
  e.Bmax = Bmax
  e.k, e.v, e.pk, e.pv = {}, {}, {}, {}
  for l = 1, L do   -- never read before written: attention reads only the positions it is told
    e.k[l], e.v[l] = empo.empty(Bmax, Hkv, Wg, Dh), empo.empty(Bmax, Hkv, Wg, Dh)
    e.pk[l], e.pv[l] = empo.empty(slots, Hkv, Tp, Dh), empo.empty(slots, Hkv, Tp, Dh)
  end
  for s = slots - 1, 0, -1 do e.free_slots[#e.free_slots + 1] = s end
  e.ids_t, e.pos_t = empo.zeros(Bmax, { dtype = 'i64' }), empo.zeros(Bmax, { dtype = 'i64' })
  e.lp_t, e.ref_t = empo.zeros(Bmax), empo.zeros(Bmax)
  e.ids, e.pos, e.lp, e.ref = e.ids_t:data_ptr(), e.pos_t:data_ptr(), e.lp_t:data_ptr(), e.ref_t:data_ptr()
  e.col, e.lens, e.prow = ffi.new('int64_t[?]', Bmax), ffi.new('int64_t[?]', Bmax), ffi.new('int64_t[?]', Bmax)
  e.plen = ffi.new('int64_t[?]', slots)
  e.stream, e.counter = ffi.new('uint64_t[?]', Bmax), ffi.new('uint64_t[?]', Bmax)
  e.u = ffi.new('double[?]', Bmax)
  e.seed = o.seed + 0ULL
  e.stats = { prompts = #prompts, n = o.n, sequences = e.N, tokens = 0, steps = 0, prefills = 0,
              prefill_tokens = 0, max_batch = Bmax, cache_bytes = Bmax * own_bytes + slots * prompt_bytes,
              decode = 'lua' }
  if o.c_decode and Wg > 0 and model.is_stock and model:is_stock() then e:c_decoder() end
  return e
end

-- The C decoder (prefill and decode step) over this engine's cache
-- (stats.decode = 'c'), or the Lua model's when the decoder refuses the
-- model (stats.decode_note says why: say weights that are not f32).
function Engine:c_decoder()
  local model, cfg = self.model, self.model.config
  local L = cfg.num_hidden_layers
  local specs = ffi.new('empo_decoder_layer_spec[?]', L)
  local function h(t) return t and t.h or nil end
  for l = 1, L do
    local b = model.model.layers:at(l)
    local a, m, s = b.self_attn, b.mlp, specs[l - 1]
    s.input_norm, s.post_norm = b.input_layernorm.weight.h, b.post_attention_layernorm.weight.h
    s.input_eps, s.post_eps = b.input_layernorm.eps, b.post_attention_layernorm.eps
    s.q, s.q_bias, s.k, s.k_bias = a.q_proj.weight.h, h(a.q_proj.bias), a.k_proj.weight.h, h(a.k_proj.bias)
    s.v, s.v_bias, s.o, s.o_bias = a.v_proj.weight.h, h(a.v_proj.bias), a.o_proj.weight.h, h(a.o_proj.bias)
    s.gate, s.up, s.down = m.gate_proj.weight.h, m.up_proj.weight.h, m.down_proj.weight.h
    s.prompt_k, s.prompt_v, s.own_k, s.own_v = self.pk[l].h, self.pv[l].h, self.k[l].h, self.v[l].h
  end
  local body = model.model
  local spec = ffi.new('empo_decoder_spec', { L, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.rope_theta,
    body.norm.eps, body.embed_tokens.weight.h, body.norm.weight.h,
    (model.lm_head and model.lm_head.weight or body.embed_tokens.weight).h, specs })
  local out = ffi.new('empo_decoder*[1]')
  if C.empo_decoder_new(out, spec, self.Bmax) ~= 0 then
    self.stats.decode_note = ffi.string(C.empo_last_error())
    return
  end
  self.decoder = out[0]
  self.logits_t = empo.empty(self.Bmax, cfg.vocab_size)
  self.stats.decode = 'c'
end

function Engine:free()
  if self.decoder then
    C.empo_decoder_free(self.decoder)
    self.decoder = nil
    self.logits_t:free()
  end
  for l = 1, #self.k do
    self.k[l]:free(); self.v[l]:free(); self.pk[l]:free(); self.pv[l]:free()
  end
  for _, t in ipairs({ self.ids_t, self.pos_t, self.lp_t, self.ref_t }) do t:free() end
  for _, pr in ipairs(self.prompts) do
    if pr.logits then pr.logits:free(); pr.logits = nil end
  end
  self.k, self.v, self.pk, self.pv = {}, {}, {}, {}
end

-- ---- the decoder's cache protocol ----

-- k, v [B, Hkv, 1, Dh] go to the own column col[r] of each row r.
function Engine:append(l, k, v)
  check(C.empo_kv_write(self.k[l].h, k.h, self.col), 2)
  check(C.empo_kv_write(self.v[l].h, v.h, self.col), 2)
  return k, v
end

local outp = ffi.new('empo_tensor*[1]')

-- q [B, Hq, 1, Dh] over each row's prompt, then its own positions 0 .. lens[r]-1.
function Engine:attention(l, q)
  check(C.empo_kv_attention(outp, q.h, self.pk[l].h, self.pv[l].h, self.prow, self.plen, self.k[l].h, self.v[l].h,
                            self.lens, 0), 2)
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
    local k = seq.n + 1
    seq.n = k
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

-- A prompt's slot goes back when no row uses it and no sample waits.
function Engine:release(pr)
  if pr.left == 0 and pr.live == 0 and pr.slot then
    self.free_slots[#self.free_slots + 1] = pr.slot
    pr.slot = nil
  end
end

-- Removes the finished rows: the live rows at the end of the batch move
-- into their places (own cache rows and row state), so only as many rows
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
    local dst, src, cols = ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m), 0
    for i = 1, m do
      dst[i - 1], src[i - 1] = holes[i], movers[i]
      cols = math.max(cols, tonumber(self.col[movers[i]]))
    end
    for l = 1, #self.k do
      check(C.empo_kv_copy_rows(self.k[l].h, self.k[l].h, m, dst, src, cols))
      check(C.empo_kv_copy_rows(self.v[l].h, self.v[l].h, m, dst, src, cols))
    end
    for i = 1, m do
      local d, s = holes[i], movers[i]
      self.col[d], self.pos[d], self.ids[d], self.prow[d] = self.col[s], self.pos[s], self.ids[s], self.prow[s]
      self.stream[d], self.counter[d] = self.stream[s], self.counter[s]
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

-- A free prompt slot for prompt pr (its cache rows; plen[slot] its length).
function Engine:take_slot(pr)
  pr.slot = table.remove(self.free_slots)
  self.plen[pr.slot] = #pr.ids
  return pr.slot
end

-- Runs the prompts `list` (indices) once and leaves their keys and values
-- in free prompt slots; keeps each prompt's last-token logits [1, V] until
-- all its samples have rows. The C decoder's prefill when there is one
-- (each prompt's tokens as rows, causal within the prompt), else the Lua
-- model on the prompts right-padded.
function Engine:prefill(list)
  local logits, tokens = (self.decoder and self.prefill_c or self.prefill_lua)(self, list)
  for i, p in ipairs(list) do self.prompts[p].logits = logits:narrow(1, i, 1) end
  logits:free()   -- the prompts' views keep its storage
  self.stats.prefills = self.stats.prefills + 1
  self.stats.prefill_tokens = self.stats.prefill_tokens + tokens
end

-- Both prefills return the logits [#list, V] and the tokens they ran.
function Engine:prefill_c(list)
  local m, tokens = #list, 0
  for _, p in ipairs(list) do tokens = tokens + #self.prompts[p].ids end
  local ids, len, slot = ffi.new('int64_t[?]', tokens), ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m)
  local at = 0
  for i, p in ipairs(list) do
    local pr = self.prompts[p]
    for t = 1, #pr.ids do ids[at + t - 1] = pr.ids[t] end
    at = at + #pr.ids
    len[i - 1], slot[i - 1] = #pr.ids, self:take_slot(pr)
  end
  local logits = empo.empty(m, self.model.config.vocab_size)
  check(C.empo_decoder_prefill(self.decoder, logits.h, m, ids, len, slot))
  return logits, tokens
end

function Engine:prefill_lua(list)
  local m, T = #list, 0
  for _, p in ipairs(list) do T = math.max(T, #self.prompts[p].ids) end
  local ids, last = empo.zeros(m, T, { dtype = 'i64' }), {}
  local pi = ids:data_ptr()
  for i, p in ipairs(list) do
    local pr = self.prompts[p].ids
    for t = 1, #pr do pi[(i - 1) * T + t - 1] = pr[t] end
    last[i] = #pr - 1
  end
  local pc = { len = 0, k = {}, v = {}, append = prefill_append }
  -- causal: no real token sees the padding after it; the last layer runs
  -- its queries and MLP for each prompt's last token only
  local h = self.model:hidden(ids, { cache = pc, last = last })
  local hl = h:view(m, h:size(3))
  local logits = self.model:logits(hl)
  h:free(); hl:free(); ids:free()
  local dst, src = ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m)
  for i, p in ipairs(list) do
    dst[i - 1], src[i - 1] = self:take_slot(self.prompts[p]), i - 1
  end
  for l = 1, #self.pk do
    check(C.empo_kv_copy_rows(self.pk[l].h, pc.k[l].h, m, dst, src, T))
    check(C.empo_kv_copy_rows(self.pv[l].h, pc.v[l].h, m, dst, src, T))
    pc.k[l]:free(); pc.v[l]:free()
  end
  return logits, m * T   -- padded tokens
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
  local take, slots = {}, #self.free_slots
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
    self.col[r], self.pos[r], self.prow[r] = 0, #pr.ids, pr.slot
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
  local B, col, pos, lens = self.B, self.col, self.pos, self.lens
  local logits
  if self.decoder then
    logits = self.logits_t:narrow(1, 1, B)
    check(C.empo_decoder_step(self.decoder, logits.h, B, self.ids, self.pos, col, self.prow, self.plen))
  else
    self:views()
    for r = 0, B - 1 do lens[r] = col[r] + 1 end
    local h = self.model:hidden(self.ids_in, self.fwd)
    logits = self.model:logits(h)
    h:free()
  end
  self:draw(logits, 0, B)
  logits:free()
  for r = 0, B - 1 do
    col[r] = col[r] + 1
    pos[r] = pos[r] + 1
  end
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
