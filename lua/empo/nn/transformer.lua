-- empo.nn.transformer — the decoder-only transformer of the Qwen2 / Llama /
-- Mistral family, as empo.nn modules with Hugging Face names:
--
--   model.embed_tokens.weight                       [V, D]
--   model.layers.N.input_layernorm.weight           [D]
--   model.layers.N.self_attn.{q,k,v,o}_proj.weight  (+ .bias for q/k/v when qkv_bias)
--   model.layers.N.post_attention_layernorm.weight  [D]
--   model.layers.N.mlp.{gate,up,down}_proj.weight
--   model.norm.weight                               [D]
--   lm_head.weight                                  [V, D] (absent when tied)
--
-- One definition serves both paths: forward(ids) runs the whole sequence
-- (training, autograd), forward(ids, {cache = c}) appends to a KV cache and
-- attends over everything cached (incremental decoding). A test checks the
-- two give the same logits at every position. The sampler's C decoder
-- gets the model from decoder_spec() below, and only for a stock model.
-- Loading and saving checkpoints is empo.nn.models; sampling is
-- empo.generate.
local empo = require 'empo'
local module = require 'empo.nn.module'
local layers = require 'empo.nn.layers'
local checkpoint = require 'empo.nn.checkpoint'

local Module, class = module.Module, module.class
local Linear, Embedding, RMSNorm, ModuleList = layers.Linear, layers.Embedding, layers.RMSNorm, layers.ModuleList

local function new(cls) return Module.init(setmetatable({}, cls)) end

-- ---- KV cache ----
-- Per layer K and V [B, Hkv, max_len, Dh], filled left to right; `len`
-- positions are valid. Allocated once for a batch. The decoder needs only
-- `len` and append(l, k, v) -> keys, values of a cache, and uses the
-- cache's attention(l, q) when it has one: the sampler's cache (each row
-- at its own length) does, through empo_kv_attention, which a test
-- proves equal to empo.attention with the matching key mask.
local KVCache = {}
KVCache.__index = KVCache

function KVCache.new(cfg, batch, max_len)
  local self = setmetatable({ len = 0, max_len = max_len, batch = batch, k = {}, v = {} }, KVCache)
  for l = 1, cfg.num_hidden_layers do
    self.k[l] = empo.zeros(batch, cfg.num_key_value_heads, max_len, cfg.head_dim)
    self.v[l] = empo.zeros(batch, cfg.num_key_value_heads, max_len, cfg.head_dim)
  end
  return self
end

-- Writes k, v [B, Hkv, T, Dh] at positions len+1..len+T of layer l and
-- returns views of everything cached so far.
function KVCache:append(l, k, v)
  local T = k:size(3)
  if self.len + T > self.max_len then
    error(string.format('KV cache: %d cached + %d new positions exceed its %d', self.len, T, self.max_len), 3)
  end
  self.k[l]:narrow(3, self.len + 1, T):copy_(k)
  self.v[l]:narrow(3, self.len + 1, T):copy_(v)
  return self.k[l]:narrow(3, 1, self.len + T), self.v[l]:narrow(3, 1, self.len + T)
end

function KVCache:bytes()
  local n = 0
  for l = 1, #self.k do n = n + 4 * (self.k[l]:numel() + self.v[l]:numel()) end
  return n
end

function KVCache:free()
  for l = 1, #self.k do self.k[l]:free(); self.v[l]:free() end
  self.k, self.v = {}, {}
end

-- ---- Attention ----
local Attention = class('Attention')
setmetatable(Attention, { __index = Module, __call = function(cls, cfg, gen)
  local self = new(cls)
  local D, Dh = cfg.hidden_size, cfg.head_dim
  self.heads, self.kv_heads, self.head_dim, self.theta = cfg.num_attention_heads, cfg.num_key_value_heads, Dh, cfg.rope_theta
  local o = { gen = gen, std = cfg.initializer_range, empty = cfg.empty_weights }
  local qkv = { gen = gen, std = cfg.initializer_range, bias = cfg.qkv_bias, empty = cfg.empty_weights }
  self:child('q_proj', Linear(D, self.heads * Dh, qkv))
  self:child('k_proj', Linear(D, self.kv_heads * Dh, qkv))
  self:child('v_proj', Linear(D, self.kv_heads * Dh, qkv))
  o.bias = cfg.o_bias
  self:child('o_proj', Linear(self.heads * Dh, D, o))
  return self
end })

-- x [B, T, D] -> [B, T, D]. opts: cache, layer, positions (i64 [B, T]),
-- offset (first position), key_mask ([B, S], nonzero = attend), only
-- (see `rows_only`: then the output is [B, 1, D], one query per batch
-- row, while keys and values still cover all T positions).
function Attention:forward(x, opts)
  opts = opts or {}
  local B, T = x:size(1), x:size(2)
  local Dh, only = self.head_dim, opts.only
  local xq = only and only.pick(x) or x
  local q = self.q_proj(xq):view(B, only and 1 or T, self.heads, Dh):transpose(2, 3)
  local k = self.k_proj(x):view(B, T, self.kv_heads, Dh):transpose(2, 3)
  local v = self.v_proj(x):view(B, T, self.kv_heads, Dh):transpose(2, 3)
  q = empo.rope(q, only and only.positions or opts.positions, not only and opts.offset or nil, self.theta)
  k = empo.rope(k, opts.positions, opts.offset, self.theta)
  local a
  if opts.cache then k, v = opts.cache:append(opts.layer, k, v) end
  if opts.cache and opts.cache.attention then
    -- a cache that lays out its rows itself (empo.sample's: one new token
    -- per row, each row at its own length) attends over them itself
    a = opts.cache:attention(opts.layer, q)
  elseif only then   -- each query sees the keys up to its own position
    a = empo.attention(q, k, v, { causal = false, key_mask = only.key_mask(k:size(3), opts.key_mask) })
  else
    a = empo.attention(q, k, v, { causal = true, key_mask = opts.key_mask })
  end
  return self.o_proj(a:transpose(2, 3):reshape(B, only and 1 or T, self.heads * Dh))
end

-- ---- MLP (SwiGLU) ----
local MLP = class('MLP')
setmetatable(MLP, { __index = Module, __call = function(cls, cfg, gen)
  local self = new(cls)
  local o = { gen = gen, std = cfg.initializer_range, empty = cfg.empty_weights }
  self:child('gate_proj', Linear(cfg.hidden_size, cfg.intermediate_size, o))
  self:child('up_proj', Linear(cfg.hidden_size, cfg.intermediate_size, o))
  self:child('down_proj', Linear(cfg.intermediate_size, cfg.hidden_size, o))
  return self
end })

function MLP:forward(x)
  return self.down_proj(empo.swiglu(self.gate_proj(x), self.up_proj(x)))
end

-- ---- DecoderBlock (pre-norm) ----
local DecoderBlock = class('DecoderBlock')
setmetatable(DecoderBlock, { __index = Module, __call = function(cls, cfg, gen)
  local self = new(cls)
  self:child('input_layernorm', RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
  self:child('self_attn', Attention(cfg, gen))
  self:child('post_attention_layernorm', RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
  self:child('mlp', MLP(cfg, gen))
  return self
end })

function DecoderBlock:forward(h, opts)
  local a = self.self_attn(self.input_layernorm(h), opts)
  if opts and opts.only then h = opts.only.pick(h) end   -- the residual at the rows kept
  h = h + a
  return h + self.mlp(self.post_attention_layernorm(h))
end

-- ---- Transformer (…ForCausalLM) ----
local Transformer = class('Transformer')
setmetatable(Transformer, { __index = Module, __call = function(cls, cfg)
  local self = new(cls)
  self.config = cfg
  local gen = empo.Generator(cfg.seed or 0, 0)
  local body = new(class('Model'))
  local init = { gen = gen, std = cfg.initializer_range, empty = cfg.empty_weights }   -- (empty: see layers.lua)
  body:child('embed_tokens', Embedding(cfg.vocab_size, cfg.hidden_size, init))
  local layers = {}
  for l = 1, cfg.num_hidden_layers do layers[l] = DecoderBlock(cfg, gen) end
  body:child('layers', ModuleList(layers))
  body:child('norm', RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
  self:child('model', body)
  if not cfg.tie_word_embeddings then
    self:child('lm_head', Linear(cfg.hidden_size, cfg.vocab_size, init))
  end
  return self
end })

function Transformer:new_cache(batch, max_len)
  return KVCache.new(self.config, batch, max_len or self.config.max_position_embeddings)
end

-- The last layer's queries at one position per batch row, last (0-based
-- positions in ids, a list or an i64 tensor of B values): the rows of
-- [B * T] they are (and pick, which takes them from [B, T, D]), their
-- rope positions, and the key mask that lets each see the keys up to
-- itself; all on `device` (the ids').
local function rows_only(last, B, T, offset, positions, fname, device)
  if type(last) ~= 'table' then
    if not (empo.is_tensor(last) and last:numel() == B) then
      error(string.format('%s: opts.last must be a list or tensor of %d positions (one per batch row)', fname, B), 3)
    end
    last = last:tolist()
  end
  if #last ~= B then error(string.format('%s: opts.last has %d positions for %d batch rows', fname, #last, B), 3) end
  local flat, pos = {}, {}
  for b = 1, B do
    local t = last[b]
    if type(t) ~= 'number' or t % 1 ~= 0 or t < 0 or t >= T then
      error(string.format('%s: opts.last[%d] = %s is not a position of the %d ids (0..%d)', fname, b, tostring(t), T,
                          T - 1), 3)
    end
    flat[b], pos[b] = (b - 1) * T + t, { offset + t }
  end
  local on_i64, on_f32 = { dtype = 'i64', device = device }, { dtype = 'f32', device = device }
  local only = { flat = empo.tensor(flat, on_i64) }
  function only.pick(x)   -- [B, T, D] -> [B, 1, D] at those rows
    return x:view(B * T, x:size(3)):index_select(1, only.flat):view(B, 1, x:size(3))
  end
  only.positions = positions and positions:view(B * T):index_select(1, only.flat):view(B, 1)
                   or empo.tensor(pos, on_i64)
  function only.key_mask(S, key_mask)   -- key s is visible to row b's query when s <= offset + last[b]
    local seen = empo.arange(S, on_f32):view(1, S):lt(empo.tensor(pos, on_f32):add(1))
    return key_mask and seen:float() * key_mask:float() or seen
  end
  return only
end

-- Final hidden states [B, T, D] for ids i64 [B, T].
-- opts: cache (KVCache: positions continue after what it holds),
-- positions (i64 [B, T], for left-padded batches), key_mask ([B, S]),
-- last (one 0-based position per batch row: the result is then [B, 1, D],
-- those positions only, and the last layer computes its queries, output
-- projection and MLP for them alone; every layer's keys and values, and
-- so the cache, still cover all T positions — a prefill wants exactly
-- this), checkpoint (true: each layer's activations are recomputed in
-- backward instead of kept: empo.nn.checkpoint; not with a cache).
local function run_layer(h, layer, lopts) return layer(h, lopts) end

function Transformer:hidden(ids, opts)
  opts = opts or {}
  local cache = opts.cache
  local lopts = { cache = cache, positions = opts.positions, key_mask = opts.key_mask,
                  offset = cache and cache.len or 0 }
  local L = self.config.num_hidden_layers
  local only = opts.last and rows_only(opts.last, ids:size(1), ids:size(2), lopts.offset, opts.positions,
                                       'Transformer:hidden', ids.device)
  if opts.checkpoint and cache then error('Transformer:hidden: checkpoint does not go with a cache', 2) end
  local h = self.model.embed_tokens(ids)
  for l = 1, L do
    lopts.layer = l
    if l == L then lopts.only = only end
    if opts.checkpoint then   -- the layer runs again in backward, with these options
      local o = {}
      for k, v in pairs(lopts) do o[k] = v end
      h = checkpoint.run(run_layer, h, self.model.layers:at(l), o)
    else
      h = self.model.layers:at(l)(h, lopts)
    end
  end
  if cache then cache.len = cache.len + ids:size(2) end
  return self.model.norm(h)
end

-- Logits [..., V] from final hidden states [..., D] (the LM head; tied
-- to the embedding when the model has no lm_head).
function Transformer:logits(h)
  local head = self.lm_head and self.lm_head.weight or self.model.embed_tokens.weight
  return empo.linear(h, head)
end

-- Logits [B, T, V] (f32) for ids i64 [B, T].
function Transformer:forward(ids, opts)
  return self:logits(self:hidden(ids, opts))
end

-- The LM head's weight [V, D] when forward and logits are the stock ones
-- (so empo.head_logprob on hidden states computes what the logits would
-- give), else nil: a researcher's own head keeps its logits path.
function Transformer:fused_head()
  if self.forward ~= Transformer.forward or self.logits ~= Transformer.logits then return nil end
  return layers.f32(self.lm_head and self.lm_head.weight or self.model.embed_tokens.weight)
end

-- The LM head's rows for some token ids (i64 [k]) as f32 [k, D], under the
-- same condition (else nil): logits of a few words without the other V
-- rows (a bf16 head is converted for those rows alone).
function Transformer:head_rows(token_ids)
  if self.forward ~= Transformer.forward or self.logits ~= Transformer.logits then return nil end
  return layers.f32((self.lm_head and self.lm_head.weight or self.model.embed_tokens.weight):index_select(1, token_ids))
end

-- ---- the stock decoder ----
-- The sampling engine may run its prefill and decode steps in C
-- (core/include/empo/decoder.h), which computes what the functions above compute.
-- It may do so only for a model built of these classes with these
-- functions: a researcher who replaces any of them (on a class or on one
-- module) gets the Lua path. is_stock() decides that, and decoder_spec()
-- is the only description of the model the C decoder gets.
local stock = {
  { Transformer, 'hidden' }, { Transformer, 'logits' }, { DecoderBlock, 'forward' },
  { Attention, 'forward' }, { MLP, 'forward' }, { RMSNorm, 'forward' }, { Linear, 'forward' },
  { Embedding, 'forward' },
}
for _, s in ipairs(stock) do s[3] = s[1][s[2]] end
local stock_forward = Transformer.forward

local function plain(m, cls)   -- an instance of cls with none of its functions replaced
  if getmetatable(m) ~= cls then return false end
  for _, s in ipairs(stock) do
    if s[1] == cls and rawget(m, s[2]) ~= nil then return false end
  end
  return true
end

-- true when every function and module of the model is the stock one
function Transformer:is_stock()
  for _, s in ipairs(stock) do
    if s[1][s[2]] ~= s[3] then return false end
  end
  local body = self.model
  if not (plain(self, Transformer) and plain(body.embed_tokens, Embedding) and plain(body.norm, RMSNorm)) then
    return false
  end
  if self.lm_head and not plain(self.lm_head, Linear) then return false end
  for l = 1, self.config.num_hidden_layers do
    local b = body.layers:at(l)
    if not (b and plain(b, DecoderBlock) and plain(b.input_layernorm, RMSNorm)
            and plain(b.post_attention_layernorm, RMSNorm) and plain(b.self_attn, Attention)
            and plain(b.mlp, MLP)) then
      return false
    end
    for _, name in ipairs({ 'q_proj', 'k_proj', 'v_proj', 'o_proj' }) do
      if not plain(b.self_attn[name], Linear) then return false end
    end
    for _, name in ipairs({ 'gate_proj', 'up_proj', 'down_proj' }) do
      if not plain(b.mlp[name], Linear) then return false end
    end
  end
  return true
end

-- The model as the C decoder takes it (empo_decoder_spec and
-- empo_decoder_layer_spec, under their field names), or nil when the model
-- is not stock. Plain values: weight tensors (a bias is nil where the
-- model has none) and hyper-parameters; the cache's tensors are the
-- sampler's to add. Nothing is checked here: empo_decoder_new checks every
-- shape, dtype and layout and names what it refuses.
function Transformer:decoder_spec()
  if not self:is_stock() then return nil end
  local cfg, body = self.config, self.model
  local layer = {}
  for l = 1, cfg.num_hidden_layers do
    local b = body.layers:at(l)
    local a, m = b.self_attn, b.mlp
    layer[l] = {
      input_norm = b.input_layernorm.weight, input_eps = b.input_layernorm.eps,
      post_norm = b.post_attention_layernorm.weight, post_eps = b.post_attention_layernorm.eps,
      q = a.q_proj.weight, q_bias = a.q_proj.bias, k = a.k_proj.weight, k_bias = a.k_proj.bias,
      v = a.v_proj.weight, v_bias = a.v_proj.bias, o = a.o_proj.weight, o_bias = a.o_proj.bias,
      gate = m.gate_proj.weight, up = m.up_proj.weight, down = m.down_proj.weight,
    }
  end
  return {
    layers = cfg.num_hidden_layers, heads = cfg.num_attention_heads, kv_heads = cfg.num_key_value_heads,
    rope_theta = cfg.rope_theta, norm_eps = body.norm.eps,
    embed = body.embed_tokens.weight, norm = body.norm.weight,
    head = self.lm_head and self.lm_head.weight or body.embed_tokens.weight,   -- tied: the embedding
    layer = layer,
  }
end

-- ---- completions that share a prompt ----
-- Hidden states of completions whose prompts are shared, each prompt's
-- positions run through the network once (what a policy update of G
-- completions per question wants: a per-sequence forward would run the
-- prompt G times). prompt_ids i64 [Bg, P] (right-padded), prompt_len (Bg
-- lengths), ids i64 [S, T] (each row's tokens after its prompt,
-- right-padded; nil when no row has any), group (S values, 1-based: the
-- prompt of each row). Returns h_last [Bg, D], the final hidden state at
-- each prompt's last position, and h [S, T, D] (nil without ids). Row i's tokens attend to
-- its prompt's keys and values and causally to its own; the prompt's
-- keys and values reach every row of its group through index_select, so
-- their gradient sums over the group. A test proves both equal to the
-- per-sequence forward, gradients included.
local Prefix = {}
Prefix.__index = Prefix

-- The prompt pass records each layer's keys and values as computed (with
-- autograd: they are not copied into a buffer).
function Prefix:append(l, k, v)
  self.k[l], self.v[l] = k, v
  return k, v
end

-- The completion pass puts its group's prompt keys and values before its own.
local Extend = {}
Extend.__index = Extend

function Extend:append(l, k, v)
  local p = self.prefix
  return empo.cat({ p.k[l]:index_select(1, self.group), k }, 3), empo.cat({ p.v[l]:index_select(1, self.group), v }, 3)
end

function Transformer:shared_prompt_hidden(prompt_ids, prompt_len, ids, group)
  local Bg, P = prompt_ids:size(1), prompt_ids:size(2)
  local last = {}
  for g = 1, Bg do last[g] = prompt_len[g] - 1 end
  local prefix = setmetatable({ len = 0, k = {}, v = {} }, Prefix)
  local h_last = self:hidden(prompt_ids, { cache = prefix, last = last }):view(Bg, self.config.hidden_size)
  if ids == nil then return h_last, nil end
  local S, T = ids:size(1), ids:size(2)
  local sel, positions, key_mask = {}, {}, {}
  for i = 1, S do
    local g = group[i]
    local n, pos, m = prompt_len[g], {}, {}
    sel[i] = g - 1
    for t = 1, T do pos[t] = n + t - 1 end
    for s = 1, P do m[s] = s <= n and 1 or 0 end      -- the padding after a shorter prompt is no key
    for t = 1, T do m[P + t] = 1 end                    -- (causality hides a row's own padding)
    positions[i], key_mask[i] = pos, m
  end
  local on = ids.device
  local extend = setmetatable({ len = 0, prefix = prefix, group = empo.tensor(sel, { dtype = 'i64', device = on }) },
                              Extend)
  local h = self:hidden(ids, { cache = extend, positions = empo.tensor(positions, { dtype = 'i64', device = on }),
                               key_mask = empo.tensor(key_mask, { device = on }) })
  return h_last, h
end

-- true when the functions shared_prompt_hidden relies on (the cache
-- protocol of hidden, DecoderBlock and Attention, and forward = logits of
-- hidden) are the stock ones on this model, so that it computes what
-- forward would: a researcher who replaces one of them gets the
-- per-sequence path. (MLPs, norms and linear layers may be anything.)
function Transformer:shares_prompts()
  for _, s in ipairs(stock) do
    if (s[1] == Transformer or s[1] == DecoderBlock or s[1] == Attention) and s[1][s[2]] ~= s[3] then return false end
  end
  if Transformer.forward ~= stock_forward or getmetatable(self) ~= Transformer then return false end
  for _, name in ipairs({ 'forward', 'hidden', 'logits' }) do
    if rawget(self, name) ~= nil then return false end
  end
  for l = 1, self.config.num_hidden_layers do
    local b = self.model.layers:at(l)
    if not (plain(b, DecoderBlock) and plain(b.self_attn, Attention)) then return false end
  end
  return true
end

return { KVCache = KVCache, Attention = Attention, MLP = MLP, DecoderBlock = DecoderBlock, Transformer = Transformer }
