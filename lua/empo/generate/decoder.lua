-- empo.generate.decoder — what runs the model for the sampling engine, over
-- its KV cache (empo.generate.kv_cache):
--
--     local d, note = decoder.new(model, cache, ids_t, o)   -- d.kind: 'c' or 'lua'
--     local logits, tokens = d:prefill(prompts, list)       -- [#list, V], the tokens run
--     local logits = d:step(B)                              -- [B, V]: rows 0 .. B-1 fed ids_t[r]
--
-- ids_t is a host tensor (the engine writes it); the logits are on the
-- model's device (the C decoder uploads its index arrays itself, the Lua
-- model's inputs go up through a device twin of ids_t).
--
-- Two kinds with the same methods. The C decoder (core/include/empo/decoder.h: the
-- same arithmetic in one parallel region per call) runs a stock model,
-- which it gets from model:decoder_spec(); any other model, or one the C
-- decoder refuses (note says why, say weights that are not f32), runs on
-- its own Lua functions (model:hidden, model:logits). new() is the only
-- place that chooses. Not a scheduler: the engine decides which rows run.
local ffi = require 'ffi'
local empo = require 'empo'
local E = require 'empo.tensor.ffi'
local C = E.C
local device_of = require('empo.nn.module').device_of

local check = E.check
local M = {}

local CDecoder = {}
CDecoder.__index = CDecoder
local LuaDecoder = {}
LuaDecoder.__index = LuaDecoder

-- The decoder for model over cache (o.c_decode = false: always the Lua
-- model's), and, when the C decoder refused the model, its message.
-- o.bf16_weights: the C decoder reads bf16 copies of the projections and
-- the LM head, made here from the weights as they are now (so each call
-- of the sampler sees the latest optimizer step) and freed with the
-- decoder; the Lua model has no such path and stays f32 (the note says so).
function M.new(model, cache, ids_t, o)
  local spec = o.c_decode and model.decoder_spec and model:decoder_spec()
  if spec then
    local copies = o.bf16_weights and M.bf16_copies(spec) or nil
    local d, note = M.c(model, spec, cache, ids_t)
    if d then
      d.copies, d.weights = copies, spec.head:dtype()   -- (bf16: copies, or a LoRA run's frozen base)
      return d
    end
    M.free_copies(copies)
    return M.lua(model, cache, ids_t), note
  end
  return M.lua(model, cache, ids_t), o.bf16_weights and 'bf16_weights needs the C decoder; the Lua model ran in f32'
                                     or nil
end

local BF16_WEIGHTS = { 'q', 'k', 'v', 'o', 'gate', 'up', 'down' }

-- Replaces spec's projection weights and head by bf16 copies (the
-- embedding stays f32: the decoder looks rows up in it); returns the
-- copies made here, to free when the decoder goes (a mixed-precision
-- model's copies, empo.nn.mixed, are used as they are).
function M.bf16_copies(spec)
  local copies, mixed = {}, require 'empo.nn.mixed'
  local function copy(t)
    if t:dtype() == 'bf16' then return t end    -- bf16 already (a LoRA run's frozen base): read as it is
    local shared = mixed.copy_of(t)             -- a mixed-precision model's own copy: no second one
    if shared then return shared end
    local c = t:detach():bfloat16()
    copies[#copies + 1] = c
    return c
  end
  for _, w in ipairs(spec.layer) do
    for _, name in ipairs(BF16_WEIGHTS) do w[name] = copy(w[name]) end
  end
  spec.head = copy(spec.head)
  return copies
end

function M.free_copies(copies)
  for _, c in ipairs(copies or {}) do c:free() end
end

-- ---- the C decoder ----

local function h(t) return t and t.h or nil end

-- The C decoder of spec (model:decoder_spec()) over cache, reading each
-- row's input token from ids_t (i64 [max_batch]); nil and the decoder's
-- message when it refuses the model.
function M.c(model, spec, cache, ids_t)
  local L = spec.layers
  local layers = ffi.new('empo_decoder_layer_spec[?]', L)
  for l = 1, L do
    local w, s = spec.layer[l], layers[l - 1]
    s.input_norm, s.post_norm, s.input_eps, s.post_eps = w.input_norm.h, w.post_norm.h, w.input_eps, w.post_eps
    s.q, s.q_bias, s.k, s.k_bias = w.q.h, h(w.q_bias), w.k.h, h(w.k_bias)
    s.v, s.v_bias, s.o, s.o_bias = w.v.h, h(w.v_bias), w.o.h, h(w.o_bias)
    s.gate, s.up, s.down = w.gate.h, w.up.h, w.down.h
    s.prompt_k, s.prompt_v, s.own_k, s.own_v = cache.pk[l].h, cache.pv[l].h, cache.k[l].h, cache.v[l].h
    for i, ad in pairs(w.lora or {}) do s.lora_a[i], s.lora_b[i] = ad.a.h, ad.b.h end   -- (0-based slots)
  end
  local desc = ffi.new('empo_decoder_spec', { L, spec.heads, spec.kv_heads, spec.rope_theta, spec.norm_eps,
                                              spec.embed.h, spec.norm.h, spec.head.h, layers, spec.lora_scaling or 0 })
  local out = ffi.new('empo_decoder*[1]')
  if C.empo_decoder_new(out, desc, cache.Bmax) ~= 0 then return nil, ffi.string(C.empo_last_error()) end
  local V, device = model.config.vocab_size, spec.embed.device
  local on = { device = device }
  return setmetatable({ kind = 'c', handle = out[0], cache = cache, ids = ids_t:data_ptr(), V = V, on = on,
                        logits_t = empo.empty(cache.Bmax, V, on) }, CDecoder)
end

-- { recorded, replayed }: the CUDA graphs of its steps (EMPO_CUDA_GRAPHS=1 on a GPU)
function CDecoder:graph_counts()
  local n = ffi.new('int64_t[2]')
  C.empo_decoder_graph_counts(self.handle, n, n + 1)
  return { recorded = tonumber(n[0]), replayed = tonumber(n[1]) }
end

function CDecoder:free()
  if self.handle then
    C.empo_decoder_free(self.handle)
    self.handle = nil
    self.logits_t:free()
    M.free_copies(self.copies)   -- the decoder held its own references; these are the Lua side's
    self.copies = nil
  end
end

-- Runs the prompts `list` (indices into prompts) once, each prompt's
-- tokens as rows, causal within the prompt, and leaves their keys and
-- values in free slots of the cache (pr.slot). Returns the logits of each
-- prompt's last token [#list, V] and the tokens run.
function CDecoder:prefill(prompts, list)
  local cache = self.cache
  local m, tokens = #list, 0
  for _, p in ipairs(list) do tokens = tokens + #prompts[p].ids end
  local ids, len, slot = ffi.new('int64_t[?]', tokens), ffi.new('int64_t[?]', m), ffi.new('int64_t[?]', m)
  local at = 0
  for i, p in ipairs(list) do
    local pr = prompts[p]
    for t = 1, #pr.ids do ids[at + t - 1] = pr.ids[t] end
    at = at + #pr.ids
    pr.slot = cache:take_slot(#pr.ids)
    len[i - 1], slot[i - 1] = #pr.ids, pr.slot
  end
  local logits = empo.empty(m, self.V, self.on)
  check(C.empo_decoder_prefill(self.handle, logits.h, m, ids, len, slot))
  return logits, tokens
end

-- One decode step of rows 0 .. B-1: logits [B, V], a view of the
-- decoder's own buffer (valid until the next step).
function CDecoder:step(B)
  local c = self.cache
  local logits = self.logits_t:narrow(1, 1, B)
  check(C.empo_decoder_step(self.handle, logits.h, B, self.ids, c.pos, c.col, c.prow, c.plen))
  return logits
end

-- ---- the Lua model ----

-- The Lua model over cache, reading each row's input token from ids_t.
function M.lua(model, cache, ids_t)
  local device = device_of(model)
  local d = setmetatable({ kind = 'lua', model = model, cache = cache, ids_t = ids_t, pos_t = cache.pos_t,
                           device = device }, LuaDecoder)
  if device ~= 'cpu' then   -- device twins of the rows' input ids and positions, uploaded before each step
    d.host_ids, d.host_pos = ids_t, cache.pos_t
    d.ids_t = empo.zeros(cache.Bmax, { dtype = 'i64', device = device })
    d.pos_t = empo.zeros(cache.Bmax, { dtype = 'i64', device = device })
  end
  return d
end

function LuaDecoder:free()
  if self.host_ids then self.ids_t:free(); self.pos_t:free() end
end

-- The prefill's cache: keeps each layer's keys and values (contiguous).
local function prefill_append(pc, l, k, v)
  k, v = k:contiguous(), v:contiguous()
  pc.k[l], pc.v[l] = k, v
  return k, v
end

-- As CDecoder:prefill, on the prompts right-padded (the tokens run count
-- the padding).
function LuaDecoder:prefill(prompts, list)
  local m, T = #list, 0
  for _, p in ipairs(list) do T = math.max(T, #prompts[p].ids) end
  local ids, last = empo.zeros(m, T, { dtype = 'i64' }), {}
  local pi = ids:data_ptr()
  for i, p in ipairs(list) do
    local pr = prompts[p].ids
    for t = 1, #pr do pi[(i - 1) * T + t - 1] = pr[t] end
    last[i] = #pr - 1
  end
  if self.device ~= 'cpu' then
    local up = ids:to(self.device)
    ids:free()
    ids = up
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
    local pr = prompts[p]
    pr.slot = self.cache:take_slot(#pr.ids)
    dst[i - 1], src[i - 1] = pr.slot, i - 1
  end
  self.cache:write_prompts(pc.k, pc.v, m, dst, src, T)
  for l = 1, #pc.k do pc.k[l]:free(); pc.v[l]:free() end
  return logits, m * T
end

-- Views of the first B rows (made again when B changes).
function LuaDecoder:views(B)
  if self.views_of == B then return end
  self.views_of = B
  self.fwd = { cache = self.cache, positions = self.pos_t:narrow(1, 1, B):view(B, 1) }
  self.ids_in = self.ids_t:narrow(1, 1, B):view(B, 1)
end

-- One decode step of rows 0 .. B-1: logits [B, V] (a new tensor).
function LuaDecoder:step(B)
  local col, lens = self.cache.col, self.cache.lens
  self:views(B)
  for r = 0, B - 1 do lens[r] = col[r] + 1 end
  if self.host_ids then
    self.ids_t:narrow(1, 1, B):copy_(self.host_ids:narrow(1, 1, B))
    self.pos_t:narrow(1, 1, B):copy_(self.host_pos:narrow(1, 1, B))
  end
  local h = self.model:hidden(self.ids_in, self.fwd)
  local logits = self.model:logits(h)
  h:free()
  return logits
end

return M
