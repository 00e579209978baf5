-- empo.rl — one question's group of G completions, from answers to advantages.
--
--     local rl = require 'empo.rl'
--     local g = rl.score(completions, {
--       question = q,
--       cluster = empo.cluster.math,                    -- or any fn(a, b, question) -> bool
--       filter = empo.filter.entropy{ low = 0, high = 0.75 * math.log(8) },
--       reward = empo.reward.cluster_share,
--       advantage = empo.advantage.grpo,
--     })
--     -- g.answers, g.ids, g.stats (shares, entropy, ...), g.keep, g.rewards, g.advantages
--
-- The pieces are plain Lua values with tiny protocols, so a recipe swaps any
-- of them for its own function:
--   cluster(a, b, question) -> bool          (or a clusterer, see empo.cluster)
--   filter(group) -> bool                    keep the group?
--   reward(group) -> { r_1 .. r_G }
--   advantage(rewards, group) -> { A_1 .. A_G }
-- where `group` is the table score() builds:
--   { question, completions, answers, ids (1-based, 0 = empty answer), k,
--     G, stats = rl.stats(...), gold (optional) }.
-- Built-in pieces with options are configurable values: called with a group
-- they compute; called with an options table they return a configured copy
-- (empo.reward.cluster_share{ empty = -0.5 }).
--
-- This module holds the group statistics, the configurable-value helper and
-- the pipeline; the pieces are in empo.reward, empo.filter, empo.advantage
-- (also reachable as rl.reward, rl.filter, rl.advantage).
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local C = E.C

local M = {}

local type, error, pairs, tostring = type, error, pairs, tostring

-- ---- configurable values ----

local Configurable = {}

-- A data call (group, rewards array) rather than an options table?
local function is_options(x)
  return type(x) == 'table' and getmetatable(x) == nil and x[1] == nil and x.ids == nil and x.answers == nil
end

-- A value named `name` computing fn(opts, ...) when called with data, and
-- returning a copy with changed options when called with an options table
-- (only the keys of `defaults` are accepted).
function M.configurable(name, defaults, fn)
  local obj = { name = name, options = defaults }
  return setmetatable(obj, {
    __index = Configurable,
    __tostring = function() return name end,
    __call = function(self, x, ...)
      if select('#', ...) == 0 and is_options(x) then
        local opts = {}
        for k, v in pairs(self.options) do opts[k] = v end
        for k, v in pairs(x) do
          if defaults[k] == nil then
            local known = {}
            for key in pairs(defaults) do known[#known + 1] = key end
            table.sort(known)
            error(string.format("%s: unknown option '%s' (options: %s)", name, tostring(k), table.concat(known, ', ')), 2)
          end
          opts[k] = v
        end
        return M.configurable(name, opts, fn)
      end
      return fn(self.options, x, ...)
    end,
  })
end

-- An option whose default is "not set" (tables cannot hold nil): read it with rl.option.
M.NIL = setmetatable({}, { __tostring = function() return 'nil' end })
function M.option(opts, key)
  local v = opts[key]
  if v == M.NIL then return nil end
  return v
end

-- ---- group statistics ----

local EMPTY_MODES = { singleton = C.EMPO_EMPTY_SINGLETON, cluster = C.EMPO_EMPTY_CLUSTER, drop = C.EMPO_EMPTY_DROP }
M.EMPTY_MODES = { 'singleton', 'cluster', 'drop' }

local cap, ids_buf, share_buf = 0, nil, nil
local stats_buf = ffi.new('empo_group_stats[1]')

-- Shares and semantic entropy of a clustering. ids: 1-based cluster ids,
-- 0 for an empty answer. opts.empty: how empty answers count —
--   'singleton' (default, the reference): each is a cluster of its own;
--   'cluster': together they are one cluster;
--   'drop': they are left out (shares over the other answers).
-- Returns { shares = {p of each answer's cluster}, entropy (natural log),
-- max_share (largest non-empty cluster), n_clusters (non-empty), n_empty,
-- sizes = {size of cluster c}, G }.
function M.stats(ids, opts)
  if type(ids) ~= 'table' then error('empo.rl.stats: ids must be a table of cluster ids, got ' .. type(ids), 2) end
  local mode_name = opts and opts.empty or 'singleton'
  local mode = EMPTY_MODES[mode_name]
  if not mode then
    error("empo.rl.stats: empty must be 'singleton', 'cluster' or 'drop', got " .. tostring(mode_name), 2)
  end
  local n = #ids
  if n > cap then
    cap = math.max(n, 64)
    ids_buf, share_buf = ffi.new('int32_t[?]', cap), ffi.new('double[?]', cap)
  end
  local sizes = {}
  for i = 1, n do
    local id = ids[i]
    if type(id) ~= 'number' or id < 0 or id > n or id % 1 ~= 0 then
      error(string.format('empo.rl.stats: ids[%d] = %s is not a cluster id in 0..%d', i, tostring(id), n), 2)
    end
    ids_buf[i - 1] = id - 1
    if id > 0 then sizes[id] = (sizes[id] or 0) + 1 end
  end
  E.check(C.empo_cluster_stats(n, ids_buf, mode, share_buf, stats_buf), 2)
  local shares = {}
  for i = 1, n do shares[i] = share_buf[i - 1] end
  for c = 1, #sizes do sizes[c] = sizes[c] or 0 end
  local st = stats_buf[0]
  return { shares = shares, entropy = st.entropy, max_share = st.max_share, n_clusters = st.n_clusters,
           n_empty = st.n_empty, sizes = sizes, G = n }
end

-- ---- the pipeline ----

local function array_of_numbers(x, n, what)
  if type(x) ~= 'table' or #x ~= n then
    error(string.format('empo.rl.score: %s must return %d numbers, got %s', what, n,
      type(x) == 'table' and (#x .. ' values') or type(x)), 3)
  end
  for i = 1, n do
    if type(x[i]) ~= 'number' then
      error(string.format('empo.rl.score: %s returned a %s at %d', what, type(x[i]), i), 3)
    end
  end
  return x
end

-- Scores one question's completions. spec (all optional):
--   extract   function(completion) -> answer (default empo.cluster.extract);
--             false: the completions already are answers
--   cluster   a clusterer or fn(a, b, question) -> bool (default cluster.math)
--   empty     how empty answers count in the statistics (see stats)
--   filter    fn(group) -> bool (default: keep every group)
--   reward    fn(group) -> rewards (default reward.cluster_share)
--   advantage fn(rewards, group) -> advantages (default advantage.grpo)
--   question, gold   strings stored in the group for the pieces to use
-- Returns the group with keep, rewards and advantages filled in. A group
-- the filter rejects still gets rewards and advantages; the trainer decides
-- whether to drop it (or re-sample).
function M.score(completions, spec)
  spec = spec or {}
  if type(completions) ~= 'table' then error('empo.rl.score: completions must be a table of strings', 2) end
  local cluster = require 'empo.rl.cluster'
  local extract = spec.extract
  if extract == nil then extract = cluster.extract end
  local answers = {}
  for i = 1, #completions do
    local c = completions[i]
    if type(c) ~= 'string' then error(string.format('empo.rl.score: completion %d is a %s', i, type(c)), 2) end
    answers[i] = extract and extract(c) or c
    if type(answers[i]) ~= 'string' then
      error(string.format('empo.rl.score: extract returned a %s for completion %d', type(answers[i]), i), 2)
    end
  end
  local ids, k = cluster.cluster(answers, spec.cluster or cluster.math, spec.question)
  local group = { question = spec.question, gold = spec.gold, completions = completions, answers = answers,
                  ids = ids, k = k, G = #answers }
  group.stats = M.stats(ids, { empty = spec.empty })
  local filter, reward, advantage = spec.filter, spec.reward or M.reward.cluster_share, spec.advantage or M.advantage.grpo
  group.keep = filter == nil or not not filter(group)
  group.rewards = array_of_numbers(reward(group), group.G, 'reward ' .. tostring(reward))
  group.advantages = array_of_numbers(advantage(group.rewards, group), group.G, 'advantage ' .. tostring(advantage))
  return group
end

-- rl.reward, rl.filter, rl.advantage load on first use (they require this module).
setmetatable(M, { __index = function(t, k)
  if k == 'reward' or k == 'filter' or k == 'advantage' then
    local mod = require('empo.rl.' .. k)
    rawset(t, k, mod)
    return mod
  end
end })

return M
