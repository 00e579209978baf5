-- tests/rl/test_rollouts.lua — the rollout store and `empo rescore` on
-- short runs of the arith world's base model (its data carries gold
-- answers): every step's groups stored whole and read back (by
-- empo.rollouts and by Python's standard library); re-scored under the
-- run's own pieces, the figures are what metrics.jsonl logged, step by
-- step; under another reward they differ; the size bound; a resume
-- re-writes the steps after its checkpoint; damaged stores are named.
local check = require 'check'
local empo = require 'empo'
local rescore = require 'empo.rl.rescore'
local c = check.new('test_rollouts')

local binary = os.getenv('EMPO_BINARY') or 'empo'
local root = os.getenv('EMPO_SOURCE_DIR') or '.'
local python = os.getenv('EMPO_PYTHON') or '/usr/bin/python3'
local dir = check.tmpdir()
local sh = check.sh
local function run(extra)
  return sh(string.format("'%s' run '%s/recipes/math.lua' out='%s' eval=false prompts_per_step=6 %s", binary, root,
                          dir, extra))
end

local STEPS = 4
local out, rc = run(string.format('name=a steps=%d save_every=1 keep=10', STEPS))
c.eq(rc, 0, 'a short run of the main recipe')
if rc ~= 0 then io.stderr:write(out, '\n') end
local run_dir = dir .. '/a'

-- ---- the store ----
local store = empo.rollouts.open(run_dir)
c.eq(#store.steps, STEPS, 'one file a step')
local groups = store:step(2)
c.eq(#groups, 6, 'a step holds its groups')
local g = groups[1]
c.ok(g.step == 2 and type(g.question) == 'string' and g.gold ~= nil and #g.texts == 8 and #g.token_ids == 8 and
     #g.logprobs == 8 and #g.answers == 8 and #g.ids == 8 and #g.rewards == 8 and #g.advantages == 8 and
     type(g.keep) == 'boolean' and #g.prompt_ids > 0 and type(g.prompt) == 'string',
     'a group: question, gold, prompt, texts, token ids, log-probs, answers, clusters, rewards, advantages, keep')
c.eq(#g.logprobs[1], #g.token_ids[1], 'a log-prob per sampled token')
local tok = empo.tokenizer.load(root .. '/models/arith-base')
local decoded_text = tok:decode(g.token_ids[1])
c.eq(decoded_text:sub(1, #g.texts[1]), g.texts[1], 'the token ids decode to the stored text (and its stop token)')
local n = 0
for step, x in store:groups() do n = n + 1; assert(step == x.step) end
c.eq(n, 6 * STEPS, 'store:groups() walks every group of every step')
local py = sh(string.format("%s -c \"import gzip,json,glob,sys; fs=sorted(glob.glob('%s/rollouts/step-*.jsonl.gz')); " ..
                            "gs=[json.loads(l) for f in fs for l in gzip.open(f,'rt')]; " ..
                            "print(len(fs), len(gs), sum(len(g['texts']) for g in gs), gs[0]['logprobs'][0][0] < 0)\"",
                            python, run_dir))
c.ok(py:find(string.format('%d %d %d True', STEPS, 6 * STEPS, 48 * STEPS), 1, true),
     'Python reads the store with its standard library: ' .. py)

-- ---- rescore: the run's own pieces give what the run logged ----
local recs = empo.logger.read_metrics(run_dir .. '/metrics.jsonl')
local rep = rescore.run(run_dir)
local agree = true
for _, rec in ipairs(recs) do
  for _, side in ipairs({ rep.live.per_step[rec.step], rep.new.per_step[rec.step] }) do
    local function near(a, b) return (a == nil and b == nil) or (a and b and math.abs(a - b) < 1e-12) end
    if not (near(side.majority_correct, rec.majority_correct) and near(side.positive_correct, rec.positive_correct) and
            near(side.kept_share, rec.kept) and near(side.reward, rec.reward)) then
      agree = false
      io.stderr:write(string.format('step %d: logged maj %s pos %s kept %s reward %s; rescore %s %s %s %s\n', rec.step,
        tostring(rec.majority_correct), tostring(rec.positive_correct), tostring(rec.kept), tostring(rec.reward),
        tostring(side.majority_correct), tostring(side.positive_correct), tostring(side.kept_share), tostring(side.reward)))
    end
  end
end
c.ok(agree, 'stored and re-scored with the run\'s pieces, every step\'s figures are metrics.jsonl\'s')
c.eq(rep.flips, 0, 'and no advantage changes sign')
local ttrl = rescore.run(run_dir, { reward = empo.reward.majority, filter = false })
c.ok(ttrl.new.reward ~= rep.new.reward and ttrl.new.kept_share == 1 and ttrl.flips > 0,
     'another reward and no filter: other figures, signs that flip')
c.eq(ttrl.live.majority_correct, rep.live.majority_correct, 'the live column stays the run\'s')
local exact = rescore.run(run_dir, { cluster = empo.cluster.exact })
c.ok(exact.new.groups == rep.new.groups, 'clustered again (exact strings)')

-- ---- the command ----
local cli, crc = sh(string.format("'%s' rescore '%s' reward=majority filter=none", binary, run_dir))
c.ok(crc == 0 and cli:find('empo.reward.majority', 1, true) and cli:find('positive-advantage precision', 1, true) and
     cli:find('advantage sign flips', 1, true), 'empo rescore prints the comparison: ' .. cli)
local js, jrc = sh(string.format("'%s' rescore '%s' reward='cluster_share{log=true}' json=true", binary, run_dir))
local ok_json, decoded = pcall(empo.json.decode, js:gsub('rc=%d+%s*$', ''))
c.ok(jrc == 0 and ok_json and decoded.steps == STEPS and decoded.rescored.reward ~= nil, 'json=true gives the report as JSON')
local bad = {
  { 'reward=nosuch', "empo.reward has no 'nosuch'" },
  { 'reward=(', 'is not a Lua expression' },
  { 'reward=42', 'gives a number, not a reward' },
  { 'reward=neg_entropy', 'did not store' },
  { 'from=9', 'no steps in the range' },
  { 'rewrd=majority', "unknown setting 'rewrd'" },
}
for _, b in ipairs(bad) do
  local o, r = sh(string.format("'%s' rescore '%s' '%s'", binary, run_dir, b[1]))
  c.ok(r ~= 0 and o:find(b[2], 1, true) and not o:find('traceback', 1, true), b[1] .. ' is refused: ' .. o)
end
local o, r = sh(string.format("'%s' rescore '%s'", binary, dir))
c.ok(r == 1 and o:find('holds no rollouts', 1, true), 'a directory without a store is said so: ' .. o)

-- ---- damage ----
local path2 = run_dir .. '/rollouts/step-000002.jsonl.gz'
local whole = empo.fs.read_text(path2)
assert(empo.fs.write_atomic(path2, whole:sub(1, #whole - 20)))
o, r = sh(string.format("'%s' rescore '%s'", binary, run_dir))
c.ok(r == 1 and o:find('step-000002.jsonl.gz is cut short', 1, true), 'a truncated step file is named: ' .. o)
assert(empo.fs.write_atomic(path2, 'not gzip at all'))
o, r = sh(string.format("'%s' rescore '%s'", binary, run_dir))
c.ok(r == 1 and o:find('step-000002.jsonl.gz is not a gzip file', 1, true), 'a file that is not gzip is named: ' .. o)
assert(require('empo.io.gzip').write(path2, '{"texts": ["a"], "answers": ["a"]}\n{"texts": oops}\n'))
o, r = sh(string.format("'%s' rescore '%s'", binary, run_dir))
c.ok(r == 1 and o:find('step-000002.jsonl.gz:2', 1, true), 'a malformed line is named by file and line: ' .. o)

-- ---- a resume from step 2 writes steps 3 and 4 again ----
for s = 3, STEPS do empo.fs.remove_tree(string.format('%s/checkpoint-%d', run_dir, s)) end
assert(empo.fs.write_atomic(run_dir .. '/latest', 'checkpoint-2\n'))
assert(require('empo.io.gzip').write(run_dir .. '/rollouts/step-000003.jsonl.gz', 'stale\n'))
os.remove(path2)                                  -- (the damaged step 2: gone; the checkpoint keeps its place)
out, rc = run(string.format('name=a steps=%d save_every=1 keep=10 resume=true', STEPS))
c.eq(rc, 0, 'the resumed run')
local again = empo.rollouts.open(run_dir)
c.ok(#again.steps == STEPS - 1 and again:step(3)[1].step == 3, 'the steps after the checkpoint are written again')

-- ---- the bound ----
out, rc = run('name=b steps=3 rollouts.max_mb=0.00002')
c.ok(rc == 0 and out:find('passed rollouts.max_mb', 1, true), 'past its bound the store says so')
c.eq(#empo.rollouts.open(dir .. '/b').steps, 1, 'and keeps the newest step only')
out, rc = run('name=off steps=1 rollouts.on=false')
c.ok(rc == 0 and not empo.fs.is_dir(dir .. '/off/rollouts'), 'rollouts.on=false: no store')

empo.fs.remove_tree(dir)
c.done()
