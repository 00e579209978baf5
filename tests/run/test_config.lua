-- tests/run/test_config.lua — empo.config, the one settings mechanism:
-- specs (what a field may hold, in the words of the messages), check()
-- of whole tables, apply() of key=value with and without a schema, and
-- each settings path refusing an unknown key by name: a recipe table, the
-- command line, Lua overrides, recipe_from, pretraining, empo generate and
-- empo eval.
local check = require 'check'
local empo = require 'empo'
local config = empo.config
local S = config.spec
local c = check.new('test_config')

-- ---- specs ----
c.ok(S.integer{ min = 1 }.accepts(3) and not S.integer{ min = 1 }.accepts(0), 'integer >= 1')
c.ok(not S.integer{}.accepts(1.5), 'an integer is whole')
c.ok(not S.number{}.accepts(0 / 0) and not S.number{}.accepts(math.huge), 'a number is finite')
c.ok(S.number{ above = 0, max = 1 }.accepts(1) and not S.number{ above = 0, max = 1 }.accepts(0), '(0, 1]')
c.eq(S.number{ above = 0, max = 1 }.describe, 'a finite number in (0, 1]', 'described in words')
c.eq(S.literal(true, false, 'auto').describe, "true, false or 'auto'", 'a literal list')
c.ok(S.callable().accepts(print) and S.callable().accepts(empo.reward.cluster_share) and not S.callable().accepts(42),
     'callable: functions and configured pieces')
c.eq(S.either(S.number{ above = 0 }, S.literal(false)).parse('false'), false, 'either parses each in turn')
c.eq(S.boolean().parse('1'), true, 'a boolean from 1')
c.eq(S.number{}.parse('inf'), math.huge, 'inf parses (and a finite spec refuses it)')

-- ---- check and apply with a schema ----
local schema = S.fields{ steps = S.integer{ min = 1 }, sample = S.fields{ n = S.integer{ min = 1 },
                         stop = S.optional(S.string()) } }
c.runs(function() return config.check({ steps = 2, sample = { n = 1 } }, schema) end, 'a good table')
c.raises(function() return config.check({ steps = 0, sample = { n = 1 } }, schema, 'x') end,
         'x: steps must be an integer >= 1, got 0')
c.raises(function() return config.check({ steps = 1, sample = { n = 1, nn = 2 } }, schema, 'x') end,
         "x: unknown setting 'sample.nn' (did you mean 'sample.n'?)")
c.raises(function() return config.check({ sample = { n = 1 } }, schema, 'x') end, 'x: steps is required')
c.raises(function() return config.check({ steps = 1, sample = { n = 1 }, 'loose' }, schema, 'x') end, 'a list item')
local cfg = config.apply({ steps = 1, sample = { n = 1 } }, { 'steps=5', 'sample.stop=\\n' }, 'x', schema)
c.eq(cfg, { steps = 5, sample = { n = 1, stop = '\\n' } }, 'apply sets dotted and optional fields')
c.raises(function() return config.apply(cfg, { 'steps=0' }, 'x', schema) end, 'x: steps must be an integer >= 1, got 0')
c.raises(function() return config.apply(cfg, { 'steps=many' }, 'x', schema) end, 'got "many"')
c.raises(function() return config.apply(cfg, { 'sample.n.x=1' }, 'x', schema) end, "setting 'sample.n' is not a table")
c.raises(function() return config.apply(cfg, { 'steps' }, 'x', schema) end, 'is not key=value')
c.raises(function() return config.apply(cfg, { 'zzzzzz=1' }, 'x', schema) end, 'known: sample, steps')

-- ---- without a schema: the defaults' types ----
local d = config.apply({ steps = 100, lr = 1e-3, resume = false, name = 'a', sample = { n = 8 } },
                       { 'steps=50', 'sample.n=16', 'resume=true', 'lr=3e-4', 'name=b' })
c.eq(d, { steps = 50, lr = 3e-4, resume = true, name = 'b', sample = { n = 16 } }, 'each default\'s type')
c.raises(function() return config.apply({ steps = 1 }, { 'stpes=5' }, 'demo') end, "demo: unknown setting 'stpes'")
c.raises(function() return config.apply({ on = true }, { 'on=maybe' }, 'demo') end, 'demo: on must be true or false')
c.ok(config.is_setting('a.b=1') and not config.is_setting('12+7=') and not config.is_setting('=x'), 'is_setting')

-- ---- every settings path refuses an unknown key by name ----
local recipe = require 'empo.rl.recipe'
local base = { model = 'm', data = 'd.jsonl' }
c.raises(function() return recipe.resolve(check.with(base, { rewrd = 1 }), nil, 'r.lua') end,
         "r.lua: unknown setting 'rewrd'")
c.raises(function() return recipe.resolve(check.with(base, { sample = { temprature = 1 } })) end,
         "unknown setting 'sample.temprature'")
c.raises(function() return recipe.resolve(base, { 'optim.learning_rate=1' }) end,
         "command line: unknown setting 'optim.learning_rate'")
c.raises(function() return recipe.resolve(base, { ['guard.patince'] = 1 }) end, "unknown setting 'guard.patince'")
c.raises(function() return empo.recipe_from(base, { stpes = 1 }) end, "empo.recipe_from: unknown setting 'stpes'")
local pretrain = require 'empo.train.pretrain'
c.raises(function() return pretrain.config({ stpes = 1 }) end, "pretrain: unknown setting 'stpes'")
c.raises(function() return pretrain.config({ 'stpes=1' }) end, "pretrain: unknown setting 'stpes'")
c.runs(function() return pretrain.config({ arch = { head_dim = 16 } }) end, 'pretrain: arch takes any config.json field')
local cli = check.empo
local out, rc = cli("generate nowhere 'a prompt' temprature=0")
c.ok(rc ~= 0 and out:find("unknown setting 'temprature'", 1, true), 'empo generate: ' .. out)
out, rc = cli('eval nowhere data.jsonl kk=1')
c.ok(rc ~= 0 and out:find("unknown setting 'kk'", 1, true), 'empo eval: ' .. out)
for _, sub in ipairs({ 'eval', 'generate', 'plot', 'run', 'info' }) do
  local _, hrc = cli(sub .. ' --help')
  c.eq(hrc, 0, 'empo ' .. sub .. ' --help exits 0')
end
c.done()
