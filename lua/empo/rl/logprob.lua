-- empo.rl.logprob — the policy's log-probs (and entropies) of sampled
-- completions, teacher-forced through the same model object that sampled
-- them, with autograd: what the policy update differentiates.
--
--     local rows = { { prompt = { 5, 9, 2 }, completion = { 7, 1, 60 } }, ... }
--     local lp = logprob.completions(model, rows, { temperature = 1.0 })
--     -- lp.logp, lp.entropy: [S, Tmax] (row i's token t at [i, t]); lp.mask: 1 where t <= #completion
--     -- with { self_certainty = true }: lp.self_certainty [S, Tmax], KL(uniform || p) per token
--     local batches = logprob.micro_batches(rows, 4096)   -- lists of row indices, each <= 4096 tokens
--
-- The log-prob of completion token t is log_softmax(logits / T)[token] at
-- the position before it, T the sampling temperature (as verl and TRL
-- compute it), so before the first update it equals what the sampler
-- returned as the token's log-prob when nothing truncates the distribution
-- (top_k = 0, top_p = 1, min_p = 0). Rows are right-padded to one length:
-- with causal attention, padding after a row's tokens changes none of them.
-- This module is not the loss (empo.rl.loss) nor the sampler (empo.sample).
local empo = require 'empo'

local type, error, format = type, error, string.format

local M = {}

local function check_rows(rows)
  if type(rows) ~= 'table' or #rows == 0 then error('logprob.completions: rows must be a non-empty list', 3) end
  for i, r in ipairs(rows) do
    if type(r) ~= 'table' or type(r.prompt) ~= 'table' or type(r.completion) ~= 'table' then
      error(format('logprob.completions: row %d must be { prompt = {ids}, completion = {ids} }', i), 3)
    end
    if #r.prompt == 0 or #r.completion == 0 then
      error(format('logprob.completions: row %d has an empty prompt or completion', i), 3)
    end
  end
end

-- Tokens one row takes through the network: its prompt and all but the
-- last completion token.
function M.row_tokens(r) return #r.prompt + #r.completion - 1 end

-- Rows in order split into lists of indices whose padded size (rows x
-- longest) stays within `budget` tokens (a row longer than the budget is a
-- list of its own): the update's micro-batches.
function M.micro_batches(rows, budget)
  if type(budget) ~= 'number' or budget < 1 then error('logprob.micro_batches: budget must be >= 1 tokens', 2) end
  local out, cur, longest = {}, {}, 0
  for i, r in ipairs(rows) do
    local n = M.row_tokens(r)
    local l = math.max(longest, n)
    if #cur > 0 and l * (#cur + 1) > budget then
      out[#out + 1] = cur
      cur, l = {}, n
    end
    cur[#cur + 1] = i
    longest = l
  end
  if #cur > 0 then out[#out + 1] = cur end
  return out
end

function M.completions(model, rows, opts)
  check_rows(rows)
  local temperature = opts and opts.temperature or 1.0
  if type(temperature) ~= 'number' or not (temperature > 0) then
    error('logprob.completions: temperature must be a number > 0, got ' .. tostring(temperature), 2)
  end
  local S, L, Tmax = #rows, 0, 0
  for _, r in ipairs(rows) do
    L = math.max(L, M.row_tokens(r))
    Tmax = math.max(Tmax, #r.completion)
  end
  local ids, index, targets, mask = {}, {}, {}, {}
  for i, r in ipairs(rows) do
    local row, p, n = {}, #r.prompt, #r.completion
    for k = 1, p do row[k] = r.prompt[k] end
    for k = 1, n - 1 do row[p + k] = r.completion[k] end
    for k = p + n, L do row[k] = 0 end
    ids[i] = row
    local m = {}
    for t = 1, Tmax do
      local j = (i - 1) * Tmax + t
      if t <= n then
        index[j] = (i - 1) * L + (p - 1) + (t - 1)        -- the position predicting token t (0-based, flat)
        targets[j], m[t] = r.completion[t], 1
      else
        index[j], targets[j], m[t] = (i - 1) * L, 0, 0     -- padding: any valid position, masked out
      end
    end
    mask[i] = m
  end
  local logits = model(empo.tensor(ids, 'i64'))             -- [S, L, V]
  local V = logits:size(3)
  local picked = logits:reshape(S * L, V):index_select(1, empo.tensor(index, 'i64'))   -- [S*Tmax, V]
  if temperature ~= 1 then picked = picked * (1 / temperature) end
  local logp, entropy = empo.logprob_entropy(picked, empo.tensor(targets, 'i64'))
  local out = { logp = logp:reshape(S, Tmax), entropy = entropy:reshape(S, Tmax), mask = empo.tensor(mask) }
  if opts and opts.self_certainty then        -- KL(uniform || p) = -log V - mean_v log p_v, per token
    out.self_certainty = (-picked:log_softmax(2):mean(2) - math.log(V)):reshape(S, Tmax)
  end
  return out
end

return M
