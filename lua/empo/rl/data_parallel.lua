-- empo.rl.data_parallel — the trainer on several processes (empo.dist):
-- each rank samples and scores a contiguous share of the step's
-- questions (a question's G completions, clusters, rewards and advantages
-- stay on one rank), every rank then holds every group (metrics, the
-- guard's verdict and the rows' global order are the same everywhere), the
-- update runs each rank's own rows with the loss weighted by the whole
-- batch, and the gradients are summed over the ranks once per optimizer
-- step (recipe field dist.reduce: 'fast', f32; 'exact', fixed point, so N
-- ranks give one process's bits). Methods of empo.rl.trainer (`self`).
local dist = require 'empo.run.dist'
local clock = require('empo.run.log').clock

local ipairs, pairs, math = ipairs, pairs, math

local M = { methods = {} }

M.ATTACH_STOP = 't:stop() from empo attach'   -- (the name a stop asked by an attached client goes by)

-- The trainer's data-parallel state: nil for one process with the fast
-- reduction (nothing changes), else { rank, size, exact }.
function M.setup(r)
  local size = dist.init().size()
  local exact = r.dist.reduce == 'exact'
  if size == 1 and not exact then return nil end
  return { rank = dist.rank(), size = size, exact = exact }
end

-- The contiguous share of `questions` that rank takes (0-based), cut so
-- the shares' prompt tokens (cost) are as even as the order allows.
function M.shard(questions, cost, rank, size)
  local total, cum = 0, {}
  for i, q in ipairs(questions) do total = total + cost(q); cum[i] = total end
  local lo, hi = total * rank / size, total * (rank + 1) / size
  local out = {}
  for i, q in ipairs(questions) do
    local mid = cum[i] - cost(q) / 2              -- a question goes where its middle falls
    if mid >= lo and (mid < hi or rank == size - 1) then out[#out + 1] = q end
  end
  return out
end

-- What other ranks need of a group: all but the per-token arrays (its
-- samples keep their ids, text and finish; and the sampler's log-probs
-- when rank 0 keeps them in the rollout store).
local function slim(g, logprobs)
  local out = {}
  for k, v in pairs(g) do
    if k ~= 'samples' then out[k] = v end
  end
  out.samples = {}
  for i, c in ipairs(g.samples) do
    out.samples[i] = { ids = c.ids, text = c.text, finish = c.finish, logprobs = logprobs and c.logprobs or nil }
  end
  return out
end

-- f(...) with its seconds added to the step's time in collectives
-- (self.comm_seconds: the transfers and the wait for the slowest rank)
local function timed(self, f, ...)
  local t0 = clock()
  local a, b = f(...)
  self.comm_seconds = (self.comm_seconds or 0) + clock() - t0
  return a, b
end

-- Every rank's groups in rank order (this rank's own objects in their
-- place, the others' slim and marked remote) and the sampler's stats.
function M.methods.gather_groups(self, groups, stats)
  if self.dp.size == 1 then return groups, stats end
  local mine = {}
  local keep_logprobs = self.recipe.rollouts.on and self.recipe.name ~= ''
  for i, g in ipairs(groups) do mine[i] = slim(g, keep_logprobs) end
  local all = timed(self, dist.gather, { groups = mine, tokens = stats.tokens or 0, seconds = stats.seconds or 0 })
  local out, tokens, seconds = {}, 0, 0
  for r, part in ipairs(all) do
    for i, g in ipairs(part.groups) do
      if r - 1 == self.dp.rank then out[#out + 1] = groups[i]
      else g.remote = true; out[#out + 1] = g end
    end
    tokens, seconds = tokens + part.tokens, math.max(seconds, part.seconds)
  end
  local merged = {}
  for k, v in pairs(stats) do merged[k] = v end
  merged.tokens, merged.seconds = tokens, seconds
  merged.tokens_per_s = seconds > 0 and tokens / seconds or stats.tokens_per_s
  return out, merged
end

-- This rank's share of a step's questions.
function M.methods.my_questions(self, questions)
  if self.dp.size == 1 then return questions end
  local tok, prompt_text = self.tok, require('empo.rl.preflight').prompt_text
  return M.shard(questions, function(q) return #tok:encode(prompt_text(self.recipe, q.question)) end,
                 self.dp.rank, self.dp.size)
end

-- Every rank's list of records, concatenated in rank order (one process:
-- the list itself): sums over it in that order are the same on every rank.
function M.methods.gather_list(self, list)
  if not self.dp or self.dp.size == 1 then return list end
  local out = {}
  for _, part in ipairs(timed(self, dist.gather, list)) do
    for _, x in ipairs(part) do out[#out + 1] = x end
  end
  return out
end

-- After an update's backward passes: the gradients summed over the ranks.
function M.methods.reduce_gradients(self)
  if self.dp then timed(self, dist.reduce_grads, self.params, self.dp.exact) end
end

-- After each micro-batch's backward (exact mode): into the accumulator.
function M.methods.fold_gradients(self)
  if self.dp and self.dp.exact then dist.fold_grads(self.params) end
end

-- A stop signal any rank received (SIGINT, SIGTERM: empo.stop), or nil:
-- all ranks then stop after the same step.
function M.methods.stop_requested(self)
  local signal = require('empo.run.stop').requested() or (self.stop_asked and M.ATTACH_STOP) or nil
  if not self.dp or self.dp.size == 1 then return signal end
  for _, s in ipairs(dist.gather(signal or false)) do if s then return s end end
  return nil
end

-- Every recipe.dist.checksum_every steps: the ranks' weights compared.
function M.methods.check_lockstep(self, step)
  local every = self.recipe.dist.checksum_every
  if self.dp and self.dp.size > 1 and every > 0 and step % every == 0 then
    dist.check_lockstep(self.params, step)
  end
end

return M
