-- empo.rl.advantage (empo.advantage) — advantages from a group's rewards:
-- advantage(rewards, group) -> { A_1 .. A_G }.
--
--     advantage = empo.advantage.grpo                 -- (r - mean) / (std + eps)
--     advantage = empo.advantage.grpo{ eps = 1e-4, unbiased = false }
--     advantage = empo.advantage.dr_grpo              -- r - mean (Dr.GRPO: no std scaling)
--     advantage = empo.advantage.rloo                 -- r_i - mean of the others (RLOO)
--
-- rewards is an array of G numbers; group (the empo.rl.score table) is
-- passed for functions that want more.
local configurable = require 'empo.rl.configurable'

local M = {}

local function mean_of(name, r)
  if type(r) ~= 'table' then error(name .. ': rewards must be an array of numbers, got ' .. type(r), 3) end
  local s = 0
  for i = 1, #r do
    if type(r[i]) ~= 'number' then error(string.format('%s: reward %d is a %s', name, i, type(r[i])), 3) end
    s = s + r[i]
  end
  return #r > 0 and s / #r or 0
end

-- GRPO: (r_i - mean) / (std + eps); std with the n - 1 divisor (unbiased,
-- as torch.std in the TRL and verl implementations) unless unbiased = false.
-- A group of one has std 0.
M.grpo = configurable.new('empo.advantage.grpo', { eps = 1e-6, unbiased = true }, function(opts, r)
  local m = mean_of('empo.advantage.grpo', r)
  local n, ss = #r, 0
  for i = 1, n do ss = ss + (r[i] - m) ^ 2 end
  local d = opts.unbiased and n - 1 or n
  local std = d > 0 and math.sqrt(ss / d) or 0
  local a = {}
  for i = 1, n do a[i] = (r[i] - m) / (std + opts.eps) end
  return a
end)

-- Dr.GRPO: r_i - mean, no std scaling.
M.dr_grpo = configurable.new('empo.advantage.dr_grpo', {}, function(_, r)
  local m = mean_of('empo.advantage.dr_grpo', r)
  local a = {}
  for i = 1, #r do a[i] = r[i] - m end
  return a
end)

-- RLOO: r_i minus the mean of the other G - 1 rewards (0 for a group of one).
M.rloo = configurable.new('empo.advantage.rloo', {}, function(_, r)
  local m = mean_of('empo.advantage.rloo', r)
  local n, a = #r, {}
  for i = 1, n do a[i] = n > 1 and (r[i] - (m * n - r[i]) / (n - 1)) or 0 end
  return a
end)

return M
