-- empo.rl.run_files — what a run keeps on disk, in its run directory
-- (claimed by empo.run.rundir): recipe.json, metrics.jsonl every step,
-- samples.jsonl every samples_every steps (questions, completions,
-- answers, cluster ids, rewards), every step's groups whole in rollouts/
-- (empo.rl.rollout_store: what `empo rescore` reads), checkpoints (model
-- with tokenizer, AdamW moments, data position, guard state: empo.train's,
-- which a kill at any moment leaves whole), resume
-- from the newest, the saved model, and what a stop signal leaves.
-- Methods of empo.rl.trainer (`self` is the trainer).
local empo = require 'empo'
local lora = require 'empo.nn.lora'
local rollout_store = require 'empo.rl.rollout_store'
local configurable = require 'empo.rl.configurable'

local type, error, format, pairs, ipairs, tostring, getmetatable = type, error, string.format, pairs, ipairs, tostring,
  getmetatable

local M = { methods = {} }   -- methods: the trainer's (self is the trainer)


-- What checkpoints save and load: the model, or under LoRA its adapters
-- (empo.nn.lora.adapters: the base never changes).
function M.methods.saved_model(self)
  if not lora.has(self.model) then return self.model end
  self.adapters = self.adapters or lora.adapters(self.model)
  return self.adapters
end

-- The first trained parameter that holds a NaN or an infinity, or nil.
function M.methods.nonfinite_parameter(self)
  for _, p in ipairs(self:saved_model():named_parameters()) do
    local s = empo.no_grad(function() return p.tensor:sum():item() end)
    if s ~= s or s == math.huge or s == -math.huge then return p.name end
  end
end

-- The model directory's tokenizer files, copied into each checkpoint and
-- the saved model so that each is a usable model directory.
function M.methods.tokenizer_files(self)
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
function M.methods.checkpoint(self)
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
  return empo.train.save_checkpoint(dir, { model = self:saved_model(), optimizer = self.opt, step = self.step_count,
                                           extra = { data = self.data:state(), guard = self.guard and self.guard:state() },
                                           keep = self.recipe.keep, files = self:tokenizer_files() })
end

-- Continues from the newest checkpoint of the run directory: the steps
-- after it run again with the same samples (every seed derives from the
-- step), so the metrics match an uninterrupted run's; lines of
-- metrics.jsonl and samples.jsonl past the checkpoint (written before a
-- kill) are dropped, a torn last line too (and said).
function M.methods.resume(self)
  local dir = self.run_path
  local ok, state = pcall(empo.train.load_checkpoint, dir, { model = self:saved_model(), optimizer = self.opt })
  if not ok then error('resume: ' .. tostring(state), 0) end
  local step = state and state.step or 0                       -- nothing saved yet: a fresh start
  self.resumed_from = step                                     -- (the rollout store drops the steps after it)
  for _, f in ipairs(self.rundir and { 'metrics.jsonl', 'samples.jsonl' } or {}) do   -- (rank 0's files)
    local kept = self.rundir:trim(f, step)
    if f == 'metrics.jsonl' then for _, rec in ipairs(kept) do self.history[#self.history + 1] = rec end end
  end
  if not state then return nil end
  self.step_count, self.resumed = state.step, true
  self.data:load_state(state.extra.data)
  if self.guard and state.extra.guard then self.guard:load_state(state.extra.guard) end
  return state
end


-- The recipe fields that hold pieces (empo.rl.configurable).
local PIECES = { 'cluster', 'grade', 'filter', 'reward', 'advantage', 'loss' }
M.PIECES = PIECES

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

-- runs/<name>/ (claimed when the trainer is made: empo.run.rundir): recipe.json now,
-- then metrics.jsonl every step, samples.jsonl every samples_every
-- steps (questions, completions, answers, cluster ids, rewards) and the
-- rollout store (rollouts.on: every step's groups, with token ids and
-- log-probs).
function M.methods.open_run(self)
  if not self.rundir then return nil end
  if self.run_dir then return self.run_dir end
  local r = self.recipe
  self.run_dir = self.rundir.path
  local settings = plain(r, 0)
  settings.model = type(r.model) == 'string' and r.model or tostring(r.model)
  settings.pieces = {}                          -- the configured pieces, with their options (empo rescore rebuilds them)
  for _, k in ipairs(PIECES) do settings.pieces[k] = configurable.describe(r[k]) end
  self.settings = settings
  self:write_changes()                          -- (recipe.json, with the changes made during the run: empo.rl.live)
  self.metrics = empo.logger.metrics(self.run_dir .. '/metrics.jsonl')
  self.samples = empo.logger.metrics(self.run_dir .. '/samples.jsonl')
  if r.rollouts.on then
    self.rollouts = rollout_store.writer(self.run_dir .. '/rollouts', { max_mb = r.rollouts.max_mb })
    if self.resumed_from then self.rollouts:trim(self.resumed_from) end
  end
  return self.run_dir
end

-- Lets go of the run directory (its lock): the end of a run, or a REPL
-- session done with this trainer. Also happens when the process ends.
function M.methods.close(self)
  if self.guard then self.guard:close() end
  if self.restore_runtime then self.restore_runtime(); self.restore_runtime = nil end
  if self.metrics then self.metrics:close(); self.samples:close(); self.metrics, self.samples = nil, nil end
  if self.rundir then self.rundir:release() end
end

function M.methods.write_step(self, rec)
  if not self.metrics then return end
  self.metrics:write(rec)
  if self.rollouts then self.rollouts:write(rec.step, self.last.groups) end
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
function M.methods.stop_for(self, signal)
  self.stopped = signal
  local where = 'no run name, so nothing was saved'
  if self.run_dir then
    local dir = self.saved_step == self.step_count and self.run_dir .. '/checkpoint-' .. self.step_count
                or self:checkpoint()
    where = 'checkpoint ' .. dir .. ' (a model directory: empo eval reads it); resume=true continues from it'
  end
  if self.is_main then   -- (under mpirun rank 0 saves and says)
    io.stderr:write(string.format('empo: stopped by %s after step %d: %s\n', signal, self.step_count, where))
  end
end

-- Saves the model (Hugging Face layout) and tokenizer to dir (default
-- runs/<name>/model); under LoRA the adapter (PEFT's layout, default
-- runs/<name>/adapter: `empo merge` makes a plain model of it).
function M.methods.save(self, dir)
  local adapter = lora.has(self.model)
  dir = dir or ((self:open_run() or 'runs/trainer') .. (adapter and '/adapter' or '/model'))
  if adapter then lora.save(self.model, dir) else empo.models.save_pretrained(self.model, dir) end
  for _, f in ipairs(self:tokenizer_files()) do                  -- the tokenizer travels along
    local ok, err = empo.fs.copy_into(dir, f)
    if not ok then error(err, 0) end
  end
  return dir
end

return M
