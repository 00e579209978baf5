-- tests/rl/test_recipe.lua — empo.rl.recipe: defaults, the merge of a
-- recipe's own tables into them, overrides (Lua values and key=value),
-- recipe_from, the cross-field rules, recipe files, and the schema that
-- every resolved recipe satisfies.
local check = require 'check'
local empo = require 'empo'
local recipe = require 'empo.rl.recipe'
local c = check.new('test_recipe')

local base = { model = 'm', data = 'd.jsonl' }
local r = recipe.resolve(check.with(base, { sample = { n = 4 }, optim = { lr = 3e-4 } }))
c.eq({ r.sample.n, r.sample.temperature, r.sample.min_p }, { 4, 1.0, 0 }, 'a partial sample table keeps the defaults')
c.eq({ r.optim.lr, r.optim.clip_grad }, { 3e-4, 1.0 }, 'and a partial optim table')
c.eq({ r.steps, r.keep, r.name }, { 100, 2, '' }, 'the other defaults')
c.ok(require('empo.rl.loss').is_loss(r.loss), 'the default loss')
c.ok(empo.config.check(r, recipe.SCHEMA) == r, 'a resolved recipe satisfies its schema')
c.ok(recipe.resolve(base).sample ~= recipe.resolve(base).sample, 'each resolve copies the tables')
c.eq(recipe.DEFAULTS.sample.n, 8, 'and the defaults stay as they were')

local o = recipe.resolve(base, { steps = 5, ['sample.n'] = 3, optim = { lr = 1e-4 }, 'sample.top_p=0.9', 'keep=1' })
c.eq({ o.steps, o.sample.n, o.optim.lr, o.optim.clip_grad, o.sample.top_p, o.keep }, { 5, 3, 1e-4, 1.0, 0.9, 1 },
     'Lua overrides (dotted and tables) and key=value')
c.eq(recipe.resolve(base, { 'optim.clip_grad=false' }).optim.clip_grad, false, 'clipping off is false')
c.eq(recipe.resolve(base, { 'shared_prompt=true' }).shared_prompt, true, "shared_prompt='true' is true")
c.eq(recipe.resolve(base, { "eval=false" }).eval, nil, "eval=false is no evaluation, not a file named false")
c.eq(recipe.resolve(base, { 'eval=data/x.jsonl' }).eval, 'data/x.jsonl', 'eval=PATH is a path')
c.eq(recipe.resolve(base, { 'memory_gb=6.5', 'checkpoint=true' }).memory_gb, 6.5, 'memory_gb is a number of GB')
c.eq(recipe.resolve(check.with(base, { eval = false })).eval, nil, 'eval = false: no evaluation')
c.ok(require('empo.rl.loss').is_loss(recipe.resolve(check.with(base, { loss = empo.loss.grpo })).loss),
     'a bare loss constructor is its default loss')

c.raises(function() return recipe.resolve({ data = 'd.jsonl' }) end, 'model is required')
c.raises(function() return recipe.resolve(check.with(base, { save_every = 5 })) end, 'save_every > 0 needs a run name')
c.raises(function() return recipe.resolve(check.with(base, { name = 'x', resume = true, overwrite = true })) end,
         'contradict')
c.raises(function() return recipe.resolve(check.with(base, { optim = { lr = 1e-5, min_lr = 1e-3, schedule = 'cosine' } })) end,
         'optim.min_lr (0.001) is above optim.lr')
c.raises(function() return recipe.resolve(check.with(base, { sample = { stop = { 'a', 3 } } })) end,
         'sample.stop must be')
c.raises(function() return recipe.resolve(check.with(base, { optim = { betas = { 0.9 } } })) end, 'optim.betas must be')

-- an old field name still works, said once on stderr
do
  local stderr, said = io.stderr, {}
  io.stderr = { write = function(_, ...) for _, x in ipairs({ ... }) do said[#said + 1] = x end end }
  local a = recipe.resolve(check.with(base, { epochs = 2 }))
  local b = recipe.resolve(base, { 'epochs=3' })
  io.stderr = stderr
  c.eq({ a.update_epochs, b.update_epochs, a.epochs }, { 2, 3, nil }, "'epochs' is read as 'update_epochs'")
  c.ok(table.concat(said):find("recipe field 'epochs' is now 'update_epochs'", 1, true), 'and said')
end

-- recipe_from: the changes merge into the base's tables; names checked
local b = empo.recipe(check.with(base, { sample = { n = 4, temperature = 0.7 }, name = 'b' }))
local f = empo.recipe_from(b, { sample = { n = 2 }, name = 'f' })
c.ok(recipe.is_recipe(f), 'recipe_from makes a recipe')
c.eq({ f.sample.n, f.sample.temperature, f.name, b.sample.n }, { 2, 0.7, 'f', 4 }, 'merged, the base untouched')
c.raises(function() return empo.recipe_from(b, { sample = { m = 1 } }) end, "unknown setting 'sample.m'")

-- recipe files
local dir = check.tmpdir()
empo.fs.write_atomic(dir .. '/r.lua', "local empo = require 'empo'\nreturn empo.recipe{ model = 'm', data = 'd' }\n")
local t, src = recipe.load(dir .. '/r.lua')
c.eq({ t.model, src }, { 'm', dir .. '/r.lua' }, 'load: the table and its file')
empo.fs.write_atomic(dir .. '/n.lua', "return nil\n")
c.raises(function() return recipe.load(dir .. '/n.lua') end, 'returned nothing', 'return empo.recipe')
empo.fs.write_atomic(dir .. '/e.lua', "error('boom')\n")
c.raises(function() return recipe.load(dir .. '/e.lua') end, 'e.lua', 'boom')
empo.fs.remove_tree(dir)
c.done()
