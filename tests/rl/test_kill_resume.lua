-- tests/rl/test_kill_resume.lua — SIGKILL at 20 random moments of a run
-- (checkpoint every step, samples every step) never leaves a run
-- directory that `empo plot` or `resume=true` cannot read, nor a `latest`
-- that does not load; and the resumed run's metrics are the uninterrupted
-- run's, each step once, its samples each step's groups once.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_kill_resume')

local binary = os.getenv('EMPO_BINARY') or 'empo'
local dir = check.tmpdir()
check.tiny_world(dir, 8)
local STEPS, B = 5, 2
assert(empo.fs.write_atomic(dir .. '/recipe.lua', string.format([[
local empo = require 'empo'
return empo.recipe{ out = %q, model = %q, data = %q, sample = { n = 2, max_new_tokens = 4 },
  prompts_per_step = %d, steps = %d, save_every = 1, keep = 2, samples_every = 1, filter = empo.filter.none,
  optim = { lr = 1e-3 },
  reward = function(g)            -- slow enough that a random moment lands anywhere in a step
    local t = os.clock() while os.clock() - t < 0.02 do end
    local r = {} for i, s in ipairs(g.completions) do r[i] = #s %% 3 end return r
  end }
]], dir .. '/runs', dir .. '/model', dir .. '/q.jsonl', B, STEPS)))

local sh = check.sh
local function run(name, extra)
  return sh(string.format("'%s' run '%s' name=%s %s", binary, dir .. '/recipe.lua', name, extra or ''))
end

-- the uninterrupted run: the reference, and how long a run lasts
local t0 = empo.logger.clock()
local _, rc = run('whole')
local span = empo.logger.clock() - t0
c.eq(rc, 0, 'the uninterrupted run')
local want = empo.logger.read_metrics(dir .. '/runs/whole/metrics.jsonl')
c.eq(#want, STEPS, 'one metrics line a step')

math.randomseed(tonumber(os.getenv('EMPO_KILL_SEED') or '7'))
for i = 1, 20 do
  local name = 'kill' .. i
  local run_dir = dir .. '/runs/' .. name
  local p = io.popen(string.format("'%s' run '%s' name=%s > '%s' 2>&1 & echo $!", binary, dir .. '/recipe.lua', name,
                                   dir .. '/' .. name .. '.log'))
  local pid = p:read('*l')
  p:close()
  local at = math.random() * span
  os.execute(string.format('sleep %.3f; kill -9 %s 2>/dev/null; while kill -0 %s 2>/dev/null; do sleep 0.01; done',
                           at, pid, pid))
  local what = string.format('kill %d at %.2f s', i, at)
  -- empo plot reads whatever is there (or says there is no step yet), never a traceback
  if empo.fs.exists(run_dir .. '/metrics.jsonl') then
    local out, prc = sh(string.format("'%s' plot '%s' out='%s'", binary, run_dir, dir .. '/p.html'))
    c.ok((prc == 0 or out:find('holds no step', 1, true)) and not out:find('traceback', 1, true),
         what .. ': empo plot reads the run directory: ' .. out:sub(1, 200))
  end
  -- latest, when there is one, loads (as a model directory and as a checkpoint)
  local ok, latest = pcall(empo.train.latest_checkpoint, run_dir)
  c.ok(ok, what .. ': latest names a complete checkpoint')
  if ok and latest then
    c.ok(pcall(empo.models.from_pretrained, latest), what .. ': latest loads as a model')
    c.ok(empo.fs.exists(latest .. '/tokenizer.json'), what .. ': with its tokenizer')
  end
  -- resume=true finishes the run, and the result is the uninterrupted run's
  local out, rrc = run(name, 'resume=true')
  c.eq(rrc, 0, what .. ': resume=true finishes the run')
  if rrc ~= 0 then io.stderr:write(out, '\n') end
  local got = empo.logger.read_metrics(run_dir .. '/metrics.jsonl')
  c.eq(#got, STEPS, what .. ': each step once in metrics.jsonl')
  for s = 1, math.min(#got, #want) do
    c.ok(got[s].step == s and got[s].reward == want[s].reward and got[s].loss == want[s].loss,
         string.format('%s: step %d as in the uninterrupted run', what, s))
  end
  local per = {}
  for _, rec in ipairs(empo.logger.read_metrics(run_dir .. '/samples.jsonl')) do per[rec.step] = (per[rec.step] or 0) + 1 end
  local once = true
  for s = 1, STEPS do once = once and per[s] == B end
  c.ok(once, what .. ': samples.jsonl holds each step\'s groups once')
end

empo.fs.remove_tree(dir)
c.done()
