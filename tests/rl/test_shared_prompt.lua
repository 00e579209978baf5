-- tests/rl/test_shared_prompt.lua — the policy update with each prompt run
-- once per group (logprob.completions with shared_prompt = true) against
-- the per-sequence computation: the log-probs and entropies of every
-- completion token, and the gradient of a GRPO loss with a KL term to a
-- frozen reference, every parameter to <= 1e-5 relative. Three models
-- (Qwen2 with tied embeddings and q/k/v biases, Llama with its own LM
-- head and as many KV heads as heads, a GQA Qwen2 of 4 query heads per KV
-- head), groups of 1, 3 and 8, prompts of different lengths, ragged
-- completions down to one token. Then the micro-batches by group keep to
-- their budget, a group split between micro-batches changes nothing,
-- 'auto' picks by shape, a replaced Attention turns sharing off (and
-- shared_prompt = true on it is an error naming why), and the trainer's
-- update gives the same gradients both ways.
local check = require 'check'
local empo = require 'empo'
local logprob = require 'empo.rl.logprob'
local c = check.new('test_shared_prompt')

local models = {
  { name = 'qwen2 tied, biases', cfg = check.tiny_hf{ tie_word_embeddings = true } },
  { name = 'llama untied, MHA', cfg = check.tiny_hf{ model_type = 'llama', num_key_value_heads = 4,
                                                    tie_word_embeddings = false } },
  { name = 'qwen2 GQA 4:1', cfg = check.tiny_hf{ num_attention_heads = 8, num_key_value_heads = 2, hidden_size = 64,
                                                 intermediate_size = 80, num_hidden_layers = 3 } },
}

-- rows of `groups` prompts (lengths 1..9) with G completions each (lengths 1..12), and advantages
local function make_rows(gen_seed, groups, G, V)
  local g = empo.Generator(gen_seed, 0)
  local rows = {}
  for q = 1, groups do
    local plen = g:randint(1, 10, 1):tolist()[1]
    local prompt = g:randint(0, V, plen):tolist()
    for _ = 1, G do
      local n = g:randint(1, 13, 1):tolist()[1]
      rows[#rows + 1] = { prompt = prompt, completion = g:randint(0, V, n):tolist() }
    end
  end
  rows[1].completion = { rows[1].completion[1] }      -- a one-token completion in every case
  local adv = g:randn(#rows):tolist()
  for i, r in ipairs(rows) do r.adv = adv[i] end
  return rows
end

local function norm(x) return math.sqrt((x * x):sum():item()) end

local function masked_diff(a, b, mask)
  return ((a - b) * mask):abs():max():item()
end

-- the loss's gradient, every parameter by name
local function gradients(model, reference, rows, shared)
  for _, p in ipairs(model:parameters()) do p.grad = nil end
  local lp = logprob.completions(model, rows, { temperature = 0.9, shared_prompt = shared })
  local ref = empo.no_grad(logprob.completions, reference, rows, { temperature = 0.9, shared_prompt = shared }).logp
  local S, T = lp.logp:size(1), lp.logp:size(2)
  local adv = {}
  for i, r in ipairs(rows) do adv[i] = r.adv end
  -- old log-probs a little off the current ones, so the ratio is not 1 and clipping can bite
  local old = lp.logp:detach() + empo.Generator(3, 0):randn(S, T) * 0.1
  local value = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28, kl = 0.05, entropy = 0.01 }{
    logp = lp.logp, old_logp = old, adv = empo.tensor(adv), mask = lp.mask, entropy = lp.entropy, ref_logp = ref }
  value:backward()
  local out = {}
  for _, p in ipairs(model:named_parameters()) do out[p.name] = p.tensor.grad:clone() end
  return out, lp, value:item()
end

for mi, m in ipairs(models) do
  local model = empo.models.new(m.cfg, 10 + mi)
  local reference = empo.models.new(m.cfg, 20 + mi)
  c.ok(logprob.can_share(model), m.name .. ': a stock model shares prompts')
  for _, G in ipairs({ 1, 3, 8 }) do
    local rows = make_rows(100 * mi + G, 4, G, m.cfg.vocab_size)
    local ga, lpa, va = gradients(model, reference, rows, false)
    local gb, lpb, vb = gradients(model, reference, rows, true)
    local d_logp, d_ent = masked_diff(lpa.logp, lpb.logp, lpa.mask), masked_diff(lpa.entropy, lpb.entropy, lpa.mask)
    c.ok(d_logp <= 1e-5 and d_ent <= 1e-5, string.format('%s, G = %d: log-probs agree to %.1e, entropies to %.1e',
                                                         m.name, G, d_logp, d_ent))
    c.eq(lpb.mask:tolist(), lpa.mask:tolist(), 'the same mask')
    c.near(vb, va, 1e-5 * math.max(1, math.abs(va)), 'the same loss')
    local worst, worst_name, count = 0, '', 0
    for name, a in pairs(ga) do
      local b = gb[name]
      local scale = math.max(norm(a), 1e-12)
      local rel = norm(a - b) / scale
      if rel > worst then worst, worst_name = rel, name end
      count = count + 1
    end
    local line = string.format('%s, G = %d: log-probs agree to %.1e; all %d gradients, worst %.1e relative (%s)',
                               m.name, G, d_logp, count, worst, worst_name)
    c.ok(worst <= 1e-5, line)
    print('  ' .. line)
  end
end

-- ---- micro-batches by group ----
local model = empo.models.new(models[1].cfg, 5)
local rows = make_rows(7, 5, 4, 61)
local budget = 40
local batches = logprob.micro_batches(rows, budget, true)
c.ok(#batches > 2, 'several micro-batches')
local seen = 0
local whole = empo.no_grad(logprob.completions, model, rows, { shared_prompt = true })
local whole_logp = whole.logp:tolist()
for _, b in ipairs(batches) do
  local prompts, P, tail, sub = {}, 0, 0, {}
  for k, i in ipairs(b) do
    c.eq(i, seen + 1, 'rows stay in order')
    seen = i
    sub[k] = rows[i]
    prompts[rows[i].prompt] = true
    P, tail = math.max(P, #rows[i].prompt), math.max(tail, #rows[i].completion - 1)
  end
  local np = 0
  for _ in pairs(prompts) do np = np + 1 end
  c.ok(#b == 1 or np * P + #b * tail <= budget, 'a micro-batch keeps to its budget (prompts x longest prompt + ' ..
                                                'rows x longest completion)')
  local part = empo.no_grad(logprob.completions, model, sub, { shared_prompt = true }).logp:tolist()
  for k, i in ipairs(b) do
    for t = 1, #rows[i].completion do c.near(part[k][t], whole_logp[i][t], 1e-5, 'the same log-prob per micro-batch') end
  end
end
c.eq(seen, #rows, 'every row in a micro-batch')

-- the same ids in different tables are one group
local copy = {}
for i, r in ipairs(rows) do copy[i] = { prompt = { unpack(r.prompt) }, completion = r.completion } end
local group, first = logprob.prompt_groups(copy)
c.eq(#first, 5, 'five prompts, found by their ids')
c.eq(group[4], 1, 'a group of four')
c.eq(group[5], 2, 'then the next')

-- ---- 'auto' picks by shape ----
local short_prompt, long_prompt = {}, {}
for k = 1, 100 do long_prompt[k] = k % 50 end
for k = 1, 4 do short_prompt[k] = k end
local function group_of(prompt, n)
  local out = {}
  for k = 1, 8 do
    local comp = {}
    for t = 1, n do comp[t] = (k + t) % 50 end
    out[k] = { prompt = prompt, completion = comp }
  end
  return out
end
c.ok(logprob.use_shared(model, group_of(long_prompt, 40), 'auto'), 'auto shares a 100-token prompt of 40-token answers')
c.ok(not logprob.use_shared(model, group_of(short_prompt, 40), 'auto'), 'auto does not share a 4-token prompt')
local copies = group_of(long_prompt, 40)
for _, r in ipairs(copies) do r.prompt = { unpack(long_prompt) } end
c.ok(logprob.use_shared(model, copies, 'auto'), 'auto counts equal prompts in separate tables as one')
c.eq(#logprob.micro_batches(copies, 500, true), 1, 'and so do the micro-batches (one prompt: 100 + 8 x 39 = 412 <= 500)')
c.ok(not logprob.use_shared(model, group_of(long_prompt, 40), false), 'false is false')

-- a researcher's Attention: the per-sequence path, and true is refused by name
local custom = empo.models.new(models[1].cfg, 5)
local attn = custom.model.layers:at(1).self_attn
local stock_forward = attn.forward
attn.forward = function(self, x, opts) return stock_forward(self, x, opts) * 1.0 end
c.ok(not logprob.can_share(custom), 'a replaced Attention does not share prompts')
c.ok(not logprob.use_shared(custom, group_of(long_prompt, 40), 'auto'), 'auto then runs per sequence')
c.raises(function() return logprob.completions(custom, rows, { shared_prompt = true }) end,
         'cannot share prompts', 'Attention')
c.raises(function() return logprob.completions(model, rows, { shared_prompt = 'yes' }) end,
         "true, false or 'auto'")

-- ---- the trainer's update, both ways ----
local corpus = {}
for i = 1, 40 do corpus[i] = string.format('%d and %d make %d.', i, i, 2 * i) end
local tok = check.tiny_tokenizer(corpus)
local tmodel = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 9)
local function trainer(shared)
  return empo.rl.trainer{
    model = tmodel, tokenizer = tok, data = empo.data.list({ 'what do 3 and 3 make?', 'and 5 and 5?' }),
    sample = { n = 4, temperature = 1.0, max_new_tokens = 8 }, extract = false, cluster = empo.cluster.exact,
    loss = empo.loss.grpo{ kl = 0.1 }, optim = { lr = 1e-3 }, micro_batch_tokens = 30, shared_prompt = shared,
    steps = 1, seed = 2 }
end
local g = empo.Generator(4, 0)
local trows = {}
for q = 1, 3 do
  local prompt = tok:encode(q == 1 and 'what do 3 and 3 make?' or q == 2 and 'and 5?' or 'what do 12 and 12 make?')
  for _ = 1, 4 do
    local comp = g:randint(0, tok.vocab_size, g:randint(1, 9, 1):tolist()[1]):tolist()
    local old = {}
    for t = 1, #comp do old[t] = -3 + 0.1 * t end
    trows[#trows + 1] = { prompt = prompt, completion = comp, old = old, adv = g:randn(1):tolist()[1] }
  end
end
local grads = {}
for _, shared in ipairs({ false, true }) do
  local t = trainer(shared)
  t.opt:zero_grad()
  local upd = t:update(trows)
  c.eq(upd.shared_prompt, shared, 'the update says which path it ran')
  local gs = {}
  for i, p in ipairs(t.params) do gs[i] = p.grad:clone() end
  grads[#grads + 1] = gs
  t.opt:zero_grad()
end
local worst = 0
for i, a in ipairs(grads[1]) do
  worst = math.max(worst, norm(a - grads[2][i]) / math.max(norm(a), 1e-12))
end
c.ok(worst <= 1e-5, string.format('the trainer\'s update: gradients agree to %.1e relative, KL term and ' ..
                                  'micro-batches of 30 tokens included', worst))
c.raises(function() return trainer('sometimes') end, 'shared_prompt', "true, false or 'auto'")

c.done()
