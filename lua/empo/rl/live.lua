-- empo.rl.live — changing a running trainer's recipe between steps, so
-- that the run stays reproducible: each change is checked exactly as the
-- recipe field is (refused by name when wrong, or when the field cannot
-- change during a run), applied from the next step, noted in that step's
-- record (`changes` in metrics.jsonl), and kept in recipe.json's
-- `changes` list, from which resume=true replays it at the same step.
-- `empo attach` (empo.rl.attach_server) makes its changes through
-- Trainer:change; a REPL may too. Methods of empo.rl.trainer.
--
--     t:change('optim.lr', 5e-6)                       -- from the next step on
--     t:change('filter', empo.filter.confidence{ low = 0.4 })
--
-- A change is kept as its value when plain (a number, a string, a
-- boolean), as a piece's name and options (empo.rl.configurable), or, for
-- any other Lua value, as the attached session's chunks that made it
-- (run again, printing off, to rebuild it).
local recipe_mod = require 'empo.rl.recipe'
local configurable = require 'empo.rl.configurable'
local config = require 'empo.run.config'
local dist = require 'empo.run.dist'

local type, error, format, ipairs, pairs, tostring = type, error, string.format, ipairs, pairs, tostring

local M = { methods = {} }

-- The fields a run may change, and why the others may not.
M.CHANGEABLE = {
  filter = true, reward = true, cluster = true, advantage = true, extract = true, empty = true, log = true, loss = true,
  steps = true, samples_every = true, save_every = true, eval_every = true, dynamic_sampling = true,
  mask_truncated = true, update_epochs = true, mini_batches = true,
  ['optim.lr'] = true, ['optim.weight_decay'] = true, ['optim.clip_grad'] = true, ['optim.schedule'] = true,
  ['optim.min_lr'] = true, ['optim.warmup'] = true,
  ['sample.temperature'] = true, ['sample.top_p'] = true, ['sample.top_k'] = true, ['sample.min_p'] = true,
  ['sample.stop'] = true,
}
local WHY = {
  model = 'the model is loaded', tokenizer = 'the model is loaded', lora = 'the model is loaded',
  frozen_dtype = 'the model is loaded', data = 'the data position is part of the checkpoints', eval = 'set at the start',
  name = 'the run directory is claimed', out = 'the run directory is claimed', resume = 'set at the start',
  overwrite = 'set at the start', seed = 'every step\'s seed derives from it',
  prompts_per_step = 'the memory plan was made for it', micro_batch_tokens = 'the memory plan was made for it',
  memory_gb = 'the memory plan was made for it', checkpoint = 'the memory plan was made for it',
  ['sample.n'] = 'the memory plan was made for it', ['sample.max_new_tokens'] = 'the memory plan was made for it',
  ['sample.bf16_weights'] = 'the memory plan was made for it', prompt = 'the memory plan was made for its length',
  shared_prompt = 'set at the start', recompute_old = 'set at the start', gold = 'the data is read',
  fields = 'the data is read', dist = 'the processes are started', guard = 'the collapse guard was made with them',
  rollouts = 'the store is open', attach = 'the socket is open', optim = 'set its fields: optim.lr, ...',
  sample = 'set its fields: sample.temperature, ...', ['optim.betas'] = 'AdamW\'s moments were made with them',
}

-- The spec of a dotted field, or nil and the message naming it.
local function spec_of(field)
  local s, path = recipe_mod.SCHEMA, ''
  for part in field:gmatch('[^.]+') do
    local child = s.fields and s.fields[part]
    if not child then
      local ok, err = pcall(config.set, {}, field, true, 'attach', recipe_mod.SCHEMA)   -- (its "did you mean")
      return nil, ok and format("attach: unknown recipe field '%s'", field) or err
    end
    s, path = child, path .. part .. '.'
  end
  return s
end

-- The value as the change list keeps it (see above); nil when it can only
-- be replayed from chunks and none were given.
local function describe(value, origin)
  local tv = type(value)
  if tv == 'number' or tv == 'string' or tv == 'boolean' then return { value = value } end
  local piece = configurable.describe(value)
  if piece then return { piece = piece } end
  if origin and origin.chunks then return { lua = origin.chunks } end
  return nil
end

-- A new piece tried on the last step's first group (a copy), so that one
-- that fails is refused now rather than failing the run at the next step.
local TRIED = { filter = true, reward = true, advantage = true, cluster = true, extract = true }
local function try_piece(self, field, value)
  local g = self.last and self.last.groups and self.last.groups[1]
  if not (TRIED[field] and g and value ~= nil) then return end
  local rl = require 'empo.rl'
  local ok, err = pcall(function()
    if field == 'extract' then
      if type(value) == 'function' then
        local a = value(g.completions[1])
        if type(a) ~= 'string' then error('it returned a ' .. type(a) .. ', not a string', 0) end
      end
      return
    end
    local copy = { question = g.question, gold = g.gold, completions = g.completions, answers = g.answers, G = g.G,
                   ids = g.ids, k = g.k }
    if field == 'cluster' then copy.ids, copy.k = rl.cluster.cluster(g.answers, value, g.question) end
    local r = self.recipe
    rl.score_clusters(copy, { filter = field == 'filter' and value or r.filter, reward = field == 'reward' and value or r.reward,
                              advantage = field == 'advantage' and value or r.advantage, empty = r.empty,
                              tokens = g.token_entropy and { entropy = g.token_entropy, self_certainty = g.self_certainty } })
  end)
  if not ok then
    error(format('%s = %s fails on the last step\'s first group, so it was not set: %s', field, tostring(value),
                 tostring(err):gsub('^[^\n]-%.lua:%d+: ', '')), 0)
  end
end

-- Checks field = value as the recipe would, raising a message that names it.
function M.methods.check_change(self, field, value)
  if type(field) ~= 'string' then error('a change names a recipe field (a string)', 0) end
  local section = field:match('^([^.]+)%.')
  if not M.CHANGEABLE[field] then
    local why = WHY[field] or (section and WHY[section])
    local s, err = spec_of(field)
    if not s then error(err, 0) end
    error(format("%s cannot change during a run (%s); stop and resume with %s=... instead", field,
                 why or 'set at the start', field), 0)
  end
  local s = spec_of(field)
  if value == nil and not s.optional then error(format('%s is required (%s)', field, s.describe), 0) end
  if value ~= nil and not s.accepts(value) then
    error(format('%s must be %s, got %s', field, s.describe, config.shown(value)), 0)
  end
  local r = self.recipe
  if field == 'steps' and value < self.step_count then
    error(format('steps must be >= the steps already done (%d), got %d', self.step_count, value), 0)
  end
  if field == 'optim.min_lr' and value > r.optim.lr and r.optim.schedule ~= 'constant' then
    error(format('optim.min_lr (%g) would be above optim.lr (%g)', value, r.optim.lr), 0)
  end
  if field == 'eval_every' and value > 0 and not r.eval then error('eval_every > 0 needs an eval set (set at the start)', 0) end
  try_piece(self, field, value)
end

-- Sets the field and what depends on it (the learning-rate schedule).
function M.methods.apply_change(self, field, value)
  config.set(self.recipe, field, value, 'attach', recipe_mod.SCHEMA)
  if field:find('^optim%.') or field == 'steps' then
    self:rebuild_schedule()
    self.opt.weight_decay = self.recipe.optim.weight_decay
  end
end

-- Changes a recipe field from the next step on, recorded (see above).
-- origin: { chunks = {...} } when an attached session made the value.
function M.methods.change(self, field, value, origin)
  self:check_change(field, value)
  local entry = describe(value, origin)
  if not entry then
    error(format('%s = %s: a value that is not a number, a string, a boolean or a piece of the library can only be ' ..
                 'set from `empo attach` (which keeps the chunks that made it, to replay on a resume)', field,
                 tostring(value)), 0)
  end
  entry.after_step, entry.field, entry.shown, entry.applied = self.step_count, field, configurable.show(value), true
  self:apply_change(field, value)
  self:note_change(entry)
  if origin then
    require('empo.run.log').say(format('empo: after step %d: %s = %s (empo attach)', self.step_count, field, entry.shown))
  end
  return entry.shown
end

-- A change made or replayed: noted in the next step's record, kept in
-- recipe.json (rank 0), passed to the other ranks (data parallel).
function M.methods.note_change(self, entry, replayed)
  self.change_notes = self.change_notes or {}
  if entry.after_step == self.step_count then
    self.change_notes[#self.change_notes + 1] = entry.field .. ' = ' .. entry.shown
  end
  if replayed then return end
  self.changes = self.changes or {}
  self.changes[#self.changes + 1] = entry
  self.changes_to_send = self.changes_to_send or {}
  self.changes_to_send[#self.changes_to_send + 1] = entry
  self:write_changes()
end

-- Rebuilds a recorded change's value and applies it.
function M.methods.replay_change(self, entry)
  local v
  if entry.value ~= nil then v = entry.value
  elseif entry.piece then v = configurable.rebuild(entry.piece)
  elseif entry.lua then
    v = require('empo.rl.attach_session').replay(self, entry.lua, entry.field, self.recipe.attach.seconds)
  end
  local ok, err = pcall(function()
    self:check_change(entry.field, v)
    self:apply_change(entry.field, v)
  end)
  if not ok then
    error(format('resume: the change of %s recorded after step %d (%s) cannot be replayed: %s', entry.field,
                 entry.after_step, tostring(entry.shown), tostring(err)), 0)
  end
  entry.applied = true
  self:note_change(entry, true)
end

-- Between steps (Trainer:run, before each step): the recorded changes due
-- now replayed (a resume), the attached clients served (rank 0), and under
-- data parallel rank 0's changes and stop passed to every rank.
function M.methods.between_steps(self)
  for _, e in ipairs(self.changes or {}) do
    if not e.applied and e.after_step <= self.step_count then self:replay_change(e) end
  end
  if self.attach then self.attach:serve(self) end
  if self.dp and self.dp.size > 1 and self.recipe.attach.on then
    local msg = dist.broadcast(self.is_main and { changes = self.changes_to_send or {}, stop = self.stop_asked or false }
                               or nil)
    if not self.is_main then
      for _, e in ipairs(msg.changes) do
        e.applied = false
        self.changes = self.changes or {}
        self.changes[#self.changes + 1] = e
        self:replay_change(e)
      end
      self.stop_asked = msg.stop or nil
    end
  end
  self.changes_to_send = nil
end

-- The changes recorded in a run directory's recipe.json (a resume replays
-- those after its checkpoint at their steps; earlier ones at once).
function M.methods.load_changes(self)
  local path = self.run_path and self.run_path .. '/recipe.json'
  if not path or not require('empo.io.fs').exists(path) then return end
  local ok, saved = pcall(require('empo.io.json').read_file, path)
  if not ok or type(saved.changes) ~= 'table' then return end
  self.changes = {}
  for _, e in ipairs(saved.changes) do
    e.applied = false
    self.changes[#self.changes + 1] = e
  end
end

-- recipe.json with the change list (rank 0).
function M.methods.write_changes(self)
  if not (self.is_main and self.settings and self.run_dir) then return end
  local list = {}
  for i, e in ipairs(self.changes or {}) do
    list[i] = { after_step = e.after_step, field = e.field, shown = e.shown, value = e.value, piece = e.piece, lua = e.lua }
  end
  self.settings.changes = list
  local fs = require 'empo.io.fs'
  local ok, err = fs.write_atomic(self.run_dir .. '/recipe.json', require('empo.io.json').encode(self.settings))
  if not ok then error(err, 0) end
end

return M
