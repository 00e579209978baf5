-- tests/rl/test_recipe_run.lua — `empo run RECIPE.lua k=v ...` end to end on
-- a tiny model saved in the Hugging Face layout and JSONL data: accuracy
-- before and after, the run directory (recipe.json, metrics.jsonl one line
-- a step, samples.jsonl, the trained model), overrides from the command
-- line, and a broken recipe's error naming the field.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_recipe_run')

local binary = os.getenv('EMPO_BINARY') or 'empo'
local dir = os.tmpname()
os.remove(dir)
assert(empo.fs.make_dirs(dir .. '/model'))

local corpus = {}
for i = 1, 40 do corpus[i] = string.format('%d plus %d is \\boxed{%d}.', i, i, 2 * i) end
local tok = check.tiny_tokenizer(corpus, { out = dir .. '/model' })
local model = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 512 }, 4)
empo.models.save_pretrained(model, dir .. '/model')
local function jsonl(path, n0)
  local lines = {}
  for i = 1, 6 do
    lines[i] = empo.json.encode({ question = string.format('%d plus %d is', n0 + i, n0 + i), answer = tostring(2 * (n0 + i)) }, { compact = true })
  end
  empo.fs.write_atomic(path, table.concat(lines, '\n') .. '\n')
end
jsonl(dir .. '/train.jsonl', 0)
jsonl(dir .. '/test.jsonl', 50)
empo.fs.write_atomic(dir .. '/recipe.lua', string.format([[
local empo = require 'empo'
return empo.recipe {
  name = 'tiny', out = %q, model = %q, data = %q, eval = %q,
  sample = { n = 2, temperature = 1.0, max_new_tokens = 6 },
  reward = function(group)
    if os.getenv('EMPO_TEST_SLOW') then local t = os.clock() while os.clock() - t < 0.03 do end end  -- for the stop tests
    local r = {} for i, s in ipairs(group.completions) do r[i] = #s %% 3 end return r
  end,
  prompts_per_step = 2, steps = 5, samples_every = 1, optim = { lr = 1e-3 },
}
]], dir .. '/runs', dir .. '/model', dir .. '/train.jsonl', dir .. '/test.jsonl'))

local function run(args)
  local p = io.popen(string.format("'%s' run '%s' %s 2>&1; echo \"rc=$?\"", binary, dir .. '/recipe.lua', args))
  local out = p:read('*a')
  p:close()
  return out, tonumber(out:match('rc=(%d+)%s*$'))
end

local out, rc = run('steps=2 sample.max_new_tokens=5')
c.eq(rc, 0, 'the run exits 0')
c.ok(out:find('before: greedy', 1, true) and out:find('after:  greedy', 1, true), 'accuracy before and after')
c.ok(out:find('maj@2', 1, true) ~= nil, 'maj@k over the recipe\'s n samples')
local run_dir = dir .. '/runs/tiny'
c.ok(empo.fs.exists(run_dir .. '/recipe.json'), 'recipe.json')
local saved = empo.json.read_file(run_dir .. '/recipe.json')
c.eq(saved.steps, 2, 'the resolved recipe, overrides applied')
c.eq(saved.sample.max_new_tokens, 5, 'a dotted override')
local records = empo.logger.read_metrics(run_dir .. '/metrics.jsonl')
c.eq(#records, 2, 'one metrics line a step')
c.ok(records[2].step == 2 and type(records[2].reward) == 'number' and type(records[2].entropy) == 'number',
     'metrics carry step, reward, entropy')
local samples = empo.logger.read_metrics(run_dir .. '/samples.jsonl')
c.eq(#samples, 4, 'samples.jsonl: every group of every step')
c.ok(type(samples[1].completions) == 'table' and #samples[1].completions == 2 and samples[1].question ~= nil,
     'a sample line holds the question and its completions')
c.ok(empo.fs.exists(run_dir .. '/model/config.json') and empo.fs.exists(run_dir .. '/model/tokenizer.json'),
     'the trained model, with its tokenizer')
local again = empo.models.from_pretrained(run_dir .. '/model')
c.ok(again ~= nil, 'and it loads')

-- errors name the field
local out2, rc2 = run('nosuch=1')
c.ok(rc2 ~= 0 and out2:find('nosuch', 1, true) ~= nil, 'an unknown override names the key')
local out3, rc3 = run('sample.n=many')
c.ok(rc3 ~= 0 and out3:find('sample.n must be an integer >= 1, got "many"', 1, true) ~= nil, 'a wrong type is refused')

-- broken recipes: one line naming what is wrong, no traceback
local function run_file(text, args)
  local path = dir .. '/broken.lua'
  empo.fs.write_atomic(path, text)
  local p = io.popen(string.format("'%s' run '%s' %s 2>&1; echo \"rc=$?\"", binary, path, args or ''))
  local o = p:read('*a')
  p:close()
  return o, tonumber(o:match('rc=(%d+)%s*$'))
end
local base = string.format("local empo = require 'empo'\nreturn empo.recipe{ model = %q, data = %q, " ..
                           "sample = { n = 2, max_new_tokens = 3 }, prompts_per_step = 2, steps = 1, %%s }\n",
                           dir .. '/model', dir .. '/train.jsonl')
local o1, r1 = run_file("local empo = require 'empo'\nreturn empo.recipe{ steps = , }\n")
c.ok(r1 ~= 0 and o1:find('broken.lua:2', 1, true) ~= nil, 'a syntax error names file:line')
local o2, r2 = run_file(base:format("reward = function() error('my reward broke') end"))
c.ok(r2 ~= 0 and o2:find('my reward broke', 1, true) and not o2:find('stack traceback', 1, true),
     'a failing reward: its message, no traceback')
local o3, r3 = run_file(base:format("reward = function(g) local r = {} for i = 1, g.G do r[i] = 0/0 end return r end"))
c.ok(r3 ~= 0 and o3:find('returned nan for completion 1; it must be a finite number', 1, true) ~= nil, 'a NaN reward is refused by name')
empo.fs.write_atomic(dir .. '/empty.jsonl', '\n')
local o4, r4 = run_file(base:format("eval = false"), "data='" .. dir .. "/empty.jsonl'")
c.ok(r4 ~= 0 and o4:find('data=', 1, true) and o4:find('holds no question', 1, true),
     'an empty dataset names the field')
local o5, r5 = run_file(base:format("steps = 'many'"))
c.ok(r5 ~= 0 and o5:find('steps must be an integer >= 0, got "many"', 1, true) ~= nil, 'a wrong type names the field')

-- resume: 2 steps, then 2 more with resume=true, give the metrics of 4 steps in one go
local function metrics_of(name)
  local recs = empo.logger.read_metrics(dir .. '/runs/' .. name .. '/metrics.jsonl')
  local out = {}
  for i, r in ipairs(recs) do
    out[i] = string.format('%d %.10g %.10g %.10g %.10g %.10g', r.step, r.reward, r.entropy, r.loss, r.grad_norm,
                           r.approx_kl)
  end
  return out
end
local _, rc4 = run('name=whole steps=4 save_every=1')
local _, rc5 = run('name=parts steps=2 save_every=1')
local _, rc6 = run('name=parts steps=4 save_every=1 resume=true')
c.ok(rc4 == 0 and rc5 == 0 and rc6 == 0, 'three runs')
local whole, parts = metrics_of('whole'), metrics_of('parts')
c.eq(#parts, 4, 'the resumed run has every step once')
c.eq(parts, whole, 'resumed metrics equal the uninterrupted run, step for step')
c.ok(empo.fs.exists(dir .. '/runs/parts/latest'), 'checkpoints written')

-- `empo run` in the background, sent signal `sig` once `after` steps are
-- logged (steps are slowed to ~60 ms so the signal lands mid-run); returns
-- the exit status, the output and the steps logged when it was sent
local function signal_run(sig, name, args, after)
  local p = io.popen(string.format([[
EMPO_TEST_SLOW=1 '%s' run '%s' name=%s %s > '%s/%s.out' 2>&1 &
pid=$!
n=0
while [ "$n" -lt %d ] && kill -0 $pid 2>/dev/null; do
  sleep 0.05
  n=$(cat '%s/runs/%s/metrics.jsonl' 2>/dev/null | wc -l)
done
kill -%s $pid 2>/dev/null
wait $pid
echo "rc=$? n=$n"]], binary, dir .. '/recipe.lua', name, args, dir, name, after, dir, name, sig))
  local said = p:read('*a')
  p:close()
  local out = empo.fs.read_text(dir .. '/' .. name .. '.out')
  return tonumber(said:match('rc=(%d+)')), out, tonumber(said:match('n=(%d+)'))
end

-- SIGKILL in the middle of a run, then resume=true: the metrics of the
-- uninterrupted run, step for step (the kill comes once 3 steps are logged)
local rc_kill, _, killed_after = signal_run('9', 'killed', 'steps=8 save_every=1', 3)
print(string.format('  killed after %d steps', killed_after or -1))
c.eq(rc_kill, 137, 'SIGKILL ends the run')
local _, rc7 = run('name=killed steps=8 save_every=1 resume=true')
local _, rc8 = run('name=straight steps=8 save_every=1')
c.ok(rc7 == 0 and rc8 == 0, 'the resumed and the straight runs finish')
c.eq(metrics_of('killed'), metrics_of('straight'), 'killed with SIGKILL, resumed: the same metrics step for step')

-- SIGTERM (and Ctrl-C's SIGINT) ends the run after the step in progress,
-- with a checkpoint of that step: exit status 143, one line naming it, and
-- resume=true gives the uninterrupted run's metrics
local function stop_with(sig, name) return signal_run(sig, name, 'steps=8 save_every=100', 2) end
local rc_term, out_term = stop_with('TERM', 'termed')
c.eq(rc_term, 143, 'SIGTERM: exit status 128 + 15')
local stopped_at = tonumber(out_term:match('stopped by SIGTERM after step (%d+)'))
c.ok(stopped_at ~= nil and out_term:find('resume=true continues from it', 1, true) ~= nil,
     'SIGTERM: one line naming the signal, the step and the checkpoint')
c.ok(not out_term:find('after:  greedy', 1, true), 'a stopped run skips the final evaluation')
local latest = empo.fs.read_text(dir .. '/runs/termed/latest')
c.eq(latest, string.format('checkpoint-%d\n', stopped_at or -1), 'the checkpoint is the step that finished')
c.eq(#empo.logger.read_metrics(dir .. '/runs/termed/metrics.jsonl'), stopped_at, 'every finished step is logged once')
local _, rc9 = run('name=termed steps=8 save_every=100 resume=true')
c.eq(rc9, 0, 'the stopped run resumes')
c.eq(metrics_of('termed'), metrics_of('straight'), 'stopped by SIGTERM, resumed: the same metrics step for step')
local rc_int, out_int = stop_with('INT', 'inted')
c.ok(rc_int == 130 and out_int:find('stopped by SIGINT after step', 1, true) ~= nil, 'SIGINT: the same, status 130')

-- every recipe of recipes/ runs a step on the same model and data
local source = os.getenv('EMPO_SOURCE_DIR')
if source then
  for _, name in ipairs({ 'math', 'ttrl', 'grpo_gold', 'intuitor', 'rent', 'random_reward' }) do
    local p = io.popen(string.format("'%s' run '%s/recipes/%s.lua' model='%s' data='%s' eval='%s' out='%s' " ..
                                     "steps=1 prompts_per_step=2 sample.n=2 sample.max_new_tokens=4 2>&1; echo \"rc=$?\"",
                                     binary, source, name, dir .. '/model', dir .. '/train.jsonl', dir .. '/test.jsonl',
                                     dir .. '/runs'))
    local o = p:read('*a')
    p:close()
    c.ok(o:match('rc=0%s*$') and o:find('after:', 1, true), 'recipes/' .. name .. '.lua runs a step: ' .. o:sub(-300))
    c.ok(empo.fs.exists(dir .. '/runs/' .. name .. '/metrics.jsonl'), 'recipes/' .. name .. '.lua writes its run')
  end
end

empo.fs.remove_tree(dir)
c.done()
