-- empo.generate.kv_cache — the sampling engine's KV cache: allocated once
-- for a generate() call, it keeps each prompt in the batch once (a slot,
-- shared by all its samples' rows) and each row's own generated positions,
-- and it is the cache the decoder appends to and attends over. Not the
-- training side's empo.nn.KVCache (one length for the whole batch), and
-- not a scheduler: which sequence holds a row is empo.generate.engine's.
--
-- Per layer l:
--   pk[l], pv[l]  [slots, Hkv, longest prompt, Dh]     each prompt once (a slot)
--   k[l], v[l]    [max_batch, Hkv, max_new - 1, Dh]    each row's generated tokens
-- Per row r, rows 0 .. B-1 (0-based C arrays):
--   col[r]    the row's own column where its next token goes (= tokens fed)
--   pos[r]    that token's position: prompt length + col[r] (pos_t: the same
--             values as an i64 tensor, the Lua model's positions)
--   prow[r]   the row's prompt slot; plen[slot] that prompt's length
--   lens[r]   col[r] + 1 during a Lua step: the own positions the row attends to
-- The decoder's cache protocol (empo.nn.transformer): len, append(l, k, v)
-- and attention(l, q); empo_kv_attention reads each prompt once for all
-- its rows, then each row's own positions.
local ffi = require 'ffi'
local empo = require 'empo'
local E = require 'empo.tensor.ffi'
local C = E.C

local check = E.check
local Cache = {}
Cache.__index = Cache

-- The most rows (<= N) whose cache fits the budget: B own rows and up to
-- B + 1 prompt slots (the prompts of live rows, and one whose samples wait).
local function rows_for(o, N, P, own_bytes, prompt_bytes)
  if o.max_batch then return math.min(N, o.max_batch) end
  for B = N, 2, -1 do
    if B * own_bytes + math.min(P, B + 1) * prompt_bytes <= o.max_cache_bytes then return B end
  end
  return 1
end

-- The cache for N sequences of P prompts: prompts of up to Tp tokens, up to
-- Wg own positions per row; as many rows as o.max_batch or
-- o.max_cache_bytes allow (Bmax), one slot more than rows (at most P); in
-- the memory of device ('cpu', 'cuda': the model's).
function Cache.new(cfg, N, P, Tp, Wg, o, device)
  local L, Hkv, Dh = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim
  local own_bytes, prompt_bytes = L * 2 * Hkv * Wg * Dh * 4, L * 2 * Hkv * Tp * Dh * 4
  local Bmax = rows_for(o, N, P, own_bytes, prompt_bytes)
  local slots = math.min(P, Bmax + 1)
  local c = setmetatable({ len = 0, Bmax = Bmax, bytes = Bmax * own_bytes + slots * prompt_bytes,
                           k = {}, v = {}, pk = {}, pv = {}, free_slots = {} }, Cache)
  local on = { device = device }
  for l = 1, L do   -- never read before written: attention reads only the positions it is told
    c.k[l], c.v[l] = empo.empty(Bmax, Hkv, Wg, Dh, on), empo.empty(Bmax, Hkv, Wg, Dh, on)
    c.pk[l], c.pv[l] = empo.empty(slots, Hkv, Tp, Dh, on), empo.empty(slots, Hkv, Tp, Dh, on)
  end
  for s = slots - 1, 0, -1 do c.free_slots[#c.free_slots + 1] = s end
  c.pos_t = empo.zeros(Bmax, { dtype = 'i64' })
  c.pos = c.pos_t:data_ptr()
  c.col, c.lens, c.prow = ffi.new('int64_t[?]', Bmax), ffi.new('int64_t[?]', Bmax), ffi.new('int64_t[?]', Bmax)
  c.plen = ffi.new('int64_t[?]', slots)
  return c
end

function Cache:free()
  for l = 1, #self.k do
    self.k[l]:free(); self.v[l]:free(); self.pk[l]:free(); self.pv[l]:free()
  end
  self.pos_t:free()
  self.k, self.v, self.pk, self.pv = {}, {}, {}, {}
end

-- ---- prompt slots ----

function Cache:slots_free() return #self.free_slots end

-- A free slot for a prompt of n tokens (plen[slot] = n).
function Cache:take_slot(n)
  local slot = table.remove(self.free_slots)
  self.plen[slot] = n
  return slot
end

function Cache:give_slot(slot) self.free_slots[#self.free_slots + 1] = slot end

-- Copies rows src of keys[l], values[l] ([m, Hkv, T, Dh] per layer: the
-- Lua model's prefill) into prompt slots dst (int64_t[m] each).
function Cache:write_prompts(keys, values, m, dst, src, T)
  for l = 1, #self.pk do
    check(C.empo_kv_copy_rows(self.pk[l].h, keys[l].h, m, dst, src, T))
    check(C.empo_kv_copy_rows(self.pv[l].h, values[l].h, m, dst, src, T))
  end
end

-- ---- rows ----

-- Row r starts on the prompt in slot: no own positions yet.
function Cache:open_row(r, slot)
  self.col[r], self.pos[r], self.prow[r] = 0, self.plen[slot], slot
end

-- Rows 0 .. B-1 have been fed one token each.
function Cache:advance(B)
  local col, pos = self.col, self.pos
  for r = 0, B - 1 do
    col[r] = col[r] + 1
    pos[r] = pos[r] + 1
  end
end

-- Rows src[i] move to rows dst[i] (int64_t[m] each): their own positions
-- and their place (col, pos, prow).
function Cache:move_rows(m, dst, src)
  local col, pos, prow = self.col, self.pos, self.prow
  local cols = 0
  for i = 0, m - 1 do cols = math.max(cols, tonumber(col[src[i]])) end
  for l = 1, #self.k do
    check(C.empo_kv_copy_rows(self.k[l].h, self.k[l].h, m, dst, src, cols))
    check(C.empo_kv_copy_rows(self.v[l].h, self.v[l].h, m, dst, src, cols))
  end
  for i = 0, m - 1 do
    local d, s = tonumber(dst[i]), tonumber(src[i])
    col[d], pos[d], prow[d] = col[s], pos[s], prow[s]
  end
end

-- ---- the decoder's cache protocol ----

-- k, v [B, Hkv, 1, Dh] go to the own column col[r] of each row r.
function Cache:append(l, k, v)
  check(C.empo_kv_write(self.k[l].h, k.h, self.col), 2)
  check(C.empo_kv_write(self.v[l].h, v.h, self.col), 2)
  return k, v
end

local outp = ffi.new('empo_tensor*[1]')

-- q [B, Hq, 1, Dh] over each row's prompt, then its own positions 0 .. lens[r]-1.
function Cache:attention(l, q)
  check(C.empo_kv_attention(outp, q.h, self.pk[l].h, self.pv[l].h, self.prow, self.plen, self.k[l].h, self.v[l].h,
                            self.lens, 0), 2)
  return empo.wrap(outp[0])
end

return Cache
