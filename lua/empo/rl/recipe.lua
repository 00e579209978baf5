-- empo.rl.recipe — what a recipe is: the defaults of every field, the
-- recipe files (`return empo.recipe{ ... }`) and tables, overrides from the
-- command line or Lua checked against them, and recipes made from others.
-- The loop that runs a recipe is empo.rl.trainer.
--
--     local r = recipe.resolve(recipe.load('recipes/math.lua'), { 'sample.n=16', steps = 5 })
local empo = require 'empo'
local loss_mod = require 'empo.rl.loss'
local guard_mod = require 'empo.rl.guard'

local type, error, format, pairs, ipairs, tostring = type, error, string.format, pairs, ipairs, tostring

local M = {}

M.DEFAULTS = {
  prompts_per_step = 16, steps = 100, epochs = 1, mini_batches = 1, micro_batch_tokens = 8192, dynamic_sampling = 0,
  mask_truncated = false,
  recompute_old = false, shared_prompt = 'auto', seed = 0, name = '', out = 'runs', samples_every = 10, save_every = 0, keep = 2,
  eval_every = 0,
  resume = false,
  sample = { n = 8, temperature = 1.0, top_p = 1.0, top_k = 0, max_new_tokens = 128, bf16_weights = false },
  optim = { lr = 1e-5, weight_decay = 0.0, clip_grad = 1.0, schedule = 'constant', warmup = 0, min_lr = 0 },
  guard = guard_mod.DEFAULTS,                  -- the collapse guard (empo.rl.guard); guard.on = true turns it on
}

-- Fields a recipe may set beyond the defaults' (no default: nil is meaningful).
M.FIELDS = { model = true, tokenizer = true, data = true, eval = true, prompt = true, extract = true, cluster = true,
             filter = true, reward = true, advantage = true, loss = true, empty = true, log = true }

function M.merged(defaults, given)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(given or {}) do out[k] = v end
  return out
end

function M.load(recipe)
  if type(recipe) == 'string' then
    local chunk, err = loadfile(recipe)
    if not chunk then error('empo.rl.trainer: ' .. tostring(err), 0) end
    local ok, value = pcall(chunk)
    if not ok then error('empo.rl.trainer: ' .. tostring(value), 0) end
    if type(value) ~= 'table' then error(format('empo.rl.trainer: %s must return a recipe table', recipe), 0) end
    return value, recipe
  end
  if type(recipe) ~= 'table' then error('empo.rl.trainer: expected a recipe file or table', 0) end
  return recipe, 'a recipe table'
end

-- The recipe with its defaults, overrides (a table, or key=value strings
-- with dotted keys) applied and type-checked.
function M.resolve(recipe, overrides)
  local r = {}
  for k, v in pairs(M.DEFAULTS) do r[k] = type(v) == 'table' and M.merged(v, recipe[k]) or v end
  for k, v in pairs(recipe) do if type(M.DEFAULTS[k]) ~= 'table' then r[k] = v end end
  if overrides then
    local strings = {}
    for k, v in pairs(overrides) do
      if type(k) == 'number' then                          -- 'a.b=value' strings from the command line
        strings[#strings + 1] = v
      else                                                 -- { steps = 5, ['sample.n'] = 4 }: Lua values
        local t, last = r, nil
        for part in tostring(k):gmatch('[^%.]+') do
          if last then t = type(t[last]) == 'table' and t[last] or nil end
          if t == nil then break end
          last = part
        end
        if t == nil or (t[last] == nil and M.DEFAULTS[k] == nil and not M.FIELDS[k]) then
          error(format('empo.rl.trainer: unknown recipe field %s', tostring(k)), 0)
        end
        if t == r and type(M.DEFAULTS[k]) == 'table' and type(v) == 'table' then
          t[last] = M.merged(t[last], v)                   -- { sample = { n = 4 } } changes n, keeps the rest
        else
          t[last] = v
        end
      end
    end
    local ok, err = pcall(empo.config.apply, r, strings, 'recipe')
    if not ok then error('empo.rl.trainer: ' .. tostring(err), 0) end
  end
  for _, k in ipairs({ 'prompts_per_step', 'steps', 'epochs', 'mini_batches', 'micro_batch_tokens', 'dynamic_sampling' }) do
    if type(r[k]) ~= 'number' or r[k] < 0 or r[k] % 1 ~= 0 then
      error(format('empo.rl.trainer: recipe field %s must be a whole number >= 0, got %s', k, tostring(r[k])), 0)
    end
  end
  if r.shared_prompt == 'true' or r.shared_prompt == 'false' then r.shared_prompt = r.shared_prompt == 'true' end
  if r.shared_prompt ~= true and r.shared_prompt ~= false and r.shared_prompt ~= 'auto' then
    error(format("empo.rl.trainer: recipe field shared_prompt must be true, false or 'auto', got %s",
                 tostring(r.shared_prompt)), 0)
  end
  r.loss = r.loss or loss_mod.grpo()
  if not loss_mod.is_loss(r.loss) then error('empo.rl.trainer: recipe field loss must be an empo.loss value', 0) end
  return r
end

-- empo.recipe(t): what a recipe file returns (`return empo.recipe{ ... }`):
-- the table, marked, so that `empo run FILE k=v ...` trains it (M.main)
-- while empo.rl.trainer(FILE) just reads it.
local Recipe = {}
function M.recipe(t)
  if type(t) ~= 'table' then error('empo.recipe: expected a table of settings', 3) end
  return setmetatable(t, Recipe)
end

function M.is_recipe(x) return getmetatable(x) == Recipe end

-- A recipe made from another (a file or a table) with some fields changed;
-- sample and optim changes merge into the base's tables:
--   return empo.recipe_from(here .. 'math.lua', { name = 'ttrl', reward = empo.reward.majority })
function M.from(base, changes)
  local b = base
  if type(base) == 'string' then b = M.load(base) end
  if type(b) ~= 'table' then error('empo.recipe_from: the base must be a recipe file or table', 2) end
  local out = {}
  for k, v in pairs(b) do out[k] = v end
  for k, v in pairs(changes or {}) do
    if (k == 'sample' or k == 'optim') and type(v) == 'table' and type(out[k]) == 'table' then
      out[k] = M.merged(out[k], v)
    else
      out[k] = v
    end
  end
  return M.recipe(out)
end

return M
