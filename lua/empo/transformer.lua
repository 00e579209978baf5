-- empo.transformer — the decoder-only transformer of the Qwen2 / Llama /
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
-- two give the same logits at every position.
local empo = require 'empo'

return function(nn)
  local Module = nn.Module

  local function new(cls) return Module.init(setmetatable({}, cls)) end

  -- ---- KV cache ----
  -- Per layer K and V [B, Hkv, max_len, Dh], filled left to right; `len`
  -- positions are valid. Allocated once for a batch. The decoder needs only
  -- `len` and append(l, k, v) -> keys, values of a cache, and uses the
  -- cache's attention(l, q) when it has one: empo.sample's cache (each row
  -- at its own length) does, through empo_kv_attention, which a test
  -- proves equal to empo.attention with the matching key mask.
  local KVCache = {}
  KVCache.__index = KVCache
  nn.KVCache = KVCache

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
  nn.Attention = nn.class('Attention')
  setmetatable(nn.Attention, { __index = Module, __call = function(cls, cfg, gen)
    local self = new(cls)
    local D, Dh = cfg.hidden_size, cfg.head_dim
    self.heads, self.kv_heads, self.head_dim, self.theta = cfg.num_attention_heads, cfg.num_key_value_heads, Dh, cfg.rope_theta
    local o = { gen = gen, std = cfg.initializer_range }
    local qkv = { gen = gen, std = cfg.initializer_range, bias = cfg.qkv_bias }
    self:child('q_proj', nn.Linear(D, self.heads * Dh, qkv))
    self:child('k_proj', nn.Linear(D, self.kv_heads * Dh, qkv))
    self:child('v_proj', nn.Linear(D, self.kv_heads * Dh, qkv))
    o.bias = cfg.o_bias
    self:child('o_proj', nn.Linear(self.heads * Dh, D, o))
    return self
  end })

  -- x [B, T, D] -> [B, T, D]. opts: cache, layer, positions (i64 [B, T]),
  -- offset (first position), key_mask ([B, S], nonzero = attend).
  function nn.Attention:forward(x, opts)
    opts = opts or {}
    local B, T = x:size(1), x:size(2)
    local Dh = self.head_dim
    local q = self.q_proj(x):view(B, T, self.heads, Dh):transpose(2, 3)
    local k = self.k_proj(x):view(B, T, self.kv_heads, Dh):transpose(2, 3)
    local v = self.v_proj(x):view(B, T, self.kv_heads, Dh):transpose(2, 3)
    q = empo.rope(q, opts.positions, opts.offset, self.theta)
    k = empo.rope(k, opts.positions, opts.offset, self.theta)
    local a
    if opts.cache then k, v = opts.cache:append(opts.layer, k, v) end
    if opts.cache and opts.cache.attention then
      -- a cache that lays out its rows itself (empo.sample's: one new token
      -- per row, each row at its own length) attends over them itself
      a = opts.cache:attention(opts.layer, q)
    else
      a = empo.attention(q, k, v, { causal = true, key_mask = opts.key_mask })
    end
    return self.o_proj(a:transpose(2, 3):reshape(B, T, self.heads * Dh))
  end

  -- ---- MLP (SwiGLU) ----
  nn.MLP = nn.class('MLP')
  setmetatable(nn.MLP, { __index = Module, __call = function(cls, cfg, gen)
    local self = new(cls)
    local o = { gen = gen, std = cfg.initializer_range }
    self:child('gate_proj', nn.Linear(cfg.hidden_size, cfg.intermediate_size, o))
    self:child('up_proj', nn.Linear(cfg.hidden_size, cfg.intermediate_size, o))
    self:child('down_proj', nn.Linear(cfg.intermediate_size, cfg.hidden_size, o))
    return self
  end })

  function nn.MLP:forward(x)
    return self.down_proj(empo.swiglu(self.gate_proj(x), self.up_proj(x)))
  end

  -- ---- DecoderBlock (pre-norm) ----
  nn.DecoderBlock = nn.class('DecoderBlock')
  setmetatable(nn.DecoderBlock, { __index = Module, __call = function(cls, cfg, gen)
    local self = new(cls)
    self:child('input_layernorm', nn.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
    self:child('self_attn', nn.Attention(cfg, gen))
    self:child('post_attention_layernorm', nn.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
    self:child('mlp', nn.MLP(cfg, gen))
    return self
  end })

  function nn.DecoderBlock:forward(h, opts)
    h = h + self.self_attn(self.input_layernorm(h), opts)
    return h + self.mlp(self.post_attention_layernorm(h))
  end

  -- ---- Transformer (…ForCausalLM) ----
  nn.Transformer = nn.class('Transformer')
  setmetatable(nn.Transformer, { __index = Module, __call = function(cls, cfg)
    local self = new(cls)
    self.config = cfg
    local gen = empo.Generator(cfg.seed or 0, 0)
    local body = new(nn.class('Model'))
    body:child('embed_tokens', nn.Embedding(cfg.vocab_size, cfg.hidden_size, { gen = gen, std = cfg.initializer_range }))
    local layers = {}
    for l = 1, cfg.num_hidden_layers do layers[l] = nn.DecoderBlock(cfg, gen) end
    body:child('layers', nn.ModuleList(layers))
    body:child('norm', nn.RMSNorm(cfg.hidden_size, cfg.rms_norm_eps))
    self:child('model', body)
    if not cfg.tie_word_embeddings then
      self:child('lm_head', nn.Linear(cfg.hidden_size, cfg.vocab_size, { gen = gen, std = cfg.initializer_range }))
    end
    return self
  end })

  function nn.Transformer:new_cache(batch, max_len)
    return KVCache.new(self.config, batch, max_len or self.config.max_position_embeddings)
  end

  -- Final hidden states [B, T, D] for ids i64 [B, T].
  -- opts: cache (KVCache: positions continue after what it holds),
  -- positions (i64 [B, T], for left-padded batches), key_mask ([B, S]).
  function nn.Transformer:hidden(ids, opts)
    opts = opts or {}
    local cache = opts.cache
    local lopts = { cache = cache, positions = opts.positions, key_mask = opts.key_mask,
                    offset = cache and cache.len or 0 }
    local h = self.model.embed_tokens(ids)
    for l = 1, self.config.num_hidden_layers do
      lopts.layer = l
      h = self.model.layers:at(l)(h, lopts)
    end
    if cache then cache.len = cache.len + ids:size(2) end
    return self.model.norm(h)
  end

  -- Logits [..., V] from final hidden states [..., D] (the LM head; tied
  -- to the embedding when the model has no lm_head).
  function nn.Transformer:logits(h)
    local head = self.lm_head and self.lm_head.weight or self.model.embed_tokens.weight
    return empo.linear(h, head)
  end

  -- Logits [B, T, V] (f32) for ids i64 [B, T].
  function nn.Transformer:forward(ids, opts)
    return self:logits(self:hidden(ids, opts))
  end
end
