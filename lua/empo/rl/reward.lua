-- empo.rl.reward (empo.reward) — rewards of a group's completions:
-- reward(group) -> { r_1 .. r_G }.
--
--     reward = empo.reward.cluster_share                  -- EMPO: r_i = p(cluster of i)
--     reward = empo.reward.cluster_share{ empty = -0.5 }  -- free-form penalty for no answer
--     reward = empo.reward.majority                       -- TTRL: 1 for the largest cluster
--     reward = empo.reward.gold                           -- supervised GRPO: 1 if equal to group.gold
--     reward = function(group) ... end                    -- anything else
--
-- `group` is the table empo.rl.score builds (answers, ids, stats, gold, ...).
-- Every built-in scores an empty answer (id 0) with its `empty` option
-- (default 0), whatever the statistics say about it.
local configurable = require 'empo.rl.configurable'
local group_stats = require('empo.rl.stats').stats
local cluster = require 'empo.rl.cluster'

local M = {}

local function check_group(name, group)
  if type(group) ~= 'table' or type(group.ids) ~= 'table' then
    error(name .. ': expected a group (a table with ids and stats, see empo.rl.score)', 3)
  end
  return group.stats or group_stats(group.ids)
end

-- EMPO: each completion gets its cluster's share p(c) (log p(c) with
-- log = true, as the reference's TRL code).
M.cluster_share = configurable.new('empo.reward.cluster_share', { empty = 0, log = false }, function(opts, group)
  local stats = check_group('empo.reward.cluster_share', group)
  local r = {}
  for i = 1, #group.ids do
    if group.ids[i] == 0 then r[i] = opts.empty
    else r[i] = opts.log and math.log(stats.shares[i]) or stats.shares[i] end
  end
  return r
end)

-- TTRL: 1 for completions in the largest cluster, 0 for the others. Ties:
-- 'all' rewards every cluster of the largest size, 'first' only the one
-- that appears first.
M.majority = configurable.new('empo.reward.majority', { empty = 0, ties = 'all' }, function(opts, group)
  local stats = check_group('empo.reward.majority', group)
  if opts.ties ~= 'all' and opts.ties ~= 'first' then
    error("empo.reward.majority: ties must be 'all' or 'first', got " .. tostring(opts.ties), 2)
  end
  local best, first = 0, nil
  for c = 1, #stats.sizes do
    if stats.sizes[c] > best then best, first = stats.sizes[c], c end
  end
  local r = {}
  for i = 1, #group.ids do
    local c = group.ids[i]
    if c == 0 then r[i] = opts.empty
    elseif opts.ties == 'all' then r[i] = stats.sizes[c] == best and 1 or 0
    else r[i] = c == first and 1 or 0 end
  end
  return r
end)

-- Supervised baseline: 1 when the answer is equivalent to group.gold
-- (equivalent: a clusterer or fn(a, b, question) -> bool, default cluster.math).
M.gold = configurable.new('empo.reward.gold', { empty = 0, equivalent = configurable.NIL }, function(opts, group)
  check_group('empo.reward.gold', group)
  if type(group.gold) ~= 'string' then error('empo.reward.gold: the group has no gold answer (group.gold)', 2) end
  local same = configurable.option(opts, 'equivalent') or cluster.math
  local r = {}
  for i = 1, #group.ids do
    if group.ids[i] == 0 then r[i] = opts.empty
    else r[i] = same(group.answers[i], group.gold, group.question) and 1 or 0 end
  end
  return r
end)

-- ---- label-free rewards from the model's own token distributions ----
-- They read group.token_entropy / group.self_certainty (one mean per
-- completion over its tokens), which the sampler computes in C from the
-- logits of each draw (empo_sample_token_stats) when the reward asks for
-- them (needs_tokens): no extra forward pass.

local function token_stat(name, group, field)
  check_group(name, group)
  local xs = group[field]
  if type(xs) ~= 'table' or #xs ~= group.G then
    error(name .. ': needs group.' .. field .. ' (one value per completion; the trainer fills it)', 3)
  end
  return xs
end

-- RENT / EM-RL: minus the mean token entropy of each completion.
M.neg_entropy = configurable.new('empo.reward.neg_entropy', { empty = 0 }, function(opts, group)
  local h, r = token_stat('empo.reward.neg_entropy', group, 'token_entropy'), {}
  for i = 1, group.G do r[i] = group.ids[i] == 0 and opts.empty or -h[i] end
  return r
end)

-- Intuitor: self-certainty, the mean over a completion's tokens of
-- KL(uniform || p) = -log V - mean_v log p_v.
M.self_certainty = configurable.new('empo.reward.self_certainty', { empty = 0 }, function(opts, group)
  local s, r = token_stat('empo.reward.self_certainty', group, 'self_certainty'), {}
  for i = 1, group.G do r[i] = group.ids[i] == 0 and opts.empty or s[i] end
  return r
end)

-- The control: Bernoulli(p) per completion, a function of (seed, question,
-- completion) only (reproducible, whatever the batch): a gain under it is
-- an artefact of the update, not of the reward.
local bit = require 'bit'
local function unit_hash(seed, ...)
  local h = bit.tobit(2166136261 + seed)
  for k = 1, select('#', ...) do
    local s = tostring(select(k, ...))
    for i = 1, #s do h = bit.tobit(bit.bxor(h, s:byte(i)) * 16777619) end
    h = bit.tobit(bit.bxor(h, 0xff) * 16777619)
  end
  return (bit.band(h, 0x7fffffff) + 0.5) / 2147483648
end
M.random = configurable.new('empo.reward.random', { p = 0.5, seed = 0 }, function(opts, group)
  check_group('empo.reward.random', group)
  local r = {}
  for i = 1, group.G do
    r[i] = unit_hash(opts.seed, group.question or '', i, group.completions and group.completions[i] or '') < opts.p
           and 1 or 0
  end
  return r
end)

-- Rewards that read the token statistics.
local TOKEN_REWARDS = { ['empo.reward.neg_entropy'] = true, ['empo.reward.self_certainty'] = true }
function M.needs_tokens(reward)
  if type(reward) ~= 'table' then return false end
  return TOKEN_REWARDS[tostring(reward)] == true or reward.needs_tokens == true
end

-- A weighted sum of rewards: combine{ { 1.0, reward.cluster_share }, { 0.1, reward.neg_entropy } }.
function M.combine(parts)
  if type(parts) ~= 'table' or #parts == 0 then error('empo.reward.combine: expected a list of { weight, reward }', 2) end
  local needs = false
  for i, p in ipairs(parts) do
    if type(p) ~= 'table' or type(p[1]) ~= 'number' or p[2] == nil then
      error(string.format('empo.reward.combine: part %d must be { weight, reward }', i), 2)
    end
    needs = needs or M.needs_tokens(p[2])
  end
  return setmetatable({ needs_tokens = needs }, {
    __tostring = function() return 'empo.reward.combine' end,
    __call = function(_, group)
      local total = {}
      for i = 1, group.G do total[i] = 0 end
      for _, p in ipairs(parts) do
        local r = p[2](group)
        for i = 1, group.G do total[i] = total[i] + p[1] * r[i] end
      end
      return total
    end,
  })
end

return M
