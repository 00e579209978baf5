-- empo.rl.metrics — a step's record: what the step's groups, update and
-- timings say (reward, entropy, kept, clusters, answer rate, loss, clip
-- fraction, lengths, the guard's signals), and what the gold answers say
-- when the data carry them (majority_correct, positive_correct: for
-- metrics only; no reward sees them unless the recipe asks). "The largest
-- cluster" is empo.rl.stats' rule (the lowest id on a tie), as in the
-- evaluation's maj@k.
local empo = require 'empo'
local contract = require 'empo.rl.contract'

local format, ipairs, pairs, type, math = string.format, ipairs, pairs, type, math

local M = {}

local function mean_std(xs)
  local n, s = #xs, 0
  if n == 0 then return 0, 0 end
  for _, x in ipairs(xs) do s = s + x end
  local m, v = s / n, 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / math.max(n - 1, 1))
end

-- majority_correct: how often the largest cluster's answer is right;
-- positive_correct: the share of positive-advantage completions that are
-- right. {} when no group has a gold answer.
function M.gold(groups, cluster)
  local equal = cluster or empo.cluster.math
  if type(equal) == 'table' and equal.equal then equal = equal.equal end
  equal = contract.boolean_fn('cluster rule', equal)
  local groups_gold, majority_right, positive, positive_right = 0, 0, 0, 0
  for _, g in ipairs(groups) do
    if g.gold ~= nil then
      groups_gold = groups_gold + 1
      local right = {}
      for i = 1, g.G do right[i] = g.answers[i] ~= '' and equal(g.answers[i], g.gold, g.question) end
      local best = g.stats.largest
      for i = 1, g.G do
        if best > 0 and g.ids[i] == best then
          if right[i] then majority_right = majority_right + 1 end
          break
        end
      end
      for i = 1, g.G do
        if g.keep and g.advantages[i] > 0 then
          positive = positive + 1
          if right[i] then positive_right = positive_right + 1 end
        end
      end
    end
  end
  if groups_gold == 0 then return {} end
  return { majority_correct = majority_right / groups_gold,
           positive_correct = positive > 0 and positive_right / positive or nil }
end

-- The record of step s = { step, groups, stats (the sampler's), kept,
-- rounds, opt (update.optimize's), base_nll, lr, t0, t_sample, t_update,
-- quiet, seconds_comm }, r the recipe. A step whose positive-advantage completions are
-- mostly wrong is said on stderr (unless quiet).
function M.record(s, r)
  local groups, opt = s.groups, s.opt
  local rewards, entropies, clusters, answered = {}, {}, 0, 0
  local tokens, truncated, low_entropy, majorities, distinct = 0, 0, 0, {}, 0
  for _, g in ipairs(groups) do
    for _, x in ipairs(g.rewards) do rewards[#rewards + 1] = x end
    entropies[#entropies + 1] = g.stats.entropy
    clusters = clusters + g.stats.n_clusters
    answered = answered + (g.G - g.stats.n_empty)
    for _, c in ipairs(g.samples) do
      tokens = tokens + #c.ids
      if c.finish == 'length' then truncated = truncated + 1 end
    end
    if g.stats.entropy <= r.guard.entropy then low_entropy = low_entropy + 1 end
    local best_answer = nil                           -- the group's majority answer, for the guard's diversity signal
    for k = 1, g.G do if g.ids[k] == g.stats.largest and g.ids[k] > 0 then best_answer = g.answers[k]; break end end
    if best_answer and not majorities[best_answer] then majorities[best_answer], distinct = true, distinct + 1 end
  end
  local reward_mean, reward_std = mean_std(rewards)
  local total, n_groups = math.max(#groups * r.sample.n, 1), math.max(#groups, 1)
  local rec = {
    step = s.step, reward = reward_mean, reward_std = reward_std, entropy = (mean_std(entropies)),
    kept = s.kept / n_groups, groups = #groups, rounds = s.rounds, clusters = clusters / n_groups,
    answer_rate = answered / total, loss = opt.loss, clip_frac = opt.clip_frac, approx_kl = opt.approx_kl,
    grad_norm = opt.grad_norm, skipped = opt.skipped, lr = s.lr, update_tokens = opt.update_tokens,
    optimizer_steps = opt.optimizer_steps, kl = opt.kl, old_gap_mean = opt.old_gap_mean, old_gap_max = opt.old_gap_max,
    sample_tokens_per_s = s.stats.tokens_per_s, seconds_sample = s.t_sample - s.t0, seconds_update = s.t_update - s.t_sample,
    seconds_comm = s.seconds_comm,                    -- (several ranks: in collectives, waits included)
    response_length = tokens / total, truncated = truncated / total,
    low_entropy = low_entropy / n_groups, distinct_answers = distinct / n_groups,
    base_nll = s.base_nll,
    peak_rss_gb = (require('empo.run.log').peak_rss_mb() or 0) / 1024,   -- the process's high-water mark so far
  }
  local gold = M.gold(groups, r.grade or r.cluster)
  for k, v in pairs(gold) do rec[k] = v end
  if gold.positive_correct and gold.positive_correct < 0.3 and not s.quiet then
    io.stderr:write(format('empo: step %d: only %.0f%% of the positive-advantage completions are right: the reward ' ..
                           'may be reinforcing wrong majorities\n', s.step, 100 * gold.positive_correct))
  end
  return rec
end

return M
