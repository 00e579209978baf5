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

return M
