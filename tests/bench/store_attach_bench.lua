-- tests/bench/store_attach_bench.lua — what the rollout store and the
-- attach socket cost a step, in one process: a trainer on the arith main
-- job's recipe (or MODEL=DIR with a data file, for a real model's shape)
-- runs `steps` steps; then, on the last step's real groups, the store's
-- write (JSON lines, gzip, rename) and one serve of the attach socket with
-- nobody attached are timed, and printed beside the step's own time as a
-- ratio. Also the store's bytes per step.
-- sample_only=1 samples and scores the steps without updating (a real
-- model's update takes minutes; the ratio is then to the sampling alone,
-- an upper bound of the share of a whole step).
--     empo run tests/bench/store_attach_bench.lua [steps=3] [model=DIR data=FILE.jsonl prompts=16 n=8 max_new_tokens=128]
--                                                 [sample_only=1]
local empo = require 'empo'
local clock = require('empo.run.log').clock
local store_mod = require 'empo.rl.rollout_store'
local attach_server = require 'empo.rl.attach_server'

local opts = { steps = 3 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match('^([%w_]+)=(.*)$')
  if k then opts[k] = tonumber(v) or v end
end
local src = os.getenv('EMPO_SOURCE_DIR') or '.'
local dir = os.tmpname()
os.remove(dir)
local over = { steps = opts.steps, eval = false, name = 'bench', out = dir, ['rollouts.on'] = false, ['attach.on'] = false }
if opts.model then
  over.model, over.data = opts.model, opts.data
  over.prompts_per_step, over['sample.n'] = opts.prompts or 16, opts.n or 8
  over['sample.max_new_tokens'] = opts.max_new_tokens or 128
  over.prompt = empo.prompt.chatml{ system = 'Please reason step by step, and put your final answer within \\boxed{}.' }
end
local t = empo.rl.trainer(src .. '/recipes/math.lua', over)
t:open_run()
local step_s, groups = 0, nil
for s = 1, opts.steps do
  local t0 = clock()
  if opts.sample_only == 1 then groups = t:sample_step(s) else t:step(); groups = t.last.groups end
  step_s = clock() - t0                           -- (the last step's: warm)
end

local w = store_mod.writer(dir .. '/store', { max_mb = 1024 })
local reps, bytes = 5, 0
local t0 = clock()
for i = 1, reps do bytes = w:write(i, groups) end
local write_s = (clock() - t0) / reps

local srv = attach_server.open(t)
local polls = 20000
t0 = clock()
for _ = 1, polls do srv:serve(t) end
local serve_s = (clock() - t0) / polls
srv:close()

local tokens = 0
for _, g in ipairs(groups) do for _, c in ipairs(g.samples) do tokens = tokens + #c.ids end end
print(string.format('store_attach_bench: %s; %s', opts.model or 'arith (recipes/math.lua)', empo.info().cpu))
print(string.format('  a step (the last of %d)%s %10.3f s   %d groups, %d completions, %d sampled tokens',
                    opts.steps, opts.sample_only == 1 and ', sampling only' or '               ', step_s, #groups, #groups * t.recipe.sample.n, tokens))
print(string.format('  rollout store: one step written      %10.4f s   %.1f KB on disk (%.0f bytes a completion)',
                    write_s, bytes / 1024, bytes / (#groups * t.recipe.sample.n)))
print(string.format('  attach: one serve, nobody attached   %10.2f us', serve_s * 1e6))
print(string.format('  store + attach / step                %10.4f   (%.2f%% of the step)', (write_s + serve_s) / step_s,
                    100 * (write_s + serve_s) / step_s))
t:close()
empo.fs.remove_tree(dir)
