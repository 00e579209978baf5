-- tests/rl/test_logprob.lua — empo.rl.logprob: before any update, the
-- policy's log-probs of sampled completions, teacher-forced through the
-- model that sampled them, equal the sampler's own (<= 1e-4), at T = 1 and
-- T = 0.7, over rows of different prompt and completion lengths (the
-- right-padding changes nothing); micro-batches keep to their budget and
-- give the same values; gradients reach the parameters; bad rows fail by
-- name.
local check = require 'check'
local empo = require 'empo'
local logprob = require 'empo.rl.logprob'
local c = check.new('test_logprob')

local model = empo.models.new(check.tiny_hf(), 7)
local prompts = { { 5, 9, 2, 33, 7, 1 }, { 41 }, { 3, 3, 3, 17, 20, 21, 22, 23, 24 } }

for _, temperature in ipairs({ 1.0, 0.7 }) do
  local out = empo.sample.generate(model, nil, prompts, { n = 3, temperature = temperature, max_new_tokens = 12,
                                                          seed = 11, token_stats = true })
  local rows = {}
  for i, x in ipairs(out) do rows[i] = { prompt = prompts[x.prompt], completion = x.ids } end
  local lp = empo.no_grad(logprob.completions, model, rows, { temperature = temperature, self_certainty = true })
  local worst, counted, worst_stats = 0, 0, 0
  local got, mask = lp.logp:tolist(), lp.mask:tolist()
  local ent, sc = lp.entropy:tolist(), lp.self_certainty:tolist()
  for i, x in ipairs(out) do
    for t = 1, #x.ids do
      worst = math.max(worst, math.abs(got[i][t] - x.logprobs[t]))
      -- the sampler's C token statistics against the teacher-forced ops
      worst_stats = math.max(worst_stats, math.abs(ent[i][t] - x.entropy[t]), math.abs(sc[i][t] - x.self_certainty[t]))
      counted = counted + mask[i][t]
    end
    for t = #x.ids + 1, #mask[i] do c.ok(mask[i][t] == 0, 'padding is masked') end
  end
  c.ok(worst <= 1e-4, string.format('T = %.1f: trainer and sampler log-probs agree to %.2e (<= 1e-4)', temperature,
                                    worst))
  c.ok(worst_stats <= 1e-4, string.format('T = %.1f: the sampler\'s entropy and self-certainty agree to %.2e (<= 1e-4)',
                                          temperature, worst_stats))
  c.ok(out[1].entropy[1] > 0 and out[1].self_certainty[1] > 0, 'both positive on a random model')
  local n_tokens = 0
  for _, x in ipairs(out) do n_tokens = n_tokens + #x.ids end
  c.eq(counted, n_tokens, 'the mask counts every completion token')
  print(string.format('  T = %.1f: %d completions, %d tokens, largest difference %.2e (token stats %.2e)', temperature,
                      #out, n_tokens, worst, worst_stats))
  -- micro-batches: within budget, and the same values row by row
  local budget = 24
  local batches = logprob.micro_batches(rows, budget)
  c.ok(#batches > 1, 'several micro-batches')
  local seen = 0
  for _, b in ipairs(batches) do
    local longest = 0
    local sub = {}
    for k, i in ipairs(b) do
      sub[k] = rows[i]
      longest = math.max(longest, logprob.row_tokens(rows[i]))
    end
    c.ok(#b == 1 or #b * longest <= budget, 'a micro-batch keeps to its budget')
    local part = empo.no_grad(logprob.completions, model, sub, { temperature = temperature }).logp:tolist()
    for k, i in ipairs(b) do
      for t = 1, #rows[i].completion do
        c.near(part[k][t], got[i][t], 1e-5, 'the same log-prob in a micro-batch')
      end
      seen = seen + 1
    end
  end
  c.eq(seen, #rows, 'every row in one micro-batch')
end

-- gradients reach the parameters
local rows = { { prompt = { 1, 2, 3 }, completion = { 4, 5 } }, { prompt = { 7 }, completion = { 8, 9, 10 } } }
local lp = logprob.completions(model, rows)
local s = (lp.logp * lp.mask):sum()
s:backward()
local params = model:parameters()
local any = false
for _, p in pairs(params) do if p.grad and p.grad:abs():sum():item() > 0 then any = true end end
c.ok(any, 'the log-probs are differentiable in the parameters')
c.ok((-lp.entropy):max():item() <= 1e-6, 'entropies are >= 0')

c.raises(function() return logprob.completions(model, {}) end, 'non-empty list')
c.raises(function() return logprob.completions(model, { { prompt = {}, completion = { 1 } } }) end, 'row 1 has an empty')
c.raises(function() return logprob.completions(model, { { prompt = { 1 } } }) end, 'row 1 must be')
c.raises(function() return logprob.completions(model, rows, { temperature = 0 }) end, 'temperature must be')
c.raises(function() return logprob.micro_batches(rows, 0) end, 'budget')

c.done()
