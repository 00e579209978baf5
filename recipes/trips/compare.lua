-- recipes/trips/compare.lua — what the clustering is worth on the trips
-- world: EMPO with clusters from exact strings, normalised strings, the
-- learned verifier and the oracle (the meaning), gold-answer GRPO and the
-- random-reward control, from the same base with the same budget
-- (recipes/trips/run.lua's), each over the seeds asked; every run graded
-- by meaning on the held-out test set (greedy, avg@k, maj@k, pass@k), with
-- the seconds a step takes and the seconds a step's sampling (scoring and
-- clustering included) takes. Writes the table into docs/results_trips.md
-- (between its trips markers), the runs to runs/trips-compare/, the curves
-- to runs/trips-compare/plot.html and docs/trips_curves.svg.
--
--     empo run recipes/trips/compare.lua                           # 6 methods x 3 seeds
--     empo run recipes/trips/compare.lua methods=exact,oracle seeds=1 steps=30 questions=100 doc=/tmp/r.md figure=''
local empo = require 'empo'
local eval = require 'empo.rl.eval'
local report = require 'empo.run.report'
local trips = require 'empo.world.trips'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.'
local root = here .. '/../..'
local cfg = empo.config.apply({
  methods = 'exact,normalized,verifier,oracle,grpo_gold,random', seeds = '1,2,3', steps = 180,
  out = 'runs/trips-compare', verifier = root .. '/models/trips-verifier', questions = 0, eval_every = 30,
  doc = root .. '/docs/results_trips.md', figure = root .. '/docs/trips_curves.svg', render_only = false,
  title = 'EMPO on the trips world: each clustering, gold GRPO, random reward', marker = 'trips', heading = '##',
  model = root .. '/models/trips-base',
  figure_keys = 'eval_greedy,eval_avg,eval_maj,entropy,majority_correct,seconds_sample',
}, arg, 'trips/compare')
cfg.empo, cfg.gold, cfg.random = 'verifier', 'grpo_gold', 'random'
cfg.figure_note = string.format('Curves of seed 1 of each method: test accuracy, greedy, avg@8 and maj@8 (the base at ' ..
  'step 0, then every %d steps); the mean semantic entropy of the training groups, by each method\'s own clusters; how ' ..
  'often their largest cluster is right (judged by meaning, for the plot only); the seconds of a step\'s sampling, ' ..
  'clustering included. Every run overlaid, every metric: ' ..
  '`%s/plot.html` (or `empo plot %s/*`).', cfg.eval_every, cfg.out, cfg.out)


local METHODS = {
  exact = { cluster = empo.cluster.exact },
  normalized = { cluster = empo.cluster.normalized },
  verifier = { cluster = trips.verifier(cfg.verifier) },
  oracle = { cluster = trips.oracle },
  grpo_gold = { cluster = trips.oracle, reward = empo.reward.gold{ equivalent = trips.oracle }, filter = empo.filter.none },
  random = { cluster = trips.oracle, reward = empo.reward.random, filter = empo.filter.none },
}
local NAMES = { exact = 'EMPO, exact strings', normalized = 'EMPO, normalised strings',
                verifier = 'EMPO, learned verifier', oracle = 'EMPO, oracle (meaning)', grpo_gold = 'GRPO, gold answers',
                random = 'random reward' }
local ABOUT = 'Every run is graded by meaning (recipe field `grade`: the world\'s equivalence rules), whatever ' ..
              'clusters its reward. EMPO\'s four rows differ only in the clustering; gold GRPO and the random ' ..
              'reward cluster by meaning. The verifier\'s cache is shared by the seeds of one process.'

-- render_only=true: the table again from the last run's results.json (no training)
if cfg.render_only then return report.render_saved(cfg) end

local results = report.new_results(cfg, { recipe = 'recipes/trips/compare.lua', names = NAMES, about = ABOUT })
local evalset                                   -- (questions > 0: the first ones of the test set only)
local function trainer(method, seed, name)
  local o = { steps = cfg.steps, seed = tonumber(seed), name = name, out = cfg.out, overwrite = true,
              eval_every = name ~= '' and cfg.eval_every or 0 }
  if evalset then o.eval = evalset end
  for k, v in pairs(METHODS[method] or error('trips/compare: unknown method ' .. method, 0)) do o[k] = v end
  return empo.rl.trainer(here .. '/run.lua', o)
end

do
  local t = trainer('oracle', results.seeds[1], '')
  evalset = cfg.questions > 0 and empo.data.list(t.recipe.eval:list(cfg.questions)) or t.recipe.eval
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
    local step_s, sample_s = 0, 0
    for _, rec in ipairs(t.history) do   -- (a step: sampling and scoring, then the update; in-run evaluations apart)
      step_s, sample_s = step_s + rec.seconds_sample + rec.seconds_update, sample_s + rec.seconds_sample
    end
    r.name, r.seconds = name, seconds
    r.step_seconds, r.sample_seconds = step_s / #t.history, sample_s / #t.history
    r.details = nil
    results.runs[method][#results.runs[method] + 1] = r
    print(string.format('%-12s %s  (%.0f s, %.2f s a step, sampling %.2f s)', name .. ':', eval.table(r), seconds,
                        r.step_seconds, r.sample_seconds))
    io.stdout:flush()
    t:close()
    t = nil
    collectgarbage()
  end
end
empo.json.write_file(cfg.out .. '/results.json', results)
report.write(results)
print('results in ' .. cfg.out .. '/results.json; table written to ' .. cfg.doc .. ', curves to ' .. cfg.out ..
      '/plot.html' .. (cfg.figure ~= '' and ' and ' .. cfg.figure or ''))
