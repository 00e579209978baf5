-- empo.rl.filter (empo.filter) — which groups train: filter(group) -> bool
-- (true = keep).
--
--     filter = empo.filter.entropy{ low = 0, high = 0.75 * math.log(8) }
--     filter = empo.filter.confidence{ low = 0.3, high = 1.0 }   -- the reference's verl setting
--     filter = empo.filter.distinct                              -- drop groups with no agreement
--     filter = empo.filter.all{ empo.filter.distinct, my_filter }
--     filter = function(group) return group.stats.n_empty < 4 end
--
-- `group` is the table empo.rl.score builds; its stats come from empo.rl.stats.
local configurable = require 'empo.rl.configurable'

local M = {}

-- Entropies within this of a bound count as on it (log G computed two ways).
local SLACK = 1e-9

local function stats_of(name, group)
  if type(group) ~= 'table' or type(group.stats) ~= 'table' then
    error(name .. ': expected a group with stats (see empo.rl.score)', 3)
  end
  return group.stats
end

-- Keep when low <= H < high (semantic entropy, natural log). high defaults
-- to log G: a group whose answers all differ (H = log G) is dropped, as the
-- reference zeroes its rewards; low = 0 keeps groups in full agreement.
M.entropy = configurable.new('empo.filter.entropy', { low = 0, high = configurable.NIL }, function(opts, group)
  local st = stats_of('empo.filter.entropy', group)
  local high = configurable.option(opts, 'high') or math.log(math.max(st.G, 1))
  return st.entropy >= opts.low - SLACK and st.entropy < high - SLACK
end)

-- Keep when low <= max_share <= high (the largest non-empty cluster's share).
M.confidence = configurable.new('empo.filter.confidence', { low = 0.3, high = 1.0 }, function(opts, group)
  local st = stats_of('empo.filter.confidence', group)
  return st.max_share >= opts.low - SLACK and st.max_share <= opts.high + SLACK
end)

-- Drop groups where no two answers agree (every cluster has one member,
-- or every answer is empty).
function M.distinct(group)
  local st = stats_of('empo.filter.distinct', group)
  for c = 1, #st.sizes do
    if st.sizes[c] >= 2 then return true end
  end
  return false
end

-- Keep every group.
function M.none(group) return true end

-- Keep when every filter in the list keeps.
function M.all(filters)
  if type(filters) ~= 'table' then error('empo.filter.all: expected a list of filters', 2) end
  return function(group)
    for i = 1, #filters do
      if not filters[i](group) then return false end
    end
    return true
  end
end

return M
