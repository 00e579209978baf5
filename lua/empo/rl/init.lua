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
-- This module is the pipeline (score) over the folder's layers, each its
-- own file: cluster.lua (answers and equivalence), stats.lua (shares and
-- entropy), configurable.lua (the pieces' protocol), then the pieces
-- reward.lua, filter.lua, advantage.lua — the umbrella's empo.cluster,
-- empo.reward, empo.filter, empo.advantage, also reachable here as
-- rl.cluster, rl.reward, rl.filter, rl.advantage. The pieces never require
-- this module.
local cluster = require 'empo.rl.cluster'
local configurable = require 'empo.rl.configurable'
local stats = require 'empo.rl.stats'
local contract = require 'empo.rl.contract'

local M = {
  configurable = configurable.new, NIL = configurable.NIL, option = configurable.option,
  stats = stats.stats, EMPTY_MODES = stats.EMPTY_MODES,
  cluster = cluster,
  reward = require 'empo.rl.reward',
  filter = require 'empo.rl.filter',
  advantage = require 'empo.rl.advantage',
}

local type, error, tostring = type, error, tostring

-- ---- the pipeline ----

-- Scores one question's completions. spec (all optional):
--   extract   function(completion) -> answer (default empo.cluster.extract);
--             false: the completions already are answers
--   cluster   a clusterer or fn(a, b, question) -> bool (default cluster.math)
--   empty     how empty answers count in the statistics (see stats)
--   filter    fn(group) -> bool (default: keep every group)
--   reward    fn(group) -> rewards (default reward.cluster_share)
--   advantage fn(rewards, group) -> advantages (default advantage.grpo)
--   question, gold   strings stored in the group for the pieces to use
--   answers   the completions' answers when already extracted (extract is
--             then not called)
--   tokens    per-completion token statistics stored in the group for the
--             rewards that need them: { entropy = {...}, self_certainty = {...} }
--             (group.token_entropy, group.self_certainty: one mean per completion)
-- Returns the group with keep, rewards and advantages filled in. A group
-- the filter rejects still gets rewards and advantages; the trainer decides
-- whether to drop it (or re-sample).
function M.score(completions, spec)
  spec = spec or {}
  if type(completions) ~= 'table' then error('empo.rl.score: completions must be a table of strings', 2) end
  local extract = spec.extract
  if extract == nil then extract = cluster.extract end
  local answers = spec.answers or {}
  if spec.answers and #answers ~= #completions then
    error(string.format('empo.rl.score: %d answers for %d completions', #answers, #completions), 2)
  end
  for i = 1, #completions do
    local c = completions[i]
    if type(c) ~= 'string' then error(string.format('empo.rl.score: completion %d is a %s', i, type(c)), 2) end
    if not spec.answers then answers[i] = extract and extract(c) or c end
    if type(answers[i]) ~= 'string' then
      error(string.format('empo.rl.score: %s a %s for completion %d', spec.answers and 'answers has' or
                          'extract returned', type(answers[i]), i), 2)
    end
  end
  local ids, k = cluster.cluster(answers, spec.cluster or cluster.math, spec.question)
  return M.score_clusters({ question = spec.question, gold = spec.gold, completions = completions, answers = answers,
                            ids = ids, k = k, G = #answers }, spec)
end

-- The rest of score for a group whose answers are already clustered
-- (group.ids, group.k): statistics, filter, rewards, advantages (spec as
-- score's; `empo rescore` re-scores stored groups through it).
function M.score_clusters(group, spec)
  if spec.tokens then group.token_entropy, group.self_certainty = spec.tokens.entropy, spec.tokens.self_certainty end
  group.stats = M.stats(group.ids, { empty = spec.empty })
  local filter, reward, advantage = spec.filter, spec.reward or M.reward.cluster_share, spec.advantage or M.advantage.grpo
  group.keep = filter == nil or contract.boolean('filter', filter, filter(group))
  group.rewards = contract.numbers('reward', reward, reward(group), group.G)
  group.advantages = contract.numbers('advantage', advantage, advantage(group.rewards, group), group.G)
  return group
end

-- Accuracy against gold answers, and the policy's log-probs of completions
-- (they stand on the tensors and the sampler only).
M.eval = require 'empo.rl.eval'
M.logprob = require 'empo.rl.logprob'

-- The RL loop over a recipe (empo.rl.trainer; loaded on first use: it
-- stands above this module).
function M.trainer(recipe, overrides) return require('empo.rl.trainer').new(recipe, overrides) end

return M
