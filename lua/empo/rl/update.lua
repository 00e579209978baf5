-- empo.rl.update — the policy update of a step: the rows (each kept
-- completion with its prompt, old log-probs and advantage), micro-batches
-- (shared prompts or per sequence), one pass of the loss with gradients
-- (`update`), the update_epochs x mini_batches optimizer steps with clipping and
-- the skip of a non-finite loss or gradient (`optimize`), and the
-- starting model's NLL of the rows for the collapse guard (`base_nll`).
-- Methods of empo.rl.trainer (`self` is the trainer), but `rows`.
local empo = require 'empo'
local logprob = require 'empo.rl.logprob'
local mixed = require 'empo.nn.mixed'

local format, ipairs, math = string.format, ipairs, math

local M = { methods = {} }   -- methods: the trainer's (self is the trainer)

-- EMPO_MEMORY_TRACE=1: a line on stderr after each micro-batch's backward
-- (its rows and tokens, bytes of live tensors, of the allocator's cache,
-- the process's resident memory): what a memory plan is checked against.
local TRACE = os.getenv('EMPO_MEMORY_TRACE') == '1'
local function trace(b)
  local m, f = empo.memory(), io.open('/proc/self/status')
  local status = f and f:read('*a') or ''
  if f then f:close() end
  io.stderr:write(format('empo: memory: micro-batch of %d rows: live %.2f GB, cached %.2f GB, resident %.2f GB\n', #b.rows,
                         m.live / 2 ^ 30, m.cached / 2 ^ 30, (tonumber(status:match('VmRSS:%s+(%d+)')) or 0) / 2 ^ 20))
end

-- The rows of the update: every completion of the kept groups.
-- (mask_truncated: completions cut at max_new_tokens are left out; a
-- group another rank sampled gives rows marked remote: they count in the
-- batch's totals, and that rank runs them)
function M.rows(groups, mask_truncated)
  local rows = {}
  for _, g in ipairs(groups) do
    if g.keep then
      for k, c in ipairs(g.samples) do
        if #c.ids > 0 and not (mask_truncated and c.finish == 'length') then
          rows[#rows + 1] = { prompt = g.prompt_ids, completion = c.ids, old = c.logprobs, adv = g.advantages[k],
                              remote = g.remote }
        end
      end
    end
  end
  return rows
end

-- The rows this process runs.
local function own(rows)
  local out = {}
  for _, row in ipairs(rows) do if not row.remote then out[#out + 1] = row end end
  return out
end

-- Index lists of rows packed into micro-batches; with exact gradients
-- each group's rows (a run of one prompt) are packed on their own, so a
-- micro-batch is the same whichever rank holds the group.
local function pack(rows, budget, shared, per_group)
  if not per_group then return logprob.micro_batches(rows, budget, shared) end
  local out, first = {}, 1
  for i = 1, #rows do
    if i == #rows or rows[i + 1].prompt ~= rows[i].prompt then
      local run = {}
      for j = first, i do run[#run + 1] = rows[j] end
      for _, idx in ipairs(logprob.micro_batches(run, budget, shared)) do
        for k = 1, #idx do idx[k] = idx[k] + first - 1 end
        out[#out + 1] = idx
      end
      first = i + 1
    end
  end
  return out
end

-- [S, T] tensors of one micro-batch's old log-probs and advantages [S],
-- on device (the log-probs').
local function old_and_adv(rows, idx, T, device)
  local old, adv = {}, {}
  for k, i in ipairs(idx) do
    local row = {}
    for t = 1, T do row[t] = rows[i].old[t] or 0 end
    old[k], adv[k] = row, rows[i].adv
  end
  local on = { device = device }
  return empo.tensor(old, on), empo.tensor(adv, on)
end

-- The rows of each micro-batch of an update (lists of rows), and whether
-- they run with shared prompts (recipe field shared_prompt).
-- (all_rows, when given, decides shared prompts: the whole batch's rows,
-- so that every rank decides alike)
function M.methods.micro_batches(self, rows, model, all_rows)
  local plan = self.plan
  local shared = not (plan and plan.checkpoint) and
                 logprob.use_shared(model or self.model, all_rows or rows, self.recipe.shared_prompt)
  local out = {}
  local budget = plan and plan.micro_batch_tokens or self.recipe.micro_batch_tokens
  for b, idx in ipairs(pack(rows, budget, shared, self.dp and self.dp.exact)) do
    local sub = {}
    for k, i in ipairs(idx) do sub[k] = rows[i] end
    out[b] = { idx = idx, rows = sub }
  end
  return out, shared
end

-- The options of logprob.completions for this trainer's model: the
-- tokenizer's ids only (a padded embedding's rows are never sampled, so
-- the policy is a distribution over the others) and the memory plan's
-- head chunk (empo.rl.memory).
function M.methods.logprob_opts(self, temperature, shared)
  local tok, V = self.tok, self.model.config and self.model.config.vocab_size
  local vocab = tok and tok.vocab_size and V and tok.vocab_size < V and tok.vocab_size or nil
  return { temperature = temperature, shared_prompt = shared, vocab = vocab,
           head_chunk = self.plan and self.plan.head_chunk or nil }
end

-- The sampler's log-probs of a completion (its tokens' n values) against
-- the update's forward on the same weights, into gap's sum, max and count
-- (this rank's rows: the figure is a diagnostic, not summed over ranks).
local function measure_gap(gap, sampler, update, n)
  for t = 1, n do
    local d = math.abs(sampler[t] - update[t])
    gap.sum, gap.n = gap.sum + d, gap.n + 1
    if d > gap.max then gap.max = d end
  end
end

-- One pass of the policy update over rows (this rank runs its own; the
-- loss is weighted by the whole batch's totals); returns its loss
-- statistics, with the gradients summed over the ranks.
function M.methods.update(self, all_rows)
  local r = self.recipe
  local temperature = r.sample.temperature > 0 and r.sample.temperature or 1.0
  local truncated = r.sample.top_p < 1 or r.sample.top_k > 0 or r.sample.min_p > 0 or
                    r.sample.temperature == 0
  -- bf16 sampling weights: the sampler's log-probs are of the rounded
  -- model, so the ratio's old side is recomputed here, with the update's
  -- own forward (f32, or its bf16 products under precision='bf16')
  local rounded = r.sample.bf16_weights or mixed.attached(self.model)
  local gap = { sum = 0, max = 0, n = 0 }   -- |sampler - update| per token, where both are of one distribution
  local total_tokens, S = 0, #all_rows
  for _, row in ipairs(all_rows) do total_tokens = total_tokens + #row.completion end
  local rows = own(all_rows)
  local agg = r.loss.options.agg
  local batches, shared = self:micro_batches(rows, nil, all_rows)
  local opts = self:logprob_opts(temperature, shared)
  if r.recompute_old or truncated or rounded then   -- the sampler's log-probs are of another distribution
    for _, b in ipairs(batches) do
      local lp = empo.no_grad(logprob.completions, self.model, b.rows, opts).logp:tolist()
      for k, i in ipairs(b.idx) do
        if not truncated then measure_gap(gap, rows[i].old, lp[k], #rows[i].completion) end
        rows[i].old = lp[k]
      end
      if self.plan then empo.collect() end
    end
  end
  local with_kl = self.reference ~= nil
  local ref_opts = with_kl and self:logprob_opts(temperature, shared and logprob.can_share(self.reference))
  local grad_opts = self:logprob_opts(temperature, shared)
  grad_opts.checkpoint = self.plan and self.plan.checkpoint           -- (the memory plan's choice)
  -- one micro-batch's loss and backward; its tensors are garbage when it returns
  local function micro_batch(b)
    local lp = logprob.completions(self.model, b.rows, grad_opts)
    local old, adv = old_and_adv(rows, b.idx, lp.logp:size(2), lp.logp.device)
    local ref = with_kl and empo.no_grad(logprob.completions, self.reference, b.rows, ref_opts).logp or nil
    local value, st = r.loss{ logp = lp.logp, old_logp = old, adv = adv, mask = lp.mask, entropy = lp.entropy,
                              ref_logp = ref }
    -- the micro-batches' share of the whole batch's aggregate
    local weight = agg == 'token-mean' and st.tokens / math.max(total_tokens, 1) or #b.idx / S
    local v = value:item()
    if v ~= v or v == math.huge or v == -math.huge then return v, st end   -- the whole update is dropped (M.optimize)
    ;(value * weight):backward()
    return v, st, weight
  end
  local parts = {}                    -- each micro-batch's share of the statistics, summed below in order
  for _, b in ipairs(batches) do
    local v, st, weight = micro_batch(b)
    -- the forward's activations live in Lua boxes until the collector runs: free them now, not
    -- in the next micro-batch (with gigabytes of weights live, no pressure rule would soon)
    if self.plan then empo.collect() end
    if TRACE then trace(b) end
    if not weight then parts[#parts + 1] = { nonfinite = true }; break end
    self:fold_gradients()
    parts[#parts + 1] = { v * weight, st.clip_frac * st.tokens, st.approx_kl * st.tokens, with_kl and st.kl * st.tokens or 0 }
  end
  local sums = { loss = 0, clip_frac = 0, approx_kl = 0, kl = 0 }
  for _, p in ipairs(self:gather_list(parts)) do      -- (every rank's, in the batch's order)
    if p.nonfinite then sums.nonfinite = true; break end
    sums.loss, sums.clip_frac = sums.loss + p[1], sums.clip_frac + p[2]
    sums.approx_kl, sums.kl = sums.approx_kl + p[3], sums.kl + p[4]
  end
  self:reduce_gradients()             -- (also on a non-finite loss: every rank takes part; the update is dropped)
  if sums.nonfinite then return { nonfinite = true, tokens = total_tokens, clip_frac = 0, approx_kl = 0 } end
  local n = math.max(total_tokens, 1)
  return { loss = sums.loss, clip_frac = sums.clip_frac / n, approx_kl = sums.approx_kl / n, tokens = total_tokens,
           kl = with_kl and sums.kl / n or nil, shared_prompt = shared,
           old_gap_mean = gap.n > 0 and gap.sum / gap.n or nil, old_gap_max = gap.n > 0 and gap.max or nil }
end

-- The mean negative log-prob a token of the update's completions under
-- the starting model (the collapse guard's drift signal), at temperature 1,
-- over at most guard.drift_rows of them (evenly spaced: a mean needs no more).
function M.methods.base_nll(self, all)
  local picked, keep = {}, self.recipe.guard.drift_rows
  local stride = keep > 0 and math.max(1, #all / keep) or 1
  for i = 1, #all, stride do picked[#picked + 1] = all[math.floor(i)] end
  local parts = {}
  local batches, shared = self:micro_batches(own(picked), self.guard_base, picked)
  for _, b in ipairs(batches) do
    local lp = empo.no_grad(logprob.completions, self.guard_base, b.rows, self:logprob_opts(1.0, shared))
    parts[#parts + 1] = { (lp.logp * lp.mask):sum():item(), lp.mask:sum():item() }
    lp = nil                                   -- garbage for the collection below
    if self.plan then empo.collect() end
  end
  local sum, n = 0, 0
  for _, p in ipairs(self:gather_list(parts)) do sum, n = sum + p[1], n + p[2] end
  return n > 0 and -sum / n or nil
end

-- rows cut into mini_batches parts, the parts repeated for each of update_epochs
-- passes: one optimizer step a part.
local function passes(rows, r)
  local mini = {}
  local per = math.max(math.ceil(#rows / math.max(r.mini_batches, 1)), 1)
  for i = 1, #rows, per do
    local part = {}
    for j = i, math.min(i + per - 1, #rows) do part[#part + 1] = rows[j] end
    mini[#mini + 1] = part
  end
  local out = {}
  for _ = 1, math.max(r.update_epochs, 1) do
    for _, part in ipairs(mini) do out[#out + 1] = part end
  end
  return out
end

-- The optimizer steps of a step over rows. A loss or a gradient that is
-- not finite skips the rest (said on stderr, the weights untouched).
-- Returns { loss, clip_frac, approx_kl, kl, tokens, grad_norm, skipped,
-- optimizer_steps, update_tokens }.
function M.methods.optimize(self, rows, step)
  local r = self.recipe
  local out = { loss = 0, clip_frac = 0, approx_kl = 0, tokens = 0, grad_norm = 0, optimizer_steps = 0,
                update_tokens = 0 }
  for _, row in ipairs(rows) do out.update_tokens = out.update_tokens + #row.completion end
  if #rows == 0 then return out end
  for _, part in ipairs(passes(rows, r)) do
    local upd = self:update(part)
    for _, k in ipairs({ 'loss', 'clip_frac', 'approx_kl', 'kl', 'tokens' }) do out[k] = upd[k] end
    out.old_gap_mean = out.old_gap_mean or upd.old_gap_mean   -- (the first pass's: the sampler's weights)
    out.old_gap_max = out.old_gap_max or upd.old_gap_max
    local ok, norm = true, nil
    if not upd.nonfinite then
      local clip = r.optim.clip_grad
      ok, norm = pcall(function()
        if clip then return empo.clip_grad_norm(self.params, clip) end
        return empo.grad_norm(self.params, true)
      end)
    end
    if upd.nonfinite or not ok or norm ~= norm then     -- NaN / inf: skip the step, keep the weights
      io.stderr:write(format('empo: step %d: the %s is not finite; the update is skipped\n', step,
                             upd.nonfinite and 'loss' or 'gradient'))
      self.opt:zero_grad()
      out.grad_norm, out.skipped = nil, true
      return out
    end
    out.grad_norm = norm
    self.opt:step()
    mixed.refresh(self.model)                   -- (the bf16 copies the next pass and the sampler read)
    self.opt:zero_grad()
    out.optimizer_steps = out.optimizer_steps + 1
  end
  return out
end

return M
