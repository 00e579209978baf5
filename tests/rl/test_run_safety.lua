-- tests/rl/test_run_safety.lua — a run never loses or mixes data, and
-- every setting and input is checked before any work: one case (or more)
-- for each defect a hostile user found (issue 24), numbered as there.
-- Every refusal of item 8 must come before the model loads (a hook in
-- empo.rl.trainer fails the test if the model would load), and no message
-- the suite triggers may start with a library file's path.
local check = require 'check'
local empo = require 'empo'
local trainer_mod = require 'empo.rl.trainer'
local rundir = require 'empo.run.rundir'
local c = check.new('test_run_safety')

local binary = os.getenv('EMPO_BINARY') or 'empo'
local dir = check.tmpdir()
local messages = {}                                    -- every refusal, for the check on internal paths

-- ---- the fixture: a tiny model directory and data ----
local function write(path, text) assert(empo.fs.write_atomic(path, text)); return path end
local model_dir, data = check.tiny_world(dir, 6, { max_position_embeddings = 64 })
local tok, model = empo.tokenizer.load(model_dir), empo.models.from_pretrained(model_dir)

local base = { model = dir .. '/model', data = data, eval = data, out = dir .. '/runs',
               sample = { n = 2, max_new_tokens = 4 }, prompts_per_step = 2, steps = 2, samples_every = 1,
               reward = empo.reward.random, filter = empo.filter.none, optim = { lr = 1e-3 } }
local function recipe(over) return check.with(base, over) end

-- A trainer must refuse before its model loads: the hook raises if it would.
local function refused(r, over, ...)
  trainer_mod.before_model_load = function() error('MODEL LOADED before the refusal', 0) end
  local err = c.raises(function() return trainer_mod.new(r, over) end, ...)
  trainer_mod.before_model_load = nil
  if err then
    messages[#messages + 1] = err
    c.ok(not err:find('MODEL LOADED', 1, true), 'refused before the model loads: ' .. err)
  end
  return err
end

local function cli(args, env)
  local out, rc = check.empo(args, env)
  messages[#messages + 1] = out
  return out, rc
end

local function train(r, over)
  local t = trainer_mod.new(r, over)
  t:run()
  t:close()
  return t
end

-- ---- 1. keep: >= 1, checked up front; pruning never touches latest ----
refused(recipe{ name = 'k0', save_every = 1, keep = 0 }, nil, 'keep must be an integer >= 1, got 0')
refused(recipe{ name = 'k0' }, { 'keep=-1' }, 'keep must be an integer >= 1, got -1')
do
  local t = train(recipe{ name = 'k1', save_every = 1, keep = 1 })
  local latest = empo.train.latest_checkpoint(t.run_dir)
  c.ok(latest and latest:find('checkpoint%-2$'), 'keep=1: the newest checkpoint is latest')
  c.ok(not empo.fs.exists(t.run_dir .. '/checkpoint-1/state.json'), 'and the older one is pruned')
  c.ok(empo.models.from_pretrained(latest) ~= nil, 'latest loads')
  -- a latest older than the newest (written by hand): pruning keeps it
  assert(empo.fs.write_atomic(t.run_dir .. '/latest', 'checkpoint-1\n'))
  assert(empo.fs.make_dirs(t.run_dir .. '/checkpoint-1'))
  assert(empo.fs.make_dirs(t.run_dir .. '/checkpoint-3'))
  empo.train.prune_checkpoints(t.run_dir, 1)
  c.ok(empo.fs.is_dir(t.run_dir .. '/checkpoint-1'), 'prune never removes the checkpoint latest names')
  c.ok(empo.fs.is_dir(t.run_dir .. '/checkpoint-3') and not empo.fs.is_dir(t.run_dir .. '/checkpoint-2'),
       'and keeps the newest')
  c.raises(function() empo.train.prune_checkpoints(t.run_dir, 0) end, 'keep must be >= 1')
end

-- ---- 2. reusing a name never mixes two runs ----
do
  local first = train(recipe{ name = 'reuse' })
  local before = empo.fs.read_text(first.run_dir .. '/metrics.jsonl')
  local t2 = trainer_mod.new(recipe{ name = 'reuse', seed = 5 })
  c.eq(t2.rundir.path, dir .. '/runs/reuse-2', 'a fresh run under a used name takes the next numbered directory')
  t2:run(); t2:close()
  c.eq(empo.fs.read_text(dir .. '/runs/reuse/metrics.jsonl'), before, 'the earlier run\'s metrics are untouched')
  c.eq(#empo.logger.read_metrics(dir .. '/runs/reuse-2/metrics.jsonl'), 2, 'the new run has its own')
  local t3 = trainer_mod.new(recipe{ name = 'reuse', overwrite = true })
  c.eq(t3.rundir.path, dir .. '/runs/reuse', 'overwrite=true takes the name itself')
  c.ok(not empo.fs.exists(dir .. '/runs/reuse/metrics.jsonl'), 'and the earlier run is gone')
  t3:close()
  refused(recipe{ name = 'reuse', overwrite = true, resume = true }, nil, 'contradict')
end

-- ---- 3b. two trainers of one process: a fresh one never shares, a resumed one does ----
do
  local t1 = trainer_mod.new(recipe{ name = 'one' })
  local t2 = trainer_mod.new(recipe{ name = 'one' })
  c.ok(t1.rundir.path ~= t2.rundir.path, 'a second fresh trainer of this process takes another directory')
  local t3 = trainer_mod.new(recipe{ name = 'one', resume = true })
  c.eq(t3.rundir.path, t1.rundir.path, 'a resumed one shares the directory its process holds')
  t1:close()
  local p = io.popen(string.format("'%s' -e \"local ok, e = pcall(require('empo.run.rundir').open, " ..
                                   "{ out = '%s', name = 'one', resume = true }) print(ok, e)\" 2>&1", binary, dir .. '/runs'))
  local other = p:read('*a')
  p:close()
  c.ok(other:find('in use by another empo run', 1, true), 'the lock stays while one of them holds it: ' .. other)
  t2:close(); t3:close()
end

-- ---- 3. two trainers on one run directory: the second is refused ----
do
  local lockfile = dir .. '/runs/busy/lock'
  local p = io.popen(string.format(
    "'%s' -e \"local rd = require('empo.run.rundir').open{ out = '%s', name = 'busy' } " ..
    "local ffi = require('ffi') ffi.cdef('int poll(void *, unsigned long, int);') " ..
    "print(ffi.C.getpid()) io.stdout:flush() while true do ffi.C.poll(nil, 0, 50) end\"", binary,
    dir .. '/runs'))
  local pid = p:read('*l')
  c.ok(pid and pid:match('^%d+$'), 'a process holds runs/busy')
  c.eq((empo.fs.read_text(lockfile) or ''):match('%d+'), pid, 'its lock file names its PID')
  refused(recipe{ name = 'busy', resume = true }, nil, 'in use by another empo run (PID ' .. tostring(pid))
  os.execute('kill -9 ' .. pid .. ' 2>/dev/null')
  p:close()
  -- (the holder starts no child, which could hold the lock past its death)
  -- the dead holder's lock file still names it: taken over, and said
  local said = {}
  local rd = rundir.open{ out = dir .. '/runs', name = 'busy', resume = true,
                          say = function(m) said[#said + 1] = m end }
  c.ok(said[1] and said[1]:find('left by PID ' .. pid .. ', which is no longer running', 1, true),
       'a stale lock from a killed process is taken over and reported')
  rd:release()
  c.eq(empo.fs.read_text(lockfile), '', 'a released lock file is empty')
  -- two runs started together from the shell: one trains, the other is refused
  write(dir .. '/busy.lua', string.format([[
local empo = require 'empo'
return empo.recipe{ name = 'together', out = %q, model = %q, data = %q, sample = { n = 2, max_new_tokens = 4 },
  prompts_per_step = 2, steps = 3, resume = true, filter = empo.filter.none,
  reward = function(g) local t = os.clock() while os.clock() - t < 0.05 do end local r = {} for i = 1, g.G do r[i] = i end return r end }
]], dir .. '/runs', dir .. '/model', data))
  local p2 = io.popen(string.format("('%s' run '%s' seed=1 & '%s' run '%s' seed=2; wait) 2>&1", binary,
                                    dir .. '/busy.lua', binary, dir .. '/busy.lua'))
  local both = p2:read('*a')
  p2:close()
  messages[#messages + 1] = both
  local refusals = select(2, both:gsub('in use by another empo run', ''))
  c.eq(refusals, 1, 'of two trainers started together on one directory, one is refused')
  local recs = empo.logger.read_metrics(dir .. '/runs/together/metrics.jsonl')
  c.eq(#recs, 3, 'and the other\'s metrics are whole')
end

-- ---- 4. plugged-in functions are held to their contract ----
do
  local zero = function(a, b) return 0 end
  local err = c.raises(function() return empo.rl.score({ 'x \\boxed{1}', 'x \\boxed{2}' }, { cluster = zero }) end,
                       'cluster rule the function defined at', 'test_run_safety.lua', 'returned 0',
                       'must return true or false')
  messages[#messages + 1] = err
  c.raises(function() return empo.cluster.cluster({ 'a', 'b' }, function() return 'no' end) end,
           'returned the string "no"')
  c.raises(function()
    return empo.rl.score({ 'a', 'b' }, { extract = false, cluster = empo.cluster.exact, filter = function() return 1 end })
  end, 'filter the function defined at', 'returned 1')
  c.raises(function()
    return empo.rl.score({ 'a', 'b' }, { extract = false, cluster = empo.cluster.exact,
                                         reward = function() return { 1, 'x' } end })
  end, 'reward the function defined at', 'completion 2', 'finite number')
  -- the evaluation grades with the same rule: a base model is never reported at 100% by a broken rule
  c.raises(function()
    return empo.rl.eval.run(model, tok, { { question = '1 plus 1 is', answer = '2' } },
                            { k = 2, max_new_tokens = 3, extract = function() return 'x' end, cluster = zero })
  end, 'cluster rule', 'returned 0')
end

-- ---- 5. misspelled fields anywhere are refused by name ----
refused(recipe{ rewrd = empo.reward.random }, nil, "unknown setting 'rewrd' (did you mean 'reward'?)")
refused(recipe{ sample = { n = 2, temprature = 0.5 } }, nil, "unknown setting 'sample.temprature'",
        "did you mean 'sample.temperature'")
refused(recipe{ optim = { learning_rate = 1e-3 } }, nil, "unknown setting 'optim.learning_rate'")
refused(recipe{ guard = { on = true, patince = 3 } }, nil, "unknown setting 'guard.patince'")
refused(recipe{}, { ['sample.temprature'] = 1 }, "unknown setting 'sample.temprature'")
refused(recipe{}, { 'optim.learning_rate=1' }, "unknown setting 'optim.learning_rate'")
c.raises(function() return empo.recipe_from(recipe{}, { rewrd = 1 }) end, "unknown setting 'rewrd'")
do
  local out, rc = cli(string.format("generate '%s' 'one plus' temprature=0", dir .. '/model'))
  c.ok(rc ~= 0 and out:find("unknown setting 'temprature'", 1, true), 'empo generate refuses a misspelt setting')
  local out2, rc2 = cli(string.format("generate '%s' max_new_tokens=2 -- 'a=1'", dir .. '/model'))
  c.ok(rc2 == 0 and out2:find('prompt 1, sample 1', 1, true), 'a prompt shaped like a setting goes after --')
  local out3, rc3 = cli(string.format("eval '%s' '%s' kk=3", dir .. '/model', data))
  c.ok(rc3 ~= 0 and out3:find("unknown setting 'kk'", 1, true), 'empo eval refuses a misspelt setting')
  local _, rc4 = cli('eval --help')
  c.eq(rc4, 0, 'empo eval --help exits 0')
end
-- min_p reaches the sampler (a field the recipe knows, passed on)
do
  local t = trainer_mod.new(recipe{ sample = { n = 2, max_new_tokens = 4, min_p = 0.5 } })
  c.eq(t.recipe.sample.min_p, 0.5, 'sample.min_p is a recipe field')
  local seen
  local generate = empo.sample.generate
  empo.sample.generate = function(m, tk, p, o) seen = o.min_p; return generate(m, tk, p, o) end
  t:step()
  empo.sample.generate = generate
  c.eq(seen, 0.5, 'and reaches the sampler')
end

-- ---- 6. gold answers that are null or not a value ----
do
  local null = write(dir .. '/null.jsonl', '{"question": "a", "answer": "1"}\n{"question": "b", "answer": null}\n')
  local obj = write(dir .. '/obj.jsonl', '{"question": "a", "answer": {}}\n')
  local none = write(dir .. '/none.jsonl', '{"question": "a", "answer": "1"}\n{"question": "b"}\n')
  refused(recipe{ eval = null }, nil, 'null.jsonl:2', 'is null')
  refused(recipe{ data = obj, eval = false }, nil, 'obj.jsonl:1', 'a table')
  refused(recipe{ eval = none }, nil, 'none.jsonl:2', "no field 'answer'")
  local num = write(dir .. '/num.jsonl', '{"question": "a", "answer": 12}\n')
  c.eq(empo.data.jsonl(num):get(1).answer, '12', 'a number answer is its text')
end

-- ---- 7. resume restores every file; a torn line is tolerated ----
do
  local t = train(recipe{ name = 'res', steps = 3, save_every = 2 })          -- checkpoints at 2 and 3
  local d = t.run_dir
  -- a run killed after writing step 4 and part of step 5, its last checkpoint at 2
  local m = empo.fs.read_text(d .. '/metrics.jsonl')
  local s = empo.fs.read_text(d .. '/samples.jsonl')
  write(d .. '/metrics.jsonl', m .. '{"step":4,"reward":0}\n{"step":5,"rew')
  write(d .. '/samples.jsonl', s .. '{"step":4,"question":"q"}\n{"step":5,"quest')
  empo.fs.remove_tree(d .. '/checkpoint-3')
  write(d .. '/latest', 'checkpoint-2\n')
  local out, rc = cli(string.format("plot '%s' out='%s'", d, dir .. '/p.html'))
  c.ok(rc == 0 and out:find('metrics.jsonl:5 is a torn line', 1, true), 'empo plot reads past a torn last line, and says so')
  c.ok(not out:find('traceback', 1, true), 'without a traceback')
  local t2 = trainer_mod.new(recipe{ name = 'res', steps = 3, save_every = 2, resume = true })
  c.eq(t2.step_count, 2, 'resume continues from the checkpoint')
  local steps = {}
  for _, r in ipairs(empo.logger.read_metrics(d .. '/samples.jsonl')) do steps[r.step] = (steps[r.step] or 0) + 1 end
  c.ok(steps[3] == nil and steps[4] == nil and steps[5] == nil, 'samples past the checkpoint are dropped')
  c.eq(steps[2], 2, 'and the checkpoint\'s own are kept')
  t2:run(); t2:close()
  steps = {}
  for _, r in ipairs(empo.logger.read_metrics(d .. '/samples.jsonl')) do steps[r.step] = (steps[r.step] or 0) + 1 end
  c.eq({ steps[1], steps[2], steps[3] }, { 2, 2, 2 }, 'after the resumed run: each step\'s groups once')
  local recs = empo.logger.read_metrics(d .. '/metrics.jsonl')
  c.eq(#recs, 3, 'and one metrics line a step')
  -- a bad line in the middle is an error naming file:line, not a traceback
  write(d .. '/metrics.jsonl', '{"step":1}\n{"reward":2}\n{"step":3}\n')
  local out2, rc2 = cli(string.format("plot '%s' out='%s'", d, dir .. '/p.html'))
  c.ok(rc2 ~= 0 and out2:find('metrics.jsonl:2', 1, true) and out2:find('numeric "step"', 1, true) and
       not out2:find('traceback', 1, true), 'a line without step: file:line, no traceback')
  write(d .. '/metrics.jsonl', '{"step":1}\n{"step": 2,,}\n{"step":3}\n')
  local out3 = cli(string.format("plot '%s' out='%s'", d, dir .. '/p.html'))
  c.ok(out3:find('metrics.jsonl:2: malformed JSON at column', 1, true), 'a JSON error names the file\'s line')
end

-- ---- 8. every setting and input checked before the model loads ----
refused(recipe{}, { 'prompts_per_step=0' }, 'prompts_per_step must be an integer >= 1, got 0')
refused(recipe{}, { 'optim.lr=-1' }, 'optim.lr must be a finite number >= 0, got -1')
refused(recipe{}, { 'optim.lr=nan' }, 'optim.lr must be a finite number >= 0, got nan')
refused(recipe{}, { 'sample.top_k=-5' }, 'sample.top_k must be an integer >= 0, got -5')
refused(recipe{}, { 'optim.warmup=-5' }, 'optim.warmup must be an integer >= 0, got -5')
refused(recipe{}, { 'optim.clip_grad=0' }, 'optim.clip_grad must be a finite number > 0, or false, got 0')
refused(recipe{}, { 'optim.clip_grad=-1' }, 'optim.clip_grad must be')
refused(recipe{}, { 'reward=42' }, 'reward must be a reward')
refused(recipe{ reward = 42 }, nil, 'reward must be a reward', 'got 42')
refused(recipe{}, { 'sample.n=100000000' }, 'lower sample.n')
refused(recipe{}, { 'sample.top_p=0' }, 'sample.top_p must be a finite number in (0, 1]')
refused(recipe{}, { 'optim.schedule=cosin' }, "optim.schedule must be one of 'constant', 'cosine', 'linear'")
refused(recipe{ name = 'x', out = '/proc/empo-cannot-write' }, nil, 'out=/proc/empo-cannot-write')
refused(recipe{ eval_every = 2, eval = false }, nil, 'eval_every=2 needs an eval set')
refused(recipe{ save_every = 1 }, nil, 'save_every > 0 needs a run name')
refused(recipe{ name = '../up' }, nil, 'name must be a run name')
do
  local bad = write(dir .. '/bad_utf8.jsonl', '{"question": "ok", "answer": "1"}\n{"question": "caf\xe9", "answer": "2"}\n')
  refused(recipe{ data = bad }, nil, 'bad_utf8.jsonl:2', 'not valid UTF-8')
  local long = write(dir .. '/long.jsonl', '{"question": "1 plus 1 is", "answer": "2"}\n' ..
                     string.format('{"question": "%s", "answer": "2"}\n', string.rep('7 plus 7 is 14. ', 30)))
  refused(recipe{ data = long }, nil, 'long.jsonl:2', "the model's context", 'is 64')
  refused(recipe{ eval = long }, nil, 'long.jsonl:2')
  refused(recipe{ model = dir .. '/nowhere' }, nil, 'model=' .. dir .. '/nowhere', 'no config.json')
end

-- ---- 9. smaller: NaN weights, checkpoints as model directories, recipes ----
do
  local t = trainer_mod.new(recipe{ name = 'nan', save_every = 1, steps = 3 })
  t:run()
  local good = empo.fs.read_text(t.run_dir .. '/latest')
  t.params[1]:fill_(0 / 0)
  t.recipe.steps = 4
  local err = c.raises(function() t:checkpoint() end, 'the weights are not finite', 'stays latest', 'optim.lr=')
  messages[#messages + 1] = err
  c.eq(empo.fs.read_text(t.run_dir .. '/latest'), good, 'a NaN model never becomes latest')
  local err2 = c.raises(function() t:step() end, 'sampling met a NaN', 'weights are not finite', 'optim.lr')
  messages[#messages + 1] = err2
  t:close()
  -- a checkpoint is a model directory: empo eval reads it
  local ck = t.run_dir .. '/' .. good:gsub('%s+$', '')
  local out, rc = cli(string.format("eval '%s' '%s' k=2 max_new_tokens=3", ck, data))
  c.ok(rc == 0 and out:find('greedy', 1, true), 'empo eval runs on a checkpoint directory')
end
do
  local noreturn = write(dir .. '/noreturn.lua', string.format(
    "local empo = require 'empo'\nempo.recipe{ model = %q, data = %q }\n", dir .. '/model', data))
  local out, rc = cli(string.format("run '%s'", noreturn))
  c.ok(rc == 1 and out:find('built an empo.recipe{...} but returned nothing', 1, true),
       'a recipe file that forgets to return its recipe is told so')
  local script = write(dir .. '/script.lua', "print('plain script')\n")
  local out2, rc2 = cli(string.format("run '%s'", script))
  c.ok(rc2 == 0 and out2:find('plain script', 1, true), 'a plain script returning nothing still runs')
  local typo = write(dir .. '/typo.lua', string.format(
    "local empo = require 'empo'\nreturn empo.recipe{ model = %q, data = %q, rewrd = empo.reward.random }\n",
    dir .. '/model', data))
  local out3, rc3 = cli(string.format("run '%s'", typo))
  c.ok(rc3 == 1 and out3:find("typo.lua: unknown setting 'rewrd'", 1, true), 'a typo in a recipe file names the file')
end

-- ---- no user-facing message starts with (or holds) a library file's path ----
for _, m in ipairs(messages) do
  c.ok(not m:find('lua/empo/', 1, true) and not m:find('lua/cli/', 1, true),
       'no internal path in a message: ' .. m:sub(1, 200))
end

empo.fs.remove_tree(dir)
c.done()
