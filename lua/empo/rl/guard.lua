-- empo.rl.guard — the collapse guard. Without labels nothing says a run
-- is reinforcing garbage except the run's own statistics; the guard
-- watches them step by step and, when they show a collapse, puts the
-- policy back to its last good state with a lower learning rate (or stops
-- the run), saying why.
--
-- A step is collapsing when one of two things shows:
-- 1. Drift: the policy's completions left what the starting model finds
--    plausible. Their mean negative log-prob a token under a frozen copy
--    of the starting model (the record's base_nll), averaged over the
--    last `window` steps, rose above `drift` times the start's and by more
--    than `drift_min` nats (`drift = 0` turns this off and keeps no copy;
--    `drift_rows` completions a step are scored, evenly spaced, 0 = all).
--    Healthy EMPO sharpens the policy inside the base's support, so this
--    stays flat; a policy that forgets how to compute while staying
--    self-consistent leaves it, with no sign in the entropy (the arith
--    world at lr 3e-4: docs/results.md).
-- 2. Agreement about nothing: the semantic entropy is ~0 on almost every
--    group (share `collapsed` at or below `entropy`) together with one
--    sign that the answers are no longer about the questions: the answer
--    rate fell more than `answer_drop` below the start's, the response
--    length drifted more than `length_drift` (relative), the share of
--    distinct majority answers across the batch fell below `distinct`
--    times the start's, or the share of completions cut at max_new_tokens
--    rose by more than `truncated` (repetition loops). Or, whatever the
--    entropy, the answer rate halved. Low entropy alone is not a collapse:
--    it is what EMPO minimizes.
-- The start is the mean of the first `warmup` steps. `patience`
-- collapsing steps in a row fire the guard: action 'rollback' restores the
-- weights and optimizer moments of the older of the last two snapshots
-- (taken every `every` healthy steps; the newer one may already be on its
-- way out) and multiplies the learning rate by `lr_factor`;
-- after `max_rollbacks` (or with action 'stop') the run stops with the
-- snapshot's weights instead; action 'watch' only says so (and logs the
-- signals), changing nothing.
--
-- Snapshots are checkpoints on disk (empo.train's: the model and the AdamW
-- moments, f32, exact), in <run dir>/guard/ — so a resumed run can still
-- roll back to one taken before it stopped — or, for a trainer without a
-- run directory, in a temporary directory removed with the trainer. A
-- model-sized snapshot in memory would cost three copies of the weights
-- each (weights and two moments); on disk it costs a write every `every`
-- steps.
--
-- Recipe field guard = { on = true, ... } (every key overridable:
-- guard.patience=3); guard.on = false (the default) turns it off.
local empo = require 'empo'
local checkpoint = require 'empo.train.checkpoint'
local fs = require 'empo.io.fs'

local format = string.format

local M = {}

M.DEFAULTS = { on = false, drift = 1.5, drift_min = 0.05, window = 3, drift_rows = 32,
               entropy = 0.05, collapsed = 0.9, answer_drop = 0.15, length_drift = 0.5, distinct = 0.5, truncated = 0.2,
               warmup = 3, patience = 2, every = 5, lr_factor = 0.3, max_rollbacks = 2, action = 'rollback' }

local Guard = {}
Guard.__index = Guard

-- o: the recipe's guard table; dir: where the snapshots go (nil: a
-- temporary directory of its own, removed by Guard:close).
function M.new(o, dir)
  local self = setmetatable({ o = o, seen = {}, streak = 0, rollbacks = 0, snapshots = {}, lr_scale = 1, dir = dir },
                            Guard)
  if o.action ~= 'rollback' and o.action ~= 'stop' and o.action ~= 'watch' then
    error(format("empo.rl.trainer: recipe field guard.action must be 'rollback', 'stop' or 'watch', got %s",
                 tostring(o.action)), 0)
  end
  return self
end

local SIGNALS = { 'answer_rate', 'response_length', 'distinct_answers', 'truncated', 'base_nll' }

-- The baseline: the mean of each signal over the first warmup steps.
function Guard:baseline()
  if self.base or #self.seen < self.o.warmup then return self.base end
  local b = {}
  for _, k in ipairs(SIGNALS) do
    local s = 0
    for i = 1, self.o.warmup do s = s + (self.seen[i][k] or 0) end
    b[k] = s / self.o.warmup
  end
  self.base = b
  return b
end

-- The mean of key over the last window records seen since the last
-- rollback, rec the newest (nil when absent).
function Guard:recent(key, rec)
  if rec[key] == nil then return nil end
  local s, n, i = rec[key], 1, #self.seen
  while n < self.o.window and i >= (self.fresh_from or 1) do
    local r = self.seen[i]
    if r ~= rec and r[key] then s, n = s + r[key], n + 1 end
    i = i - 1
  end
  return s / n
end

-- Why rec (a step record) looks like a collapse, or nil.
function Guard:diagnose(rec)
  local o, b = self.o, self:baseline()
  if not b then return nil end
  local drift = self:recent('base_nll', rec)
  if drift and b.base_nll and o.drift > 0 and drift > math.max(o.drift * b.base_nll, b.base_nll + o.drift_min) then
    return format('the completions drifted from the starting model: %.3f nats a token under it over the last %d ' ..
                  'steps (start %.3f)', drift, o.window, b.base_nll)
  end
  if rec.answer_rate < 0.5 * b.answer_rate then
    return format('the answer rate fell to %.2f (start %.2f)', rec.answer_rate, b.answer_rate)
  end
  if (rec.low_entropy or 0) < o.collapsed then return nil end
  local why
  if rec.answer_rate < b.answer_rate - o.answer_drop then
    why = format('the answer rate fell to %.2f (start %.2f)', rec.answer_rate, b.answer_rate)
  elseif b.response_length > 0 and math.abs(rec.response_length / b.response_length - 1) > o.length_drift then
    why = format('the response length drifted to %.1f tokens (start %.1f)', rec.response_length, b.response_length)
  elseif rec.distinct_answers < o.distinct * b.distinct_answers then
    why = format('only %.0f%% of the majority answers differ across questions (start %.0f%%)',
                 100 * rec.distinct_answers, 100 * b.distinct_answers)
  elseif rec.truncated > b.truncated + o.truncated then
    why = format('%.0f%% of the completions hit max_new_tokens (start %.0f%%)', 100 * rec.truncated, 100 * b.truncated)
  end
  return why and format('semantic entropy ~0 on %.0f%% of the groups and %s', 100 * rec.low_entropy, why) or nil
end

-- The snapshot directory, made on first use.
function Guard:directory()
  if not self.dir then
    local base = os.getenv('TMPDIR') or '/tmp'
    local name = os.tmpname()                       -- a unique name; its file is replaced by the directory
    os.remove(name)
    self.dir, self.temporary = base .. '/empo-guard-' .. name:match('[^/]+$'), true
    local dir = self.dir                            -- removed when the guard is collected, if not closed before
    self.sentinel = newproxy(true)
    getmetatable(self.sentinel).__gc = function() fs.remove_tree(dir) end
  end
  local ok, err = fs.make_dirs(self.dir)
  if not ok then error('collapse guard: snapshot directory ' .. self.dir .. ': ' .. err, 0) end
  return self.dir
end

-- The steps of the snapshots on disk, oldest first.
function Guard:on_disk()
  local steps = {}
  if not (self.dir and fs.exists(self.dir)) then return steps end
  for _, name in ipairs(fs.list(self.dir)) do
    local n = name:match('^checkpoint%-(%d+)$')
    if n then steps[#steps + 1] = tonumber(n) end
  end
  table.sort(steps)
  return steps
end

-- what a snapshot holds of the trainer's model (its adapters under LoRA:
-- Trainer:saved_model)
local function saved(trainer) return trainer.saved_model and trainer:saved_model() or trainer.model end

local function snapshot_path(self, step) return format('%s/checkpoint-%d', self.dir, step) end

-- The snapshot directory's `latest` names step's snapshot (the checkpoint
-- layout's pointer, which pruning never removes).
local function point_latest(self, step) fs.write_atomic(self.dir .. '/latest', format('checkpoint-%d\n', step)) end

-- The start of a run from a model directory (no update yet: the weights
-- are the directory's, the moments zero) is a snapshot already: only its
-- source is written (seconds, not a model-sized write).
local function fresh_start(trainer)
  local source = trainer.recipe and trainer.recipe.model
  return type(source) == 'string' and trainer.opt.t == 0 and not trainer.resumed and not trainer.model.lora and source
         or nil   -- (a LoRA run's snapshot is its small adapter, saved)
end

function Guard:take_snapshot(trainer)
  local step = trainer.step_count
  if self.snapshots[#self.snapshots] == step then return end     -- (a resume's step, already on disk)
  local source = fresh_start(trainer)
  if source then
    self:directory()
    local dir = snapshot_path(self, step)
    local ok, err = fs.make_dirs(dir)
    if ok then ok, err = fs.write_atomic(dir .. '/state.json', empo.json.encode({ step = step, fresh_from = source })) end
    if not ok then error('collapse guard: ' .. err, 0) end
    point_latest(self, step)
  else
    checkpoint.save(self:directory(), { model = saved(trainer), optimizer = trainer.opt, step = step, keep = 2 })
  end
  self.snapshots = self:on_disk()
  while #self.snapshots > 2 do                                    -- the last two
    fs.remove_tree(snapshot_path(self, table.remove(self.snapshots, 1)))
  end
end

-- A snapshot's state into the trainer: a checkpoint, or a fresh start's
-- weights from the model directory with zero moments.
local function load_snapshot(self, trainer, step)
  local path = snapshot_path(self, step)
  local state = empo.json.read_file(path .. '/state.json')
  if not state.fresh_from then
    return checkpoint.load(path, { model = saved(trainer), optimizer = trainer.opt })
  end
  trainer.model:load_state(empo.safetensors.load(state.fresh_from, { dtype = 'f32' }), { source = state.fresh_from })
  for i = 1, #trainer.opt.m do
    trainer.opt.m[i]:fill_(0)
    trainer.opt.v[i]:fill_(0)
  end
  trainer.opt.t = 0
end

-- Back to the older of the last two snapshots, which then is the only one.
function Guard:restore(trainer)
  local step = self.snapshots[1]
  load_snapshot(self, trainer, step)
  for _, s in ipairs(self.snapshots) do
    if s ~= step then fs.remove_tree(snapshot_path(self, s)) end
  end
  point_latest(self, step)
  self.snapshots = { step }
  return step
end

-- A resumed run at `step`: the snapshots on disk up to it are the
-- guard's (those after it are of steps that will run again: removed).
function Guard:adopt(step)
  for _, s in ipairs(self:on_disk()) do
    if s > step then fs.remove_tree(snapshot_path(self, s)) end
  end
  self.snapshots = self:on_disk()
  if #self.snapshots > 0 then point_latest(self, self.snapshots[#self.snapshots]) end
end

-- Removes a temporary snapshot directory (one in a run directory stays).
function Guard:close()
  if self.temporary and self.dir then fs.remove_tree(self.dir) end
  self.snapshots = {}
end

-- What a checkpoint keeps (the snapshots are files of their own).
function Guard:state() return { lr_scale = self.lr_scale, rollbacks = self.rollbacks, base = self.base } end

function Guard:load_state(s)
  self.lr_scale, self.rollbacks, self.base = s.lr_scale or 1, s.rollbacks or 0, s.base
  if self.base then for i = 1, self.o.warmup do self.seen[i] = self.base end end
end

-- After each step: returns nil, or { action = 'rollback' | 'stop', reason, to_step, lr_scale }.
function Guard:observe(trainer, rec)
  local o = self.o
  if #self.snapshots == 0 then self:take_snapshot(trainer) end   -- the state the run started from
  self.seen[#self.seen + 1] = rec
  local why = self:diagnose(rec)
  rec.guard = why and 'warning' or nil
  if not why then
    self.streak = 0
    if #self.seen % o.every == 0 then self:take_snapshot(trainer) end
    return nil
  end
  self.streak = self.streak + 1
  if self.streak < o.patience then return nil end
  self.streak = 0
  if o.action == 'watch' then                   -- say it, change nothing
    rec.guard = 'watch'
    return { action = 'watch', reason = why }
  end
  local to = self:restore(trainer)
  self.fresh_from = #self.seen + 1              -- the records before the rollback are of weights that are gone
  if o.action == 'stop' or self.rollbacks >= o.max_rollbacks then
    rec.guard = 'stop'
    return { action = 'stop', reason = why, to_step = to }
  end
  self.rollbacks = self.rollbacks + 1
  self.lr_scale = self.lr_scale * o.lr_factor
  rec.guard = 'rollback'
  return { action = 'rollback', reason = why, to_step = to, lr_scale = self.lr_scale }
end

return M
