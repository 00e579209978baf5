-- recipes/trips/compare.lua — what the clustering is worth on the trips
-- world: EMPO with clusters from exact strings, normalised strings, the
-- learned verifier and the oracle (the meaning), gold-answer GRPO and the
-- random-reward control, from the same base with the same budget
-- (recipes/trips/run.lua's), each over the seeds asked; every run graded
-- by meaning on the held-out test set (greedy, avg@k, maj@k, pass@k), with
-- the seconds a step takes and the seconds a step's sampling (scoring and
-- clustering included) takes. Writes runs/trips-compare/results.json.
--
--     empo run recipes/trips/compare.lua                           # 6 methods x 3 seeds
--     empo run recipes/trips/compare.lua methods=exact,oracle seeds=1 steps=30 questions=100
local empo = require 'empo'
local eval = require 'empo.rl.eval'
local trips = require 'empo.world.trips'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.'
local cfg = empo.config.apply({
  methods = 'exact,normalized,verifier,oracle,grpo_gold,random', seeds = '1,2,3', steps = 90,
  out = 'runs/trips-compare', verifier = here .. '/../../models/trips-verifier', questions = 0,
}, arg, 'trips/compare')

local function list(s)
  local out = {}
  for x in tostring(s):gmatch('[^,%s]+') do out[#out + 1] = x end
  return out
end

local METHODS = {
  exact = { cluster = empo.cluster.exact },
  normalized = { cluster = empo.cluster.normalized },
  verifier = { cluster = empo.cluster.by_model(empo.cluster.model_verifier(cfg.verifier), trips.VERIFIER_TEMPLATE) },
  oracle = { cluster = trips.oracle },
  grpo_gold = { cluster = trips.oracle, reward = empo.reward.gold{ equivalent = trips.oracle }, filter = empo.filter.none },
  random = { cluster = trips.oracle, reward = empo.reward.random, filter = empo.filter.none },
}

local results = { runs = {}, methods = list(cfg.methods), seeds = list(cfg.seeds), steps = cfg.steps,
                  cpu = empo.info().cpu, date = os.date('!%Y-%m-%d') }
local function trainer(method, seed, name)
  local o = { steps = cfg.steps, seed = tonumber(seed), name = name, out = cfg.out, overwrite = true }
  for k, v in pairs(METHODS[method] or error('trips/compare: unknown method ' .. method, 0)) do o[k] = v end
  return empo.rl.trainer(here .. '/run.lua', o)
end

local evalset                                   -- (questions > 0: the first ones of the test set only)
do
  local t = trainer('oracle', results.seeds[1], '')
  evalset = cfg.questions > 0 and t.recipe.eval:list(cfg.questions) or t.recipe.eval
  results.base = t:eval(evalset)
  print('base:        ' .. eval.table(results.base))
  t:close()
end
for _, method in ipairs(results.methods) do
  results.runs[method] = {}
  for _, seed in ipairs(results.seeds) do
    local name = method .. '-s' .. seed
    local t = trainer(method, seed, name)
    local t0 = empo.logger.clock()
    t:run()
    local seconds = empo.logger.clock() - t0
    local r = t:eval(evalset)
    local sample_s = 0
    for _, rec in ipairs(t.history) do sample_s = sample_s + rec.seconds_sample end
    r.name, r.seconds, r.step_seconds, r.sample_seconds = name, seconds, seconds / cfg.steps, sample_s / cfg.steps
    results.runs[method][#results.runs[method] + 1] = { greedy = r.greedy, avg = r.avg, maj = r.maj, pass = r.pass,
      name = name, seconds = seconds, step_seconds = r.step_seconds, sample_seconds = r.sample_seconds }
    print(string.format('%-12s %s  (%.0f s, %.2f s a step, sampling %.2f s)', name .. ':', eval.table(r), seconds,
                        r.step_seconds, r.sample_seconds))
    io.stdout:flush()
    t:close()
    t = nil
    collectgarbage()
  end
end
empo.json.write_file(cfg.out .. '/results.json', results)
print('results in ' .. cfg.out .. '/results.json')
