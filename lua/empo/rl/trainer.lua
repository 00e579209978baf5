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
-- Recipe fields: empo.rl.recipe (SCHEMA: each field's default and what it
-- may hold) and docs/recipes.md.
--
-- This module is the loop, read top to bottom in Trainer:step; each part
-- is its own module, whose functions are the trainer's methods:
--   empo.rl.recipe, empo.rl.preflight   the settings and inputs, checked before any work
--   empo.rl.rollout                     sampling and scoring a step's groups (dynamic sampling)
--   empo.rl.update                      the update's rows, micro-batches, loss passes, optimizer steps
--   empo.rl.metrics                     the step's record (and the gold answers' view of it)
--   empo.rl.run_files, empo.run.rundir  the run directory: metrics, samples, checkpoints, resume
--   empo.rl.guard                       the collapse guard
--   empo.rl.data_parallel               several processes (mpirun): shards, gathers, the gradients' sum
--   empo.rl.live, empo.rl.attach_server changes between steps (`empo attach`), recorded and replayed
local empo = require 'empo'
local recipe_mod = require 'empo.rl.recipe'
local preflight = require 'empo.rl.preflight'
local rundir = require 'empo.run.rundir'
local guard_mod = require 'empo.rl.guard'
local rollout = require 'empo.rl.rollout'
local update = require 'empo.rl.update'
local memory = require 'empo.rl.memory'
local metrics = require 'empo.rl.metrics'
local run_files = require 'empo.rl.run_files'
local lora = require 'empo.nn.lora'
local mixed = require 'empo.nn.mixed'
local data_parallel = require 'empo.rl.data_parallel'
local live = require 'empo.rl.live'
local attach_server = require 'empo.rl.attach_server'
local dist = require 'empo.run.dist'
local clock = require('empo.run.log').clock

local type, error, format, pairs, ipairs, tostring = type, error, string.format, pairs, ipairs, tostring

local M = {}

local Trainer = {}
Trainer.__index = Trainer
for _, part in ipairs({ rollout, update, run_files, data_parallel, live }) do   -- the rooms' methods are the trainer's
  for k, f in pairs(part.methods) do Trainer[k] = f end
end

-- t.history, the step records: a plain list that prints as a summary (the
-- REPL echoes what t:run() returns)
local History = { __tostring = function(h) return string.format('%d step records (t.history[i])', #h) end }

-- The recipe's LoRA settings (empo.nn.lora), or nil for full fine-tuning.
local function lora_settings(r)
  if r.lora == false then return nil end
  return r.lora == true and {} or r.lora
end

-- true when the settings name an adapter directory and nothing else (its
-- adapter_config.json then says rank, alpha and targets)
local function only_from(lo)
  if lo.from == nil then return false end
  for k in pairs(lo) do if k ~= 'from' then return false end end
  return true
end

-- The policy: the model directory's (in bf16 under LoRA: the frozen base),
-- with the recipe's adapters on it (a lora.from directory's, when given).
local function load_model(r)
  local lo = lora_settings(r)
  local m = r.model
  if type(m) == 'string' then
    local ok, loaded = pcall(empo.models.from_pretrained, m, { dtype = lo and 'bf16' or 'f32' })
    if not ok then error(format('model=%s: %s', m, tostring(loaded)), 0) end
    m = loaded
  end
  if lo then
    local ok, err = pcall(function()
      if not only_from(lo) then lora.apply(m, lo) end
      if lo.from then lora.load(m, lo.from) end   -- (the adapter's settings; checked against any given)
    end)
    if not ok then error('lora: ' .. tostring(err):gsub('^lora: ', ''), 0) end
    m.lora.base = type(r.model) == 'string' and r.model or nil
  end
  if r.device ~= 'cpu' then m:to(r.device) end   -- (before the optimizer: its moments are made beside the weights)
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
  self.dp = data_parallel.setup(r)
  self.is_main = not self.dp or self.dp.rank == 0
  if r.name ~= '' then self:claim_run_dir() end
  self.plan = self:memory_plan()                                 -- (refuses a run that cannot fit)
  if r.tf32 == true or r.tf32 == 'auto' and r.precision == 'bf16' then self:allow_tf32() end
  if M.before_model_load then M.before_model_load(self) end     -- (a hook for the tests)
  self.model = load_model(r)
  if r.precision == 'bf16' then mixed.attach(self.model) end   -- (the bf16 copies the products and the sampler read)
  self.params = lora.has(self.model) and lora.parameters(self.model) or self.model:parameters()
  if r.loss.options.kl > 0 then self.reference = self:frozen_copy() end
  local o = r.optim
  self.opt = empo.optim.adamw{ params = self.params, lr = o.lr, weight_decay = o.weight_decay, betas = o.betas }
  self:rebuild_schedule()
  if r.guard.on then
    -- (its snapshots' directory; each rank keeps its own: the ranks' weights are equal)
    local dir = self.run_path and self.run_path .. '/guard' .. (self.is_main and '' or '/rank-' .. self.dp.rank)
    self.guard = guard_mod.new(r.guard, dir)
    -- the starting model, kept to score how far the samples drift from it (before a resume loads newer weights)
    if r.guard.drift > 0 then self.guard_base = self.reference or self:frozen_copy() end
  end
  if r.resume then
    self:resume()
    self:load_changes()                                          -- (the changes an attached client made: replayed)
  end
  if self.guard then
    self.guard:adopt(self.step_count)                            -- a resumed run's earlier snapshots
    self.guard:take_snapshot(self)                               -- the state the run starts from
  end
  return self
end
-- The run directory: claimed by rank 0 (empo.run.rundir: the lock, an
-- overwrite); the other ranks read it (a resume) once it is.
function Trainer:claim_run_dir()
  local r = self.recipe
  if self.is_main then
    local ok, err = pcall(function()
      self.rundir = rundir.open{ out = r.out, name = r.name, resume = r.resume, overwrite = r.overwrite }
    end)
    if self.dp then dist.broadcast(ok and self.rundir.path or false) end
    if not ok then error(err, 0) end
    r.name, self.run_path = self.rundir.name, self.rundir.path
  else
    self.run_path = dist.broadcast(nil)
    if not self.run_path then error('the run directory could not be claimed (rank 0 says why)', 0) end
  end
end

-- The learning rate of each step (recipe.optim's schedule; made again
-- when a field it reads changes during the run: empo.rl.live).
function Trainer:rebuild_schedule()
  self.lr_at = make_schedule(self.recipe.optim, self.recipe.steps)
end

-- The memory plan (empo.rl.memory) of this run, applied to the runtime
-- (the allocator's cache and the collector: Trainer:close puts them back).
function Trainer:memory_plan()
  local r = self.recipe
  local frozen, why = nil, nil
  local kl, drift = r.loss.options.kl > 0, r.guard.on and r.guard.drift > 0
  local lo = lora_settings(r)
  if lo and only_from(lo) then lo = lora.read_config(lo.from) end   -- (the adapter's rank)
  if (kl or drift) and not lo then                               -- (LoRA's reference is its base: no copy)
    frozen = r.frozen_dtype
    why = kl and drift and 'KL reference, guard drift' or kl and 'KL reference' or 'guard drift'
  end
  local plan = memory.plan(r, self.model_config, { prompt_tokens = preflight.longest_prompt(r, self.tok, self.data),
                                                   frozen = frozen, frozen_why = why,
                                                   lora = lo and lora.settings(lo) })
  self.restore_runtime = memory.apply(plan)
  return plan
end

-- tf32=true (or 'auto' with precision='bf16'): the GPU's f32 products in
-- TF32 for this run; the setting before it comes back when the trainer
-- closes (with the memory plan's).
function Trainer:allow_tf32()
  local before, restore = empo.cuda_allow_tf32(true), self.restore_runtime
  self.restore_runtime = function()
    empo.cuda_allow_tf32(before)
    if restore then restore() end
  end
end

-- Every matrix of module m stored in bf16 (norm weights stay f32: the
-- layers widen a bf16 matrix for each product, empo.nn.layers).
local function matrices_to_bf16(m, done)
  for _, n in ipairs(m._param_names) do
    local t = m[n]
    if t:dim() == 2 then
      done[t] = done[t] or t:detach():to('bf16')   -- a tied weight stays one tensor
      m[n] = done[t]
    end
  end
  for _, c in ipairs(m._child_names) do matrices_to_bf16(m[c], done) end
end

-- The policy's weights as they are now, in a model of their own that no
-- update touches: the reference of the KL term (kl > 0) and the collapse
-- guard's drift scorer share it. recipe.frozen_dtype 'bf16' (the default)
-- keeps its matrices in bf16, half the memory of f32 (docs/results.md
-- measures what that changes in the log-probs it gives).
function Trainer:frozen_copy()
  if lora.has(self.model) then return lora.base_view(self.model) end   -- the base, adapters off: no copy
  local ref = empo.models.new(self.model.config, 0)
  local weights = {}
  for _, p in ipairs(self.model:named_parameters()) do weights[p.name] = p.tensor:detach() end
  if self.recipe.device ~= 'cpu' then ref:to(self.recipe.device) end
  ref:load_state(weights, { source = 'the policy' })
  if self.recipe.frozen_dtype == 'bf16' then matrices_to_bf16(ref, {}) end
  for _, p in ipairs(ref:parameters()) do p:requires_grad_(false) end
  empo.collect()
  empo.empty_cache()                          -- the f32 matrices just replaced go back to the system
  return ref
end

-- One training step: sample and score the step's groups, update the
-- policy on the kept ones, record what happened. Returns the record (also
-- in self.history; self.last holds the groups and rows).
function Trainer:step()
  local r = self.recipe
  self.step_count = self.step_count + 1
  local step, t0 = self.step_count, clock()
  self.comm_seconds = 0                             -- (time in collectives: empo.rl.data_parallel)
  mixed.refresh(self.model)                         -- (weights a resume or a rollback loaded)
  self:between_phases()
  local groups, stats, kept, rounds = self:sample_step(step)
  self:between_phases()
  local t_sample = clock()
  local rows = update.rows(groups, r.mask_truncated)
  local base_nll = self.guard_base and #rows > 0 and self:base_nll(rows) or nil
  self.opt.lr = self.lr_at(step) * (self.guard and self.guard.lr_scale or 1)
  local opt = self:optimize(rows, step)
  local rec = metrics.record({ step = step, groups = groups, stats = stats, kept = kept, rounds = rounds, opt = opt,
                               base_nll = base_nll, lr = self.opt.lr, t0 = t0, t_sample = t_sample,
                               t_update = clock(), quiet = not self.is_main,
                               seconds_comm = self.dp and self.comm_seconds or nil }, r)
  if self.guard then self:watch(rec) end
  if self.change_notes and #self.change_notes > 0 then rec.changes, self.change_notes = self.change_notes, nil end
  self.last = { groups = groups, rows = rows, record = rec }
  self.history[#self.history + 1] = rec
  self:check_lockstep(step)
  if type(r.log) == 'function' then r.log(rec, self) end
  return rec
end

-- Sampling and the update allocate tensors of different sizes: when the
-- memory plan cannot hold both phases' blocks at once, what one phase left
-- in the allocator's cache goes back to the system before the other
-- (empo.rl.memory). When it can, they stay: giving them back each step
-- made the arith job fault its buffers in again every phase (17% of its
-- CPU time in the kernel).
function Trainer:between_phases()
  local p = self.plan
  if not p or p.fixed + p.update + p.sampling <= p.budget then return end
  empo.collect()
  empo.empty_cache()
end

-- What the gold answers say of a step's groups (empo.rl.metrics.gold).
function Trainer:gold_metrics(groups) return metrics.gold(groups, self.recipe.cluster) end

-- The collapse guard's verdict on a step (empo.rl.guard): a rollback
-- restores the last good snapshot and lowers the learning rate; a stop
-- ends the run (Trainer:run) at the snapshot. Both are said and logged.
function Trainer:watch(rec)
  local act = self.guard:observe(self, rec)
  if not act then return end
  local function say(...)                          -- (under mpirun rank 0 says it; above a progress line)
    if self.is_main then empo.logger.say((format(...):gsub('\n$', ''))) end
  end
  if act.action == 'watch' then
    say('empo: step %d: collapse guard (watching only): %s\n', rec.step, act.reason)
  elseif act.action == 'rollback' then
    say('empo: step %d: collapse guard: %s; rolled back to step %d, learning rate x%.3g\n',
        rec.step, act.reason, act.to_step, act.lr_scale)
  else
    self.guard_stop = act
    say('empo: step %d: collapse guard: %s; the run stops with the weights of step %d\n', rec.step, act.reason, act.to_step)
  end
  rec.guard_reason, rec.guard_to_step = act.reason, act.to_step
end
-- The remaining steps of the recipe, with a progress line; returns the
-- records. SIGINT or SIGTERM ends the run after the step in progress
-- (Trainer:stop_for); an error inside a step may leave its update half
-- done, so resume=true continues from the last checkpoint (save_every).
function Trainer:run()
  self:open_run()
  if not self.plan_said and self.is_main then      -- the plan, once, before the first step
    io.stderr:write(memory.describe(self.plan), '\n')
    self.plan_said = true
  end
  self.stopped = nil
  local bar = empo.logger.progress{ total = self.recipe.steps, every = 1, quiet = not self.is_main,
                                 keys = { 'reward', 'entropy', 'kept', 'clip', 'tok/s' } }
  if self.is_main and self.run_path and self.recipe.attach.on and not self.attach then
    self.attach = attach_server.open(self)          -- (`empo attach runs/<name>`: served between steps)
  end
  local ok, err = pcall(empo.stop.guard, function()
    local signal = nil
    while self.step_count < self.recipe.steps and not self.guard_stop do
      self:between_steps()                           -- (replayed changes; attached clients)
      signal = self:stop_requested()                 -- (every rank's: they stop after the same step)
      if signal or self.step_count >= self.recipe.steps then break end
      bar.total = self.recipe.steps
      local rec = self:step()
      local ee = self.recipe.eval_every
      if ee > 0 and self.recipe.eval and rec.step % ee == 0 then   -- in-run evaluation: test accuracy in the metrics
        local ev = self:eval()
        for _, k in ipairs({ 'greedy', 'avg', 'maj', 'pass' }) do rec['eval_' .. k] = ev[k] end
      end
      self:write_step(rec)
      bar:update(rec.step, { reward = rec.reward, entropy = rec.entropy, kept = rec.kept, clip = rec.clip_frac,
                             ['tok/s'] = rec.sample_tokens_per_s })
      local every = self.recipe.save_every
      if self.run_dir and every > 0 and (rec.step % every == 0 or rec.step == self.recipe.steps) then
        self:checkpoint()
      end
    end
    bar:finish()
    signal = signal or self:stop_requested()
    if signal then self:stop_for(signal) end
  end)
  if self.attach then
    self.attach:close(not ok and 'the run failed: ' .. tostring(err) or
                      self.stopped and 'the run stopped (' .. self.stopped .. ')' or 'the run ended')
  end
  self.attach = nil
  if not ok then error(err, 0) end
  return self.history
end
-- Accuracy on a dataset with gold answers (empo.rl.eval), with the
-- recipe's prompt, extraction and clustering (recipe.grade's, when set:
-- a verifier that clusters for the reward need not be the grader).
function Trainer:eval(dataset, opts)
  local r = self.recipe
  opts = opts or {}
  local e = rollout.extract_fn(r)
  return require('empo.rl.eval').run(self.model, self.tok, dataset or self.recipe.eval, {
    prompt = r.prompt, k = opts.k or r.sample.n, temperature = r.sample.temperature, top_p = r.sample.top_p,
    top_k = r.sample.top_k, min_p = r.sample.min_p,
    max_new_tokens = r.sample.max_new_tokens, stop = r.sample.stop or (type(r.prompt) == 'table' and r.prompt.stop) or nil,
    extract = e or nil, cluster = r.grade or r.cluster, seed = r.seed, details = opts.details,
  })
end

function M.is_trainer(x) return getmetatable(x) == Trainer end

-- the recipe's parts, kept here too for those who reach them from the trainer
M.DEFAULTS, M.FIELDS = recipe_mod.DEFAULTS, recipe_mod.FIELDS
M.recipe, M.is_recipe, M.from = recipe_mod.recipe, recipe_mod.is_recipe, recipe_mod.from

return M
