-- recipes/demo.lua — the runtime's ops end to end (the main job is
-- recipes/math.lua):
-- a small Qwen2-style causal transformer (RMSNorm, rotary attention with
-- grouped KV heads, SwiGLU, tied head), written directly over the runtime's
-- fused ops, trained from scratch with autograd and AdamW to reverse digit
-- strings. Prints loss, answer-token accuracy and tokens/s, then decodes a
-- few held-out strings greedily.
--
--     empo run recipes/demo.lua [steps=300] [threads=2] [seed=1]
local empo = require 'empo'

-- ---- config (key=value arguments override) ----
local cfg = { steps = 300, threads = 2, seed = 1, batch = 64, digits = 8, d = 64, layers = 2, heads = 4,
              kv_heads = 2, ffn = 176, lr = 3e-3, warmup = 30, log_every = 25 }
empo.config.apply(cfg, arg, 'demo')
empo.set_num_threads(cfg.threads)
local gen = empo.Generator(cfg.seed, 0)

-- tokens: 0-9 digits, 10 = '>', 11 = pad (never predicted)
local VOCAB, SEP = 12, 10
local T = 2 * cfg.digits + 1                   -- d1..dn > dn..d1
local head_dim = math.floor(cfg.d / cfg.heads)

-- ---- parameters (Hugging Face names, as the model issue will use) ----
local params, names = {}, {}
local function param(name, ...)
  local shape, scale = { ... }, 0.02
  local t = gen:randn(unpack(shape)) * scale
  t:requires_grad_(true)
  params[name] = t
  names[#names + 1] = name
  return t
end
local function ones(name, n)
  local t = empo.ones(n)
  t:requires_grad_(true)
  params[name] = t
  names[#names + 1] = name
  return t
end

param('model.embed_tokens.weight', VOCAB, cfg.d)
for l = 0, cfg.layers - 1 do
  local p = 'model.layers.' .. l .. '.'
  ones(p .. 'input_layernorm.weight', cfg.d)
  param(p .. 'self_attn.q_proj.weight', cfg.heads * head_dim, cfg.d)
  param(p .. 'self_attn.k_proj.weight', cfg.kv_heads * head_dim, cfg.d)
  param(p .. 'self_attn.v_proj.weight', cfg.kv_heads * head_dim, cfg.d)
  param(p .. 'self_attn.o_proj.weight', cfg.d, cfg.heads * head_dim)
  ones(p .. 'post_attention_layernorm.weight', cfg.d)
  param(p .. 'mlp.gate_proj.weight', cfg.ffn, cfg.d)
  param(p .. 'mlp.up_proj.weight', cfg.ffn, cfg.d)
  param(p .. 'mlp.down_proj.weight', cfg.d, cfg.ffn)
end
ones('model.norm.weight', cfg.d)

-- ---- the forward pass: ids i64 [B, T] -> logits [B, T, V] ----
local function heads_of(x, B, n)       -- [B, T, n*hd] -> [B, n, T, hd]
  return x:view(B, -1, n, head_dim):transpose(2, 3)
end

local function forward(ids)
  local B, L = ids:size(1), ids:size(2)
  local h = empo.embedding(params['model.embed_tokens.weight'], ids)
  for l = 0, cfg.layers - 1 do
    local p = 'model.layers.' .. l .. '.'
    local x = empo.rmsnorm(h, params[p .. 'input_layernorm.weight'], 1e-6)
    local q = heads_of(empo.linear(x, params[p .. 'self_attn.q_proj.weight']), B, cfg.heads)
    local k = heads_of(empo.linear(x, params[p .. 'self_attn.k_proj.weight']), B, cfg.kv_heads)
    local v = heads_of(empo.linear(x, params[p .. 'self_attn.v_proj.weight']), B, cfg.kv_heads)
    q, k = empo.rope(q, nil, 0, 10000), empo.rope(k, nil, 0, 10000)
    local a = empo.attention(q, k, v, { causal = true })           -- [B, H, T, hd]
    a = a:transpose(2, 3):reshape(B, L, cfg.heads * head_dim)
    h = h + empo.linear(a, params[p .. 'self_attn.o_proj.weight'])
    x = empo.rmsnorm(h, params[p .. 'post_attention_layernorm.weight'], 1e-6)
    local m = empo.swiglu(empo.linear(x, params[p .. 'mlp.gate_proj.weight']),
                          empo.linear(x, params[p .. 'mlp.up_proj.weight']))
    h = h + empo.linear(m, params[p .. 'mlp.down_proj.weight'])
  end
  h = empo.rmsnorm(h, params['model.norm.weight'], 1e-6)
  return empo.linear(h, params['model.embed_tokens.weight'])        -- tied head
end

-- ---- data: random digit strings and their reversal ----
local function batch(B, g)
  local digits = g:randint(0, 10, B, cfg.digits):tolist()
  local rows = {}
  for b = 1, B do
    local r = {}
    for i = 1, cfg.digits do r[i] = digits[b][i] end
    r[cfg.digits + 1] = SEP
    for i = 1, cfg.digits do r[cfg.digits + 1 + i] = digits[b][cfg.digits + 1 - i] end
    rows[b] = r
  end
  return empo.tensor(rows, 'i64')
end

-- next-token log-probs of the answer positions: predict ids[:, n+1 ..] from positions n .. T-1
local function answer_logprobs(ids)
  local B = ids:size(1)
  local logits = forward(ids:narrow(2, 1, T - 1))                   -- [B, T-1, V]
  local pred = logits:narrow(2, cfg.digits + 1, cfg.digits):reshape(B * cfg.digits, VOCAB)
  local target = ids:narrow(2, cfg.digits + 2, cfg.digits):reshape(B * cfg.digits)
  local logp = empo.logprob_entropy(pred, target)
  return logp, pred, target
end

local opt = empo.optim.adamw{ params = params, lr = cfg.lr, betas = { 0.9, 0.98 }, weight_decay = 0.01 }
local function lr_at(step)   -- linear warmup, cosine decay
  if step <= cfg.warmup then return cfg.lr * step / cfg.warmup end
  local p = (step - cfg.warmup) / math.max(1, cfg.steps - cfg.warmup)
  return cfg.lr * 0.5 * (1 + math.cos(math.pi * p))
end

local nparams = 0
for _, n in ipairs(names) do nparams = nparams + params[n]:numel() end
print(string.format('empo %s | demo: reverse %d-digit strings | %d parameters, %d layers, d %d, %d/%d heads | %d threads',
  empo.version, cfg.digits, nparams, cfg.layers, cfg.d, cfg.heads, cfg.kv_heads, empo.get_num_threads()))

local clock = empo.logger.clock   -- wall-clock seconds (CLOCK_MONOTONIC)
local tokens, wall0 = 0, clock()
for step = 1, cfg.steps do
  local ids = batch(cfg.batch, gen)
  local logp, pred, target = answer_logprobs(ids)
  local loss = -logp:mean()
  loss:backward()
  local norm = empo.clip_grad_norm(params, 1.0)
  opt.lr = lr_at(step)
  opt:step()
  opt:zero_grad()
  tokens = tokens + cfg.batch * (T - 1)
  if step % cfg.log_every == 0 or step == 1 or step == cfg.steps then
    local acc = empo.no_grad(function()
      local hit = empo.eq(pred:argmax(2), target):to('f32'):mean():item()
      return hit
    end)
    local secs = clock() - wall0
    print(string.format('step %4d  loss %.4f  answer-token acc %5.1f%%  grad-norm %.3f  lr %.2e  %6.0f tok/s',
      step, loss:item(), 100 * acc, norm, opt.lr, tokens / math.max(secs, 1e-9)))
  end
end

-- ---- greedy decoding of held-out strings (full forward per token) ----
local test_gen = empo.Generator(cfg.seed + 1000, 0)
local ids = batch(4, test_gen):tolist()
empo.no_grad(function()
  local exact = 0
  for b = 1, #ids do
    local seq = {}
    for i = 1, cfg.digits + 1 do seq[i] = ids[b][i] end
    for _ = 1, cfg.digits do
      local logits = forward(empo.tensor({ seq }, 'i64'))
      seq[#seq + 1] = logits:select(2, #seq):argmax(2):item()
    end
    local src, out, want = {}, {}, {}
    for i = 1, cfg.digits do
      src[i], out[i], want[i] = ids[b][i], seq[cfg.digits + 1 + i], ids[b][cfg.digits + 1 + i]
    end
    local ok = table.concat(out) == table.concat(want)
    exact = exact + (ok and 1 or 0)
    print(string.format('  %s > %s  %s', table.concat(src), table.concat(out), ok and 'ok' or ('want ' .. table.concat(want))))
  end
  print(string.format('greedy exact match on held-out strings: %d/%d', exact, #ids))
end)
