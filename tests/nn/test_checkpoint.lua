-- tests/nn/test_checkpoint.lua — activation checkpointing (empo.nn.checkpoint):
-- a transformer whose layers are recomputed in backward gives the loss
-- and every parameter's gradient of the plain forward (to 1e-6), through
-- Transformer:hidden and through the policy's log-probs
-- (logprob.completions, as the update runs them); no segment is left
-- waiting after a backward; under no_grad nothing is recorded.
local empo = require 'empo'
local check = require 'check'
local checkpoint = require 'empo.nn.checkpoint'
local logprob = require 'empo.rl.logprob'
local c = check.new('test_checkpoint')

local m = empo.models.new(check.tiny_hf{ num_hidden_layers = 3 }, 3)
local ids = empo.randint(0, m.config.vocab_size, 3, 9)

local function grads(loss_of)
  for _, p in ipairs(m:parameters()) do p.grad = nil end
  local loss = loss_of()
  loss:backward()
  local out = {}
  for i, p in ipairs(m:parameters()) do out[i] = p.grad and p.grad:clone() end
  return out, loss:item()
end

local function compare(name, a, la, b, lb)
  local worst = 0
  for i = 1, #a do
    c.ok(b[i] ~= nil, name .. ': parameter ' .. i .. ' has a gradient')
    if b[i] then worst = math.max(worst, (a[i] - b[i]):abs():max():item() / math.max(a[i]:abs():max():item(), 1e-12)) end
  end
  c.near(lb, la, 1e-6 * math.abs(la), name .. ': the same loss')
  c.ok(worst <= 1e-6, string.format('%s: the same gradients (worst relative difference %.2e)', name, worst))
  c.eq(checkpoint.pending(), 0, name .. ': no segment left waiting')
end

local function lm_loss(ck)
  return function()
    local h = m:hidden(ids, { checkpoint = ck })
    return m:logits(h):log_softmax(3):narrow(3, 1, 1):sum()
  end
end
local a, la = grads(lm_loss(false))
local b, lb = grads(lm_loss(true))
compare('Transformer:hidden', a, la, b, lb)

local rows = {}
for i = 1, 4 do rows[i] = { prompt = { 5, 9, i }, completion = { 7, 1 + i, 60, 3 } } end
local function policy_loss(ck)
  return function()
    local lp = logprob.completions(m, rows, { temperature = 0.8, checkpoint = ck })
    return (lp.logp * lp.mask):sum() + lp.entropy:sum() * 0.1
  end
end
a, la = grads(policy_loss(false))
b, lb = grads(policy_loss(true))
compare('logprob.completions', a, la, b, lb)

empo.no_grad(function() m:hidden(ids, { checkpoint = true }) end)
c.eq(checkpoint.pending(), 0, 'under no_grad a checkpointed forward records nothing')
c.raises(function() m:hidden(ids, { checkpoint = true, cache = m:new_cache(3, 16) }) end,
         'checkpoint does not go with a cache')
c.done()
