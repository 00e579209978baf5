-- tests/ops/test_head_logprob.lua — empo.head_logprob (the LM head fused
-- with the token log-prob and entropy, chunked over rows) against the
-- unchunked ops it replaces (linear, then logprob_entropy over [N, V]):
-- log-probs, entropies and the gradients of h and of the weight, at every
-- chunk-boundary case (chunk 1, a ragged last chunk, chunk = rows, chunk >
-- rows, the default), with a temperature, a padded weight (vocab < rows:
-- the rows past it get no gradient), and bad input named.
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_head_logprob')

local function rel(a, b)
  return ((a - b):pow(2):sum():item() / math.max(b:pow(2):sum():item(), 1e-30)) ^ 0.5
end

local N, D, R = 11, 24, 97
local gen = empo.Generator(5, 0)
local h0, W0 = empo.randn({ N, D }, { gen = gen }), empo.randn({ R, D }, { gen = gen }) * 0.5
local wl, we = empo.randn({ N }, { gen = gen }), empo.randn({ N }, { gen = gen })   -- a loss weighing both outputs

-- logp, entropy and the gradients of the loss sum(wl * logp + we * entropy)
local function run(fused, vocab, chunk, T)
  local h, W = h0:clone():requires_grad_(true), W0:clone():requires_grad_(true)
  local ids = {}
  for i = 1, N do ids[i] = (i * 37) % vocab end
  local idt = empo.tensor(ids, 'i64')
  local lp, en
  if fused then
    lp, en = empo.head_logprob(h, W, idt, { temperature = T, vocab = vocab < R and vocab or 0, chunk = chunk })
  else
    lp, en = empo.logprob_entropy(empo.linear(h, W:narrow(1, 1, vocab)) * (1 / T), idt)
  end
  ;((lp * wl):sum() + (en * we):sum()):backward()
  return lp:detach(), en:detach(), h.grad, W.grad
end

for _, vocab in ipairs({ R, 80 }) do
  local lp, en, dh, dW = run(false, vocab, 0, 0.7)
  for _, chunk in ipairs({ 1, 4, N, N + 5, 0 }) do
    local name = string.format('vocab %d, chunk %d', vocab, chunk)
    local flp, fen, fdh, fdW = run(true, vocab, chunk, 0.7)
    c.ok(rel(flp, lp) <= 1e-5, name .. ': log-probs')
    c.ok(rel(fen, en) <= 1e-5, name .. ': entropies')
    c.ok(rel(fdh, dh) <= 1e-5, name .. ': gradient of h')
    c.ok(rel(fdW, dW) <= 1e-5, name .. ': gradient of the weight')
    if vocab < R then
      c.eq(fdW:narrow(1, vocab + 1, R - vocab):abs():max():item(), 0, name .. ': the padded rows get no gradient')
    end
  end
end

-- one output only: the other's backward is not needed
do
  local h = h0:clone():requires_grad_(true)
  local lp = empo.head_logprob(h, W0, empo.zeros({ N }, { dtype = 'i64' }), { chunk = 3 })
  lp:sum():backward()
  local h2 = h0:clone():requires_grad_(true)
  local lp2 = empo.logprob_entropy(empo.linear(h2, W0), empo.zeros({ N }, { dtype = 'i64' }))
  lp2:sum():backward()
  c.ok(rel(h.grad, h2.grad) <= 1e-5, 'a frozen weight: the gradient of h alone')
  c.eq(W0.grad, nil, 'the frozen weight gets none')
end

-- [B, T, D] hidden states with ids [B, T]
do
  local lp = empo.head_logprob(h0:narrow(1, 1, 10):reshape(2, 5, D), W0, empo.ones({ 2, 5 }, { dtype = 'i64' }))
  c.eq(lp.shape, { 2, 5 }, 'h [B, T, D] gives [B, T]')
end

-- bad input
local ids = empo.zeros({ N }, { dtype = 'i64' })
c.raises(function() empo.head_logprob(h0, W0, empo.tensor({ 1, 2 }, 'i64')) end, 'ids must have the shape of h')
c.raises(function() empo.head_logprob(h0, empo.randn({ R, D + 1 }), ids) end, 'expected h [..., D] and weight [V, D]')
c.raises(function() empo.head_logprob(h0, W0, empo.full({ N }, 90, { dtype = 'i64' }), { vocab = 80 }) end,
         'element 0 is 90, out of range [0, 80)')
c.raises(function() empo.head_logprob(h0, W0, ids, { vocab = R + 1 }) end, 'vocab 98 must be in [1, 97]')
c.raises(function() empo.head_logprob(h0, W0, ids, { temperature = 0 }) end, 'temperature > 0')
local bad = h0:clone()
bad[3][2] = 0 / 0
c.raises(function() empo.head_logprob(bad, W0, ids) end, 'row 2 has no finite log-sum-exp')

c.done()
