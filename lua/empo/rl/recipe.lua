-- empo.rl.recipe — what a recipe is: every field's default and what it may
-- hold (SCHEMA, checked by empo.config), the recipe files (`return
-- empo.recipe{ ... }`) and tables, overrides from the command line or Lua,
-- and recipes made from others. The loop that runs a recipe is
-- empo.rl.trainer; the run directory it writes is empo.run.rundir's.
--
--     local r = recipe.resolve(recipe.load('recipes/math.lua'), { 'sample.n=16', steps = 5 })
--
-- Every field is checked before any work: a misspelt name anywhere (in
-- the recipe's own tables, an override, recipe_from's changes) is refused
-- by name with the closest known one; a value out of range is refused in
-- the user's words ("sample.n must be an integer >= 1, got 0").
local empo = require 'empo'
local config = require 'empo.run.config'
local loss_mod = require 'empo.rl.loss'
local guard_mod = require 'empo.rl.guard'

local type, error, format, pairs, ipairs, tostring = type, error, string.format, pairs, ipairs, tostring
local S = config.spec

local M = {}

M.DEFAULTS = {
  prompts_per_step = 16, steps = 100, update_epochs = 1, mini_batches = 1, micro_batch_tokens = 8192, dynamic_sampling = 0,
  mask_truncated = false,
  recompute_old = false, shared_prompt = 'auto', frozen_dtype = 'bf16', device = 'cpu', precision = 'f32', tf32 = 'auto', checkpoint = 'auto', seed = 0, name = '', out = 'runs', samples_every = 10, save_every = 0, keep = 2,
  eval_every = 0,
  resume = false, overwrite = false,
  sample = { n = 8, temperature = 1.0, top_p = 1.0, top_k = 0, min_p = 0.0, max_new_tokens = 128, bf16_weights = false },
  optim = { lr = 1e-5, weight_decay = 0.0, clip_grad = 1.0, schedule = 'constant', warmup = 0, min_lr = 0 },
  guard = guard_mod.DEFAULTS,                  -- the collapse guard (empo.rl.guard); guard.on = true turns it on
  lora = false,                                -- LoRA adapters on a frozen bf16 base (empo.nn.lora): true or a table
  dist = { reduce = 'fast', checksum_every = 10 },   -- several processes (empo.rl.data_parallel)
  rollouts = { on = true, max_mb = 1024 },     -- every step's groups on disk (empo.rl.rollout_store)
  attach = { on = true, seconds = 10 },        -- `empo attach runs/<name>` (empo.rl.attach_server)
}

local function is_table(x) return type(x) == 'table' end
local function is_model(x) return type(x) == 'table' and type(x.parameters) == 'function' end
local function is_dataset(x) return require('empo.train.data').is_dataset(x) end
local function string_list(x)
  if type(x) ~= 'table' or #x == 0 then return false end
  for k, s in pairs(x) do if type(k) ~= 'number' or type(s) ~= 'string' then return false end end
  return true
end
local function two_betas(x)
  return type(x) == 'table' and #x == 2 and type(x[1]) == 'number' and type(x[2]) == 'number' and
         x[1] >= 0 and x[1] < 1 and x[2] >= 0 and x[2] < 1
end

local whole0, whole1 = S.integer{ min = 0 }, S.integer{ min = 1 }
local share = S.number{ min = 0, max = 1 }
local nonneg = S.number{ min = 0 }

-- lora: false (full fine-tuning), true (empo.nn.lora's defaults) or a
-- table of its settings, each checked by name
local lora_spec = S.fields({
  rank = S.optional(whole1), alpha = S.optional(S.number{ above = 0 }), dropout = S.optional(S.number{ min = 0, below = 1 }),
  targets = S.optional(S.either(S.string(), S.value('a list of projection names', string_list))),
  rslora = S.optional(S.boolean()), seed = S.optional(whole0), from = S.optional(S.string{ what = 'an adapter directory' }),
}, { what = 'true, false or a table of LoRA settings (rank, alpha, dropout, targets, rslora, seed, from)' })
lora_spec.accepts = function(x) return type(x) == 'boolean' or type(x) == 'table' end
lora_spec.parse = S.boolean().parse

-- What each field may hold. `optional` fields may be absent; the rest
-- always have a value (their default).
M.SCHEMA = S.fields{
  model = S.either(S.string{ what = 'a model directory' }, S.value('a model', is_model)),
  tokenizer = S.optional(S.either(S.string{ what = 'a tokenizer directory or tokenizer.json' },
                                  S.value('a tokenizer', is_table))),
  data = S.either(S.string{ what = 'a JSONL path' }, S.value('a dataset (empo.data)', is_dataset)),
  eval = S.optional(S.either(S.string{ what = 'a JSONL path' }, S.value('a dataset (empo.data)', is_dataset),
                             S.literal(false))),
  gold = S.optional(S.either(S.string{ one_of = { 'answer', 'boxed', 'gsm8k' } },
                             S.callable('a function (record) -> the gold answer'))),
  fields = S.optional(S.fields{ question = S.optional(S.string()), answer = S.optional(S.string()) }),
  prompt = S.optional(S.either(S.string{ what = 'a template string' }, S.callable('a function of the question'),
                               S.value('a prompt template', is_table))),
  extract = S.optional(S.either(S.literal(false), S.callable('a function of the completion'),
                                S.value('a table of extraction options', is_table))),
  cluster = S.optional(S.callable('a cluster rule: a function (a, b, question) -> boolean, or a clusterer')),
  grade = S.optional(S.callable('a cluster rule for grading against gold answers (evaluation, gold metrics)')),
  filter = S.optional(S.callable('a filter: a function (group) -> boolean')),
  reward = S.optional(S.callable('a reward: a function (group) -> one number per completion')),
  advantage = S.optional(S.callable('an advantage: a function (rewards, group) -> one number per completion')),
  loss = S.optional(S.value('an empo.loss value (empo.loss.grpo{...})', loss_mod.is_loss)),
  empty = S.optional(S.string{ one_of = require('empo.rl.stats').EMPTY_MODES }),
  log = S.optional(S.callable('a function (record, trainer)')),
  prompts_per_step = whole1, steps = whole0, update_epochs = whole1, mini_batches = whole1, micro_batch_tokens = whole1,
  dynamic_sampling = whole0, mask_truncated = S.boolean(), recompute_old = S.boolean(),
  shared_prompt = S.literal(true, false, 'auto'),
  frozen_dtype = S.literal('bf16', 'f32'),
  device = S.literal('cpu', 'cuda'),
  precision = S.literal('f32', 'bf16'),
  tf32 = S.literal(true, false, 'auto'),
  checkpoint = S.literal(true, false, 'auto'),
  memory_gb = S.optional(S.number{ min = 0.1 }),
  seed = whole0,
  name = S.string{ pattern = '^[%w_%-]?[%w_%.%-]*$',
                   what = "a run name (letters, digits, '_', '-', '.'; no '/'; '' for no run directory)" },
  out = S.string{ pattern = '%S', what = 'a directory path' },
  samples_every = whole0, save_every = whole0, keep = whole1, eval_every = whole0,
  resume = S.boolean(), overwrite = S.boolean(),
  sample = S.fields{
    n = whole1, temperature = nonneg, top_p = S.number{ above = 0, max = 1 }, top_k = whole0,
    min_p = S.number{ min = 0, below = 1 }, max_new_tokens = whole1, bf16_weights = S.boolean(),
    stop = S.optional(S.either(S.string(), S.value('a list of strings', string_list))),
  },
  optim = S.fields{
    lr = nonneg, weight_decay = nonneg, min_lr = nonneg, warmup = whole0,
    clip_grad = S.either(S.number{ above = 0 }, S.literal(false)),
    schedule = S.either(S.string{ one_of = { 'constant', 'cosine', 'linear' } }, S.callable('a function (step) -> lr')),
    betas = S.optional(S.value('two numbers in [0, 1) (beta1, beta2)', two_betas)),
  },
  lora = lora_spec,
  dist = S.fields{ reduce = S.string{ one_of = { 'fast', 'exact' } }, checksum_every = whole0 },
  rollouts = S.fields{ on = S.boolean(), max_mb = S.number{ above = 0 } },
  attach = S.fields{ on = S.boolean(), seconds = S.number{ above = 0 } },
  guard = S.fields{
    on = S.boolean(), drift = nonneg, drift_min = nonneg, window = whole1, drift_rows = whole0, entropy = nonneg,
    collapsed = share, answer_drop = share, length_drift = nonneg, distinct = share, truncated = share,
    warmup = whole1, patience = whole1, every = whole1, lr_factor = S.number{ above = 0, max = 1 },
    max_rollbacks = whole0, action = S.string{ one_of = { 'rollback', 'stop', 'watch' } },
  },
}

-- (kept for those who read it: the fields without a default)
M.FIELDS = {}
for k in pairs(M.SCHEMA.fields) do if M.DEFAULTS[k] == nil then M.FIELDS[k] = true end end

-- Old field names, still read for one release (with a line on stderr):
-- `epochs` said "passes over the data" to anyone who did not know it meant
-- passes of the update over one step's samples.
M.ALIASES = { epochs = 'update_epochs' }
local said = {}
local function current(name)
  local new = M.ALIASES[name]
  if not new then return name end
  if not said[name] then
    said[name] = true
    io.stderr:write(format("empo: recipe field '%s' is now '%s'; the old name goes in the next release\n", name, new))
  end
  return new
end

-- t with its old field names replaced (a copy when one is).
local function renamed(t)
  local copy
  for k in pairs(t) do
    if type(k) == 'string' and M.ALIASES[k] then
      copy = copy or M.merged(t, nil)
      copy[current(k)], copy[k] = t[k], nil
    end
  end
  return copy or t
end

function M.merged(defaults, given)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(given or {}) do out[k] = v end
  return out
end

-- empo.recipe(t): what a recipe file returns (`return empo.recipe{ ... }`):
-- the table, marked, so that `empo run FILE k=v ...` trains it (cli.recipe)
-- while empo.rl.trainer(FILE) just reads it. M.made_in records the files
-- whose main chunk built one, so that a file that forgets to return it is
-- told so.
local Recipe = {}
M.made_in = {}
local origin = setmetatable({}, { __mode = 'k' })     -- recipe -> the file that made it, for messages
local function mark(t, level)
  local info = debug.getinfo(level + 1, 'S')
  if info and info.source:sub(1, 1) == '@' then
    origin[t] = info.source:sub(2)
    if info.what == 'main' then M.made_in[info.source:sub(2)] = true end
  end
  return setmetatable(t, Recipe)
end
function M.recipe(t)
  if type(t) ~= 'table' then error('empo.recipe: expected a table of settings', 2) end
  local r = mark(t, 2)          -- (not a tail call: mark looks at this function's caller)
  return r
end

function M.is_recipe(x) return getmetatable(x) == Recipe end

-- A recipe file's table (and its path), or a table as it is (and the
-- file that made it, where known: `source` if given).
function M.load(recipe, source)
  if type(recipe) == 'string' then
    local chunk, err = loadfile(recipe)
    if not chunk then error('recipe ' .. tostring(err), 0) end
    local ok, value = pcall(chunk)
    if not ok then error(format('recipe %s: %s', recipe, tostring(value)), 0) end
    if type(value) ~= 'table' then
      error(format('recipe %s returned %s; a recipe file ends with `return empo.recipe{ ... }`', recipe,
                   value == nil and 'nothing' or config.shown(value)), 0)
    end
    return value, recipe
  end
  if type(recipe) ~= 'table' then error('a recipe is a recipe file or a table, got ' .. config.shown(recipe), 0) end
  return recipe, source or origin[recipe] or 'recipe'
end

-- The recipe's tables of settings (sample, optim, guard) merged into
-- base's, the rest replacing it; every key checked against the schema.
local function merge_into(base, changes, source)
  changes = renamed(changes)
  config.check(changes, M.SCHEMA, source, '', true)     -- names only: values are checked whole, later
  for k, v in pairs(changes) do
    local s = M.SCHEMA.fields[k]
    if s.fields and type(v) == 'table' and type(base[k]) == 'table' then base[k] = M.merged(base[k], v)
    else base[k] = v end
  end
  return base
end

-- Lua-valued overrides: { steps = 5, ['sample.n'] = 4, sample = { n = 4 } }.
local function override_values(r, over, source)
  for k, v in pairs(over) do
    local key = tostring(k)
    if key:find('.', 1, true) then
      config.set(r, key, v, source, M.SCHEMA)
    else
      merge_into(r, { [key] = v }, source)
    end
  end
end

-- The recipe with its defaults and overrides (a table, or key=value
-- strings with dotted keys), every field checked. `source` names the
-- recipe in messages (its file).
function M.resolve(recipe, overrides, source)
  source = source or 'recipe'
  local r = {}
  for k, v in pairs(M.DEFAULTS) do r[k] = type(v) == 'table' and M.merged(v, nil) or v end
  merge_into(r, recipe, source)
  if overrides then
    local strings, values = {}, {}
    for k, v in pairs(overrides) do
      if type(k) == 'number' then
        local key, rest = tostring(v):match('^([%w_]+)(=.*)$')
        strings[#strings + 1] = key and current(key) .. rest or v
      else
        values[k] = v
      end
    end
    override_values(r, values, 'override')
    config.apply(r, strings, 'command line', M.SCHEMA)
  end
  if r.eval == false then r.eval = nil end                      -- eval = false: no evaluation
  if r.loss == nil then r.loss = loss_mod.grpo() end
  config.check(r, M.SCHEMA, source)
  local function refuse(msg, ...) error(format('%s: ' .. msg, source, ...), 0) end
  if (r.save_every > 0 or r.resume) and r.name == '' then
    refuse('%s needs a run name (name=...)', r.resume and 'resume=true' or 'save_every > 0')
  end
  if r.resume and r.overwrite then refuse('resume=true and overwrite=true contradict each other: choose one') end
  if r.eval_every > 0 and r.eval == nil then refuse('eval_every=%d needs an eval set (eval=FILE.jsonl)', r.eval_every) end
  if r.optim.min_lr > r.optim.lr and r.optim.schedule ~= 'constant' then
    refuse('optim.min_lr (%g) is above optim.lr (%g)', r.optim.min_lr, r.optim.lr)
  end
  return r
end

-- A recipe made from another (a file or a table) with some fields changed;
-- the changes to sample, optim and guard merge into the base's tables:
--   return empo.recipe_from(here .. 'math.lua', { name = 'ttrl', reward = empo.reward.majority })
function M.from(base, changes)
  local b = base
  if type(base) == 'string' then b = M.load(base) end
  if type(b) ~= 'table' then error('empo.recipe_from: the base must be a recipe file or table', 2) end
  local out = {}
  for k, v in pairs(b) do out[k] = v end
  local ok, err = pcall(merge_into, out, changes or {}, 'empo.recipe_from')
  if not ok then error(err, 2) end
  local r = mark(out, 2)
  return r
end

return M
