-- tests/train/test_resume.lua — checkpoints survive SIGKILL: training N steps
-- straight and training with a checkpoint every step, killed (kill -9) part
-- way, then resumed, give bit-identical losses at every step.
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_resume')

local binary = os.getenv('EMPO_BINARY') or 'empo'
local source = os.getenv('EMPO_SOURCE_DIR') or '.'
local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

-- a small deterministic corpus
do
  local words = { 'the', 'model', 'agrees', 'with', 'itself', 'answer', 'seven', 'plus', 'five', 'is', 'twelve' }
  local g = empo.Generator(5, 0)
  local f = assert(io.open(tmp .. '/corpus.jsonl', 'w'))
  for _ = 1, 120 do
    local n = g:randint(4, 14, 1):item()
    local w = {}
    for k = 1, n do w[k] = words[g:randint(0, #words, 1):item() + 1] end
    f:write(empo.json.encode({ text = table.concat(w, ' ') }, { compact = true }), '\n')
  end
  f:close()
end

local STEPS = 14
local common = string.format("'%s/recipes/pretrain.lua' data='%s/corpus.jsonl' out='%s' steps=%d seq=32 batch=8 "
  .. 'micro_batches=2 threads=2 warmup=3 log_every=1000 arch.hidden_size=64 arch.intermediate_size=96 '
  .. 'arch.num_hidden_layers=2', source, tmp, tmp, STEPS)

local function losses(name)
  local out = {}
  for _, r in ipairs(empo.logger.read_metrics(tmp .. '/' .. name .. '/metrics.jsonl')) do out[r.step] = r.loss end
  return out
end

-- straight
c.ok(os.execute(string.format("'%s' run %s name=straight save_every=1000 2>/dev/null", binary, common)) == 0,
     'straight run finishes')
local want = losses('straight')
c.eq(#want, STEPS, 'straight run logged every step')

-- killed part way, then resumed
local pidfile = tmp .. '/pid'
os.execute(string.format("'%s' run %s name=killed save_every=1 2>/dev/null >/dev/null & echo $! > '%s'", binary,
                         common, pidfile))
local pid = io.open(pidfile):read('*l')
local killed_at = 0
for _ = 1, 600 do
  os.execute('sleep 0.05')
  local f = io.open(tmp .. '/killed/metrics.jsonl')
  if f then
    local n = 0
    for _ in f:lines() do n = n + 1 end
    f:close()
    if n >= STEPS / 2 then killed_at = n break end
  end
end
os.execute('kill -9 ' .. pid .. ' 2>/dev/null')
os.execute('sleep 0.2')
c.ok(killed_at >= STEPS / 2 and killed_at < STEPS, 'killed part way (after ' .. killed_at .. ' logged steps)')
c.ok(os.execute(string.format("'%s' run %s name=killed save_every=1 resume=true 2>/dev/null", binary, common)) == 0,
     'resumed run finishes')
local got = losses('killed')
local same = #got == STEPS
for s = 1, STEPS do
  if got[s] ~= want[s] then
    same = false
    print(string.format('step %d: straight %.17g, resumed %.17g', s, want[s] or 0 / 0, got[s] or 0 / 0))
  end
end
c.ok(same, 'every step\'s loss is bit-identical after kill -9 and resume')

-- a pointer to a missing checkpoint is a clear error, not a crash
local f = io.open(tmp .. '/killed/latest', 'w')
f:write('checkpoint-999\n')
f:close()
c.raises(function() empo.train.latest_checkpoint(tmp .. '/killed') end, 'checkpoint-999, which is incomplete or missing')

os.execute("rm -rf '" .. tmp .. "'")
c.done()
