-- empo.rl.trainer — the RL loop, owned by the library and configured by a
-- recipe: each step samples G completions for B unlabeled questions,
-- scores every group (answers, clusters, filter, rewards, advantages:
-- empo.rl.score), and updates the policy on the kept groups with the
-- recipe's loss (empo.loss) and AdamW. The same object drives `empo run
-- recipes/math.lua` and a REPL session:
--
--     t = empo.rl.trainer('recipes/math.lua', { steps = 5 })   -- or a recipe table
--     rec = t:step()              -- one step's record (reward, entropy, kept, clip_frac, ...)
--     t.last.groups[1]            -- the questions, completions, answers, ids, rewards, advantages
--     t.recipe.filter = empo.filter.confidence{ low = 0.4 }     -- takes effect at the next step
--     t:run()                     -- the remaining steps
--
-- Recipe fields (a plain table; the defaults and the checks of overrides
-- are empo.rl.recipe's): model (a Hugging Face
-- directory or a model object), tokenizer (default: the model directory's),
-- data (a dataset, empo.data, or a JSONL path), prompt (a template or
-- function), sample { n, temperature, top_p, top_k, max_new_tokens, stop,
-- bf16_weights },
-- extract (options of empo.cluster.extract, or a function), cluster, filter,
-- reward, advantage, loss, optim { lr, weight_decay, betas, clip_grad,
-- schedule = 'constant' | 'cosine' | 'linear', warmup, min_lr },
-- prompts_per_step, steps, epochs (passes over a batch), mini_batches
-- (optimizer steps per pass), mask_truncated, micro_batch_tokens,
-- dynamic_sampling (max extra sampling rounds to fill the batch with kept
-- groups; 0 = off), recompute_old, shared_prompt (the update runs each
-- prompt once per group: true, false or 'auto'), seed, eval_every (test accuracy every k
-- steps, in the metrics as eval_greedy / eval_avg / eval_maj / eval_pass),
-- guard (the collapse guard, empo.rl.guard), log (a function of each record).
-- This module is the loop; the objective, the log-probs, the scoring and
-- the data are their own modules.
local empo = require 'empo'
local rl = require 'empo.rl'
local logprob = require 'empo.rl.logprob'
local recipe_mod = require 'empo.rl.recipe'
local preflight = require 'empo.rl.preflight'
local rundir = require 'empo.run.rundir'
local guard_mod = require 'empo.rl.guard'
local contract = require 'empo.rl.contract'
local clock = require('empo.run.log').clock

local type, error, format, pairs, ipairs, tostring = type, error, string.format, pairs, ipairs, tostring

local M = {}

local Trainer = {}
Trainer.__index = Trainer

-- t.history, the step records: a plain list that prints as a summary (the
-- REPL echoes what t:run() returns)
local History = { __tostring = function(h) return string.format('%d step records (t.history[i])', #h) end }

local function load_model(r)
  if type(r.model) ~= 'string' then return r.model end
  local ok, m = pcall(empo.models.from_pretrained, r.model)
  if not ok then error(format('model=%s: %s', r.model, tostring(m)), 0) end
  return m
end

local function make_schedule(o, steps)
  local s = o.schedule
  if type(s) == 'function' then return s end
  if s == 'constant' then return empo.train.schedule.constant(o.lr) end
  return empo.train.schedule[s]{ lr = o.lr, warmup = o.warmup, total = steps, min_lr = o.min_lr }
end

-- The recipe resolved and every input checked (empo.rl.recipe,
-- empo.rl.preflight), the run directory claimed (empo.run.rundir), and
-- only then the model loaded: a run that cannot work never loads it.
function M.new(recipe, overrides, source)
  local raw
  raw, source = recipe_mod.load(recipe, source)
  local r = recipe_mod.resolve(raw, overrides, source)
  local self = setmetatable({ recipe = r, source = source, step_count = 0, history = setmetatable({}, History) }, Trainer)
  self.data, r.eval, self.tok, self.model_config = preflight.check(r)
  if r.name ~= '' then
    local o = { out = r.out, name = r.name, resume = r.resume, overwrite = r.overwrite }
    self.rundir = rundir.open(o)
    rundir.announce(self.rundir, o)
    r.name = self.rundir.name
  end
  if M.before_model_load then M.before_model_load(self) end     -- (a hook for the tests)
  self.model = load_model(r)
  self.params = self.model:parameters()
  if r.loss.options.kl > 0 then self.reference = self:frozen_copy() end
  local o = r.optim
  self.opt = empo.optim.adamw{ params = self.params, lr = o.lr, weight_decay = o.weight_decay, betas = o.betas }
  self.lr_at = make_schedule(o, r.steps)
  if r.guard.on then
    self.guard = guard_mod.new(r.guard)
    -- the starting model, kept to score how far the samples drift from it (before a resume loads newer weights)
    if r.guard.drift > 0 then self.guard_base = self.reference or self:frozen_copy() end
  end
  if r.resume then self:resume() end
  if self.guard then self.guard:take_snapshot(self) end          -- the state the run starts from
  return self
end

-- The policy's weights as they are now, in a model of their own that no
-- update touches: the reference of the KL term (loaded only when kl > 0).
function Trainer:frozen_copy()
  local ref = empo.models.new(self.model.config, 0)
  local weights = {}
  for _, p in ipairs(self.model:named_parameters()) do weights[p.name] = p.tensor:detach():clone() end
  ref:load_state(weights, { source = 'the policy' })
  for _, p in ipairs(ref:parameters()) do p:requires_grad_(false) end
  return ref
end

-- ---- checkpoints ----

-- The first parameter that holds a NaN or an infinity, or nil.
function Trainer:nonfinite_parameter()
  for _, p in ipairs(self.model:named_parameters()) do
    local s = empo.no_grad(function() return p.tensor:sum():item() end)
    if s ~= s or s == math.huge or s == -math.huge then return p.name end
  end
end

-- The model directory's tokenizer files, copied into each checkpoint and
-- the saved model so that each is a usable model directory.
function Trainer:tokenizer_files()
  local from = type(self.recipe.tokenizer) == 'string' and self.recipe.tokenizer or
               (type(self.recipe.model) == 'string' and self.recipe.model) or nil
  local files = {}
  if from then
    if not empo.fs.is_dir(from) then return { from } end           -- a tokenizer.json path
    for _, f in ipairs({ 'tokenizer.json', 'tokenizer_config.json' }) do
      if empo.fs.exists(from .. '/' .. f) then files[#files + 1] = from .. '/' .. f end
    end
  end
  return files
end

-- runs/<name>/checkpoint-<step>/: the model (Hugging Face layout, with the
-- tokenizer), AdamW's moments, the data position and the step
-- (empo.train's checkpoints: a kill at any moment leaves the previous one
-- intact). Weights with a NaN or an infinity are never saved: the last
-- good checkpoint stays `latest`, and the error says what likely caused it.
function Trainer:checkpoint()
  local dir = self:open_run()
  if not dir then error('checkpoints need a run name (recipe field name)', 2) end
  local bad = self:nonfinite_parameter()
  if bad then
    local latest = empo.fs.read_text(dir .. '/latest')
    error(format('after step %d the weights are not finite (%s holds a NaN or an infinity), so no checkpoint was ' ..
                 'written; %s. A learning rate too high for this model (optim.lr=%g) is the usual cause: lower it, ' ..
                 'or turn on the collapse guard (guard.on=true)', self.step_count, bad,
                 latest and ('the last good one, ' .. dir .. '/' .. latest:gsub('%s+$', '') .. ', stays latest')
                 or 'no earlier checkpoint exists', self.recipe.optim.lr), 0)
  end
  self.saved_step = self.step_count
  return empo.train.save_checkpoint(dir, { model = self.model, optimizer = self.opt, step = self.step_count,
                                           extra = { data = self.data:state(), guard = self.guard and self.guard:state() },
                                           keep = self.recipe.keep, files = self:tokenizer_files() })
end

-- Continues from the newest checkpoint of the run directory: the steps
-- after it run again with the same samples (every seed derives from the
-- step), so the metrics match an uninterrupted run's; lines of
-- metrics.jsonl and samples.jsonl past the checkpoint (written before a
-- kill) are dropped, a torn last line too (and said).
function Trainer:resume()
  local dir = self.rundir.path
  local ok, state = pcall(empo.train.load_checkpoint, dir, { model = self.model, optimizer = self.opt })
  if not ok then error('resume: ' .. tostring(state), 0) end
  local step = state and state.step or 0                       -- nothing saved yet: a fresh start
  for _, f in ipairs({ 'metrics.jsonl', 'samples.jsonl' }) do
    local kept = self.rundir:trim(f, step)
    if f == 'metrics.jsonl' then for _, rec in ipairs(kept) do self.history[#self.history + 1] = rec end end
  end
  if not state then return nil end
  self.step_count = state.step
  self.data:load_state(state.extra.data)
  if self.guard and state.extra.guard then self.guard:load_state(state.extra.guard) end
  return state
end

-- ---- one step ----

local prompt_text = preflight.prompt_text

local function extract_fn(r)
  local e = r.extract
  if e == false then return false end
  if type(e) == 'function' then return e end
  return function(text) return (empo.cluster.extract(text, e)) end
end

-- Mean token entropy and self-certainty of every sampled completion, for
-- the rewards that read them (neg_entropy, self_certainty): the sampler
-- computes them per token in C from the logits of each draw, at the
-- sampling temperature, before truncation (empo_sample_token_stats).
local function token_means(out)
  local ent, sc = {}, {}
  for j, c in ipairs(out) do
    local n, se, ss = #c.entropy, 0, 0
    for t = 1, n do se, ss = se + c.entropy[t], ss + c.self_certainty[t] end
    ent[j], sc[j] = se / math.max(n, 1), ss / math.max(n, 1)
  end
  return { entropy = ent, self_certainty = sc }
end

-- Samples and scores `questions`; returns the groups (one per question).
function Trainer:rollout(questions, step)
  local r = self.recipe
  local prompts = {}
  for i, q in ipairs(questions) do prompts[i] = prompt_text(r, q.question) end
  local s = r.sample
  local stop = s.stop or (type(r.prompt) == 'table' and r.prompt.stop) or nil
  local needs_tokens = require('empo.rl.reward').needs_tokens(r.reward)
  local ok, out = pcall(empo.sample.generate, self.model, self.tok, prompts, {
    n = s.n, temperature = s.temperature, top_p = s.top_p, top_k = s.top_k, min_p = s.min_p,
    max_new_tokens = s.max_new_tokens,
    stop = stop, seed = r.seed * 1000003 + step, token_stats = needs_tokens, bf16_weights = s.bf16_weights,
  })
  if not ok then
    local msg = tostring(out):gsub('^[^\n]-%.lua:%d+: ', '')
    if msg:find('NaN', 1, true) then
      local bad = self:nonfinite_parameter()
      msg = format('step %d: sampling met a NaN: %s. %s', step, msg, bad and
        format('The weights are not finite (%s): a learning rate too high (optim.lr=%g) is the usual cause; ' ..
               'resume=true continues from the last good checkpoint', bad, r.optim.lr) or
        'The weights are finite: the inputs or a custom piece produced it')
    end
    error(msg, 0)
  end
  local groups, extract = {}, extract_fn(r)
  local prompt_ids = {}
  for i = 1, #questions do prompt_ids[i] = self.tok:encode(prompts[i]) end
  local tokens = needs_tokens and token_means(out) or nil
  for i, q in ipairs(questions) do
    local texts, samples = {}, {}
    for k = 1, s.n do
      local c = out[(i - 1) * s.n + k]
      texts[k], samples[k] = c.text, c
    end
    local per = nil
    if tokens then
      per = { entropy = {}, self_certainty = {} }
      for k = 1, s.n do
        local j = (i - 1) * s.n + k
        per.entropy[k], per.self_certainty[k] = tokens.entropy[j], tokens.self_certainty[j]
      end
    end
    local g = rl.score(texts, { question = q.question, gold = q.answer, extract = extract, cluster = r.cluster,
                                filter = r.filter, reward = r.reward, advantage = r.advantage, empty = r.empty,
                                tokens = per })
    g.prompt_ids, g.samples, g.index = prompt_ids[i], samples, q.index
    groups[i] = g
  end
  return groups, out.stats or {}
end

local function mean_std(xs)
  local n, s = #xs, 0
  if n == 0 then return 0, 0 end
  for _, x in ipairs(xs) do s = s + x end
  local m, v = s / n, 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / math.max(n - 1, 1))
end

-- The rows of the update: every completion of the kept groups.
-- (mask_truncated: completions cut at max_new_tokens are left out)
local function update_rows(groups, mask_truncated)
  local rows = {}
  for _, g in ipairs(groups) do
    if g.keep then
      for k, c in ipairs(g.samples) do
        if #c.ids > 0 and not (mask_truncated and c.finish == 'length') then
          rows[#rows + 1] = { prompt = g.prompt_ids, completion = c.ids, old = c.logprobs, adv = g.advantages[k] }
        end
      end
    end
  end
  return rows
end

-- [S, T] tensors of one micro-batch's old log-probs and advantages [S].
local function old_and_adv(rows, idx, T)
  local old, adv = {}, {}
  for k, i in ipairs(idx) do
    local row = {}
    for t = 1, T do row[t] = rows[i].old[t] or 0 end
    old[k], adv[k] = row, rows[i].adv
  end
  return empo.tensor(old), empo.tensor(adv)
end

-- The rows of each micro-batch of an update (lists of rows), and whether
-- they run with shared prompts (recipe field shared_prompt).
function Trainer:micro_batches(rows, model)
  local shared = logprob.use_shared(model or self.model, rows, self.recipe.shared_prompt)
  local out = {}
  for b, idx in ipairs(logprob.micro_batches(rows, self.recipe.micro_batch_tokens, shared)) do
    local sub = {}
    for k, i in ipairs(idx) do sub[k] = rows[i] end
    out[b] = { idx = idx, rows = sub }
  end
  return out, shared
end

-- One pass of the policy update over rows; returns its loss statistics.
function Trainer:update(rows)
  local r = self.recipe
  local temperature = r.sample.temperature > 0 and r.sample.temperature or 1.0
  local truncated = r.sample.top_p < 1 or r.sample.top_k > 0 or r.sample.min_p > 0 or
                    r.sample.temperature == 0
  -- bf16 sampling weights: the sampler's log-probs are of the rounded
  -- model, so the ratio's old side is recomputed here, in f32
  local rounded = r.sample.bf16_weights
  local total_tokens, S = 0, #rows
  for _, row in ipairs(rows) do total_tokens = total_tokens + #row.completion end
  local agg = r.loss.options.agg
  local batches, shared = self:micro_batches(rows)
  local opts = { temperature = temperature, shared_prompt = shared }
  if r.recompute_old or truncated or rounded then   -- the sampler's log-probs are of another distribution
    for _, b in ipairs(batches) do
      local lp = empo.no_grad(logprob.completions, self.model, b.rows, opts).logp:tolist()
      for k, i in ipairs(b.idx) do rows[i].old = lp[k] end
    end
  end
  local sums = { clip_frac = 0, approx_kl = 0, kl = 0, loss = 0 }
  local with_kl = self.reference ~= nil
  local ref_opts = with_kl and { temperature = temperature, shared_prompt = shared and logprob.can_share(self.reference) }
  for _, b in ipairs(batches) do
    local lp = logprob.completions(self.model, b.rows, opts)
    local old, adv = old_and_adv(rows, b.idx, lp.logp:size(2))
    local ref = with_kl and empo.no_grad(logprob.completions, self.reference, b.rows, ref_opts).logp or nil
    local value, st = r.loss{ logp = lp.logp, old_logp = old, adv = adv, mask = lp.mask, entropy = lp.entropy,
                              ref_logp = ref }
    -- the micro-batches' share of the whole batch's aggregate
    local weight = agg == 'token-mean' and st.tokens / math.max(total_tokens, 1) or #b.idx / S
    local v = value:item()
    if v ~= v or v == math.huge or v == -math.huge then      -- the whole update is dropped (Trainer:step)
      return { nonfinite = true, tokens = total_tokens, clip_frac = 0, approx_kl = 0 }
    end
    local scaled = value * weight
    scaled:backward()
    sums.loss = sums.loss + v * weight
    sums.clip_frac = sums.clip_frac + st.clip_frac * st.tokens
    sums.approx_kl = sums.approx_kl + st.approx_kl * st.tokens
    if with_kl then sums.kl = sums.kl + st.kl * st.tokens end
  end
  local n = math.max(total_tokens, 1)
  return { loss = sums.loss, clip_frac = sums.clip_frac / n, approx_kl = sums.approx_kl / n, tokens = total_tokens,
           kl = with_kl and sums.kl / n or nil, shared_prompt = shared }
end

-- The mean negative log-prob a token of the update's completions under
-- the starting model (the collapse guard's drift signal), at temperature 1,
-- over at most guard.drift_rows of them (evenly spaced: a mean needs no more).
function Trainer:base_nll(all)
  local rows, keep = {}, self.recipe.guard.drift_rows
  local stride = keep > 0 and math.max(1, #all / keep) or 1
  for i = 1, #all, stride do rows[#rows + 1] = all[math.floor(i)] end
  local sum, n = 0, 0
  local batches, shared = self:micro_batches(rows, self.guard_base)
  for _, b in ipairs(batches) do
    local lp = empo.no_grad(logprob.completions, self.guard_base, b.rows, { temperature = 1.0, shared_prompt = shared })
    sum = sum + (lp.logp * lp.mask):sum():item()
    n = n + lp.mask:sum():item()
  end
  return n > 0 and -sum / n or nil
end

-- What the gold answers, when the data carry them, say of the step (for
-- metrics only: no reward sees them unless the recipe asks): how often the
-- largest cluster's answer is right (majority_correct), and the share of
-- positive-advantage completions whose answer is right (positive_correct).
function Trainer:gold_metrics(groups)
  local r = self.recipe
  local equal = r.cluster or empo.cluster.math
  if type(equal) == 'table' and equal.equal then equal = equal.equal end
  equal = contract.boolean_fn('cluster rule', equal)
  local groups_gold, majority_right, positive, positive_right = 0, 0, 0, 0
  for _, g in ipairs(groups) do
    if g.gold ~= nil then
      groups_gold = groups_gold + 1
      local size, best = {}, 0
      for i = 1, g.G do
        local id = g.ids[i]
        if id > 0 then
          size[id] = (size[id] or 0) + 1
          if size[id] > (size[best] or 0) then best = id end
        end
      end
      local right = {}
      for i = 1, g.G do right[i] = g.answers[i] ~= '' and equal(g.answers[i], g.gold, g.question) and true or false end
      for i = 1, g.G do
        if g.ids[i] == best and best > 0 then
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

-- One training step: returns its record (also in self.history).
function Trainer:step()
  local r = self.recipe
  self.step_count = self.step_count + 1
  local step, t0 = self.step_count, clock()
  local groups, stats = self:rollout(self.data:take(r.prompts_per_step), step)
  local rounds = 0
  local kept = 0
  for _, g in ipairs(groups) do if g.keep then kept = kept + 1 end end
  while kept < r.prompts_per_step and rounds < r.dynamic_sampling do   -- dynamic sampling: refill the batch
    rounds = rounds + 1
    local more = self:rollout(self.data:take(r.prompts_per_step - kept), step * 1000 + rounds)
    for _, g in ipairs(more) do
      groups[#groups + 1] = g
      if g.keep then kept = kept + 1 end
    end
  end
  local t_sample = clock()
  local rows = update_rows(groups, r.mask_truncated)
  local base_nll = self.guard_base and #rows > 0 and self:base_nll(rows) or nil
  local upd = { loss = 0, clip_frac = 0, approx_kl = 0, tokens = 0 }
  local grad_norm, skipped = 0, nil
  self.opt.lr = self.lr_at(step) * (self.guard and self.guard.lr_scale or 1)
  -- epochs passes over the rows, each in mini_batches optimizer steps
  local mini = {}
  local per = math.ceil(#rows / math.max(r.mini_batches, 1))
  for i = 1, #rows, math.max(per, 1) do
    local part = {}
    for j = i, math.min(i + per - 1, #rows) do part[#part + 1] = rows[j] end
    mini[#mini + 1] = part
  end
  local passes = {}
  for _ = 1, math.max(r.epochs, 1) do
    for _, part in ipairs(mini) do passes[#passes + 1] = part end
  end
  local update_tokens, optimizer_steps = 0, 0
  for _, row in ipairs(rows) do update_tokens = update_tokens + #row.completion end
  if #rows > 0 then
    for _, part in ipairs(passes) do
      upd = self:update(part)
      if upd.nonfinite then                           -- a NaN / inf loss: skip the step, keep the weights
        io.stderr:write(format('empo: step %d: the loss is not finite; the update is skipped\n', step))
        self.opt:zero_grad()
        grad_norm, skipped = nil, true
        break
      end
      local clip = r.optim.clip_grad
      local ok, norm = pcall(function()
        if clip and clip > 0 then return empo.clip_grad_norm(self.params, clip) end
        return empo.grad_norm(self.params, true)
      end)
      if not ok or norm ~= norm then                    -- NaN / Inf: skip the step, keep the weights
        io.stderr:write(format('empo: step %d: the gradient is not finite; the update is skipped\n', step))
        self.opt:zero_grad()
        grad_norm, skipped = nil, true
        break
      end
      grad_norm = norm
      self.opt:step()
      self.opt:zero_grad()
      optimizer_steps = optimizer_steps + 1
    end
  end
  local t_update = clock()
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
  local total = #groups * r.sample.n
  local gold = self:gold_metrics(groups)
  local rec = {
    step = step, reward = reward_mean, reward_std = reward_std, entropy = (mean_std(entropies)),
    kept = kept / math.max(#groups, 1), groups = #groups, rounds = rounds, clusters = clusters / math.max(#groups, 1),
    answer_rate = answered / math.max(total, 1), loss = upd.loss, clip_frac = upd.clip_frac, approx_kl = upd.approx_kl,
    grad_norm = grad_norm, skipped = skipped, lr = self.opt.lr, update_tokens = update_tokens,
    optimizer_steps = optimizer_steps, kl = upd.kl,
    sample_tokens_per_s = stats.tokens_per_s, seconds_sample = t_sample - t0, seconds_update = t_update - t_sample,
    response_length = tokens / math.max(total, 1), truncated = truncated / math.max(total, 1),
    low_entropy = low_entropy / math.max(#groups, 1), distinct_answers = distinct / math.max(#groups, 1),
    base_nll = base_nll,
  }
  for k, v in pairs(gold) do rec[k] = v end
  if gold.positive_correct and gold.positive_correct < 0.3 then
    io.stderr:write(format('empo: step %d: only %.0f%% of the positive-advantage completions are right: the reward ' ..
                           'may be reinforcing wrong majorities\n', step, 100 * gold.positive_correct))
  end
  if self.guard then self:watch(rec) end
  self.last = { groups = groups, rows = rows, record = rec }
  self.history[#self.history + 1] = rec
  if type(r.log) == 'function' then r.log(rec, self) end
  return rec
end

-- The collapse guard's verdict on a step (empo.rl.guard): a rollback
-- restores the last good snapshot and lowers the learning rate; a stop
-- ends the run (Trainer:run) at the snapshot. Both are said and logged.
function Trainer:watch(rec)
  local act = self.guard:observe(self, rec)
  if not act then return end
  if act.action == 'watch' then
    io.stderr:write(format('empo: step %d: collapse guard (watching only): %s\n', rec.step, act.reason))
  elseif act.action == 'rollback' then
    io.stderr:write(format('empo: step %d: collapse guard: %s; rolled back to step %d, learning rate x%.3g\n',
                           rec.step, act.reason, act.to_step, act.lr_scale))
  else
    self.guard_stop = act
    io.stderr:write(format('empo: step %d: collapse guard: %s; the run stops with the weights of step %d\n',
                           rec.step, act.reason, act.to_step))
  end
  rec.guard_reason, rec.guard_to_step = act.reason, act.to_step
end

-- The recipe's plain settings (numbers, strings, booleans; pieces by name),
-- as the run directory keeps them.
local function plain(v, depth)
  local tv = type(v)
  if tv == 'number' or tv == 'string' or tv == 'boolean' then return v end
  if tv == 'table' and depth < 3 and not getmetatable(v) then
    local out = {}
    for k, x in pairs(v) do
      if type(k) == 'string' and k ~= 'model' and k ~= 'tokenizer' then out[k] = plain(x, depth + 1) end
    end
    return out
  end
  return tostring(v)
end

-- runs/<name>/ (claimed by M.new: empo.run.rundir): recipe.json now,
-- then metrics.jsonl every step and samples.jsonl every samples_every
-- steps (questions, completions, answers, cluster ids, rewards: enough to
-- re-score a run offline).
function Trainer:open_run()
  if not self.rundir then return nil end
  if self.run_dir then return self.run_dir end
  local r = self.recipe
  self.run_dir = self.rundir.path
  local settings = plain(r, 0)
  settings.model = type(r.model) == 'string' and r.model or tostring(r.model)
  local ok, err = empo.fs.write_atomic(self.run_dir .. '/recipe.json', empo.json.encode(settings))
  if not ok then error(err, 0) end
  self.metrics = empo.log.metrics(self.run_dir .. '/metrics.jsonl')
  self.samples = empo.log.metrics(self.run_dir .. '/samples.jsonl')
  return self.run_dir
end

-- Lets go of the run directory (its lock): the end of a run, or a REPL
-- session done with this trainer. Also happens when the process ends.
function Trainer:close()
  if self.metrics then self.metrics:close(); self.samples:close(); self.metrics, self.samples = nil, nil end
  if self.rundir then self.rundir:release() end
end

function Trainer:write_step(rec)
  if not self.metrics then return end
  self.metrics:write(rec)
  local every = self.recipe.samples_every
  if every > 0 and rec.step % every == 0 then
    for _, g in ipairs(self.last.groups) do
      self.samples:write{ step = rec.step, question = g.question, gold = g.gold, completions = g.completions,
                          answers = g.answers, ids = g.ids, rewards = g.rewards, advantages = g.advantages,
                          keep = g.keep }
    end
  end
end

-- After a stop signal: the step just finished is saved (when the run has
-- a name), so resume=true continues from it; self.stopped names the signal.
function Trainer:stop_for(signal)
  self.stopped = signal
  local where = 'no run name, so nothing was saved'
  if self.run_dir then
    local dir = self.saved_step == self.step_count and self.run_dir .. '/checkpoint-' .. self.step_count
                or self:checkpoint()
    where = 'checkpoint ' .. dir .. ' (a model directory: empo eval reads it); resume=true continues from it'
  end
  io.stderr:write(string.format('empo: stopped by %s after step %d: %s\n', signal, self.step_count, where))
end

-- The remaining steps of the recipe, with a progress line; returns the
-- records. SIGINT or SIGTERM ends the run after the step in progress
-- (Trainer:stop_for); an error inside a step may leave its update half
-- done, so resume=true continues from the last checkpoint (save_every).
function Trainer:run()
  self:open_run()
  self.stopped = nil
  local bar = empo.log.progress{ total = self.recipe.steps, every = 1,
                                 keys = { 'reward', 'entropy', 'kept', 'clip', 'tok/s' } }
  local every = self.recipe.save_every
  empo.stop.guard(function()
    while self.step_count < self.recipe.steps and not empo.stop.requested() and not self.guard_stop do
      local rec = self:step()
      local ee = self.recipe.eval_every
      if ee > 0 and self.recipe.eval and rec.step % ee == 0 then   -- in-run evaluation: test accuracy in the metrics
        local ev = self:eval()
        for _, k in ipairs({ 'greedy', 'avg', 'maj', 'pass' }) do rec['eval_' .. k] = ev[k] end
      end
      self:write_step(rec)
      bar:update(rec.step, { reward = rec.reward, entropy = rec.entropy, kept = rec.kept, clip = rec.clip_frac,
                             ['tok/s'] = rec.sample_tokens_per_s })
      if self.run_dir and every > 0 and (rec.step % every == 0 or rec.step == self.recipe.steps) then
        self:checkpoint()
      end
    end
    bar:finish()
    local signal = empo.stop.requested()
    if signal then self:stop_for(signal) end
  end)
  return self.history
end

-- Accuracy on a dataset with gold answers (empo.rl.eval), with the
-- recipe's prompt, extraction and clustering.
function Trainer:eval(dataset, opts)
  local r = self.recipe
  opts = opts or {}
  local e = extract_fn(r)
  return require('empo.rl.eval').run(self.model, self.tok, dataset or self.recipe.eval, {
    prompt = r.prompt, k = opts.k or r.sample.n, temperature = r.sample.temperature, top_p = r.sample.top_p,
    top_k = r.sample.top_k, min_p = r.sample.min_p,
    max_new_tokens = r.sample.max_new_tokens, stop = r.sample.stop or (type(r.prompt) == 'table' and r.prompt.stop) or nil,
    extract = e or nil, cluster = r.cluster, seed = r.seed, details = opts.details,
  })
end

-- Saves the model (Hugging Face layout) and tokenizer to dir (default
-- runs/<name>/model).
function Trainer:save(dir)
  dir = dir or ((self:open_run() or 'runs/trainer') .. '/model')
  empo.models.save_pretrained(self.model, dir)
  for _, f in ipairs(self:tokenizer_files()) do                  -- the tokenizer travels along
    local ok, err = empo.fs.write_atomic(dir .. '/' .. f:match('[^/]+$'), empo.fs.read_text(f))
    if not ok then error(err, 0) end
  end
  return dir
end

function M.is_trainer(x) return getmetatable(x) == Trainer end

-- the recipe's parts, kept here too for those who reach them from the trainer
M.DEFAULTS, M.FIELDS = recipe_mod.DEFAULTS, recipe_mod.FIELDS
M.recipe, M.is_recipe, M.from = recipe_mod.recipe, recipe_mod.is_recipe, recipe_mod.from

return M
