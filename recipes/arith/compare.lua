-- recipes/arith/compare.lua — the results table: EMPO, gold-answer GRPO,
-- majority vote (TTRL), self-certainty (Intuitor) and the random-reward
-- control, trained from the same base with the same budget over several
-- seeds, evaluated on the held-out test set (greedy, avg@k, maj@k,
-- pass@k with bootstrap standard errors, boxed accuracy, semantic entropy,
-- answer rate, wall time). Writes the table into docs/results.md (between
-- its arith markers), the runs to runs/compare/<method>-s<seed>/, the
-- curves to runs/compare/plot.html and docs/arith_curves.svg.
--
--     empo run recipes/arith/compare.lua                     # 5 methods x 3 seeds, about 13 minutes on 2 cores
--     empo run recipes/arith/compare.lua seeds=1 methods=math,grpo_gold steps=30 doc=/tmp/r.md
--     empo run recipes/arith/compare.lua seeds=1 methods=math lr=3e-4 guard=watch marker=arith-collapse figure=''
local empo = require 'empo'
local eval = require 'empo.rl.eval'
local report = require 'empo.run.report'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.'
local root = here .. '/../..'
local cfg = empo.config.apply({
  methods = 'math,grpo_gold,ttrl,intuitor,random_reward', seeds = '1,2,3', steps = 90, out = 'runs/compare',
  model = root .. '/models/arith-base', data = root .. '/data/arith/train.jsonl', eval = root .. '/data/arith/test.jsonl',
  doc = root .. '/docs/results.md', figure = root .. '/docs/arith_curves.svg', lr = 0, eval_every = 30, guard = '',
  title = 'EMPO on the arith world', marker = 'arith', heading = '###', render_only = false,
  figure_keys = report.FIGURE_KEYS, figure_note = '',
}, arg, 'arith/compare')


local function overrides(seed, name)
  local o = { model = cfg.model, data = cfg.data, eval = cfg.eval, steps = cfg.steps, seed = tonumber(seed),
              name = name, out = cfg.out, eval_every = cfg.eval_every }
  if cfg.lr > 0 then o['optim.lr'] = cfg.lr end
  if cfg.guard == 'on' or cfg.guard == 'off' then o['guard.on'] = cfg.guard == 'on'
  elseif cfg.guard == 'watch' then o['guard.on'], o['guard.action'] = true, 'watch'   -- the signals, no action
  elseif cfg.guard ~= '' then error("arith/compare: guard must be 'on', 'off', 'watch' or '' (the recipe's)", 0) end
  return o
end

-- render_only=true: the table again from the last run's results.json (no training)
if cfg.render_only then return report.render_saved(cfg) end

local results = report.new_results(cfg)
local methods, seeds = results.methods, results.seeds
do   -- the base, evaluated once with the recipe's prompt and sampling (seed 1)
  local t = empo.rl.trainer(here .. '/../math.lua', overrides(seeds[1], ''))
  local t0 = empo.logger.clock()
  results.base = t:eval()
  results.base.seconds = empo.logger.clock() - t0
  print('base:   ' .. eval.table(results.base))
  print('        ' .. eval.diagnosis(results.base))
end

for _, method in ipairs(methods) do
  results.runs[method] = {}
  for _, seed in ipairs(seeds) do
    local name = method .. '-s' .. seed
    local t0 = empo.logger.clock()
    local t = empo.rl.trainer(here .. '/../' .. method .. '.lua', overrides(seed, name))
    t:run()
    local train_s = empo.logger.clock() - t0
    local r = t:eval()
    r.seconds, r.name, r.guard = train_s, name, t.guard and t.guard.rollbacks or 0
    results.runs[method][#results.runs[method] + 1] = r
    print(string.format('%-22s %s  (%.0f s)', name .. ':', eval.table(r), train_s))
    io.stdout:flush()
    if t.stopped then os.exit(empo.stop.exit_status(t.stopped)) end
    t = nil
    collectgarbage()
  end
end

empo.json.write_file(cfg.out .. '/results.json', results)
report.write(results)
print('table written to ' .. cfg.doc .. ', curves to ' .. cfg.out .. '/plot.html and ' .. cfg.figure)
