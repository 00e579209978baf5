-- tests/bench/dist_bench.lua — data parallel on this machine: the arith
-- main job's recipe (recipes/math.lua, no evaluation) for `steps` steps as
-- one process of 2 threads and as 2 ranks of 1 thread (mpirun, the fast
-- reduction), in one run; per-step time, the share in collectives (the
-- gradients' all-reduce, the gathers, and waits for the slower rank), and
-- the bytes an all-reduce moves at real model sizes.
--     empo run tests/bench/dist_bench.lua [steps=20] [prompts=16]
local empo = require 'empo'
local memory = require 'empo.rl.memory'
local log = require 'empo.run.log'

local opts = { steps = 20, prompts = 16 }
for _, a in ipairs(arg or {}) do
  local k, v = a:match('^(%w+)=(.*)$')
  if k then opts[k] = tonumber(v) or v end
end
local src = os.getenv('EMPO_SOURCE_DIR') or '.'
local bin = os.getenv('EMPO_BINARY') or 'empo'
local out = os.tmpname()
os.remove(out)
local common = string.format('%s run %s/recipes/math.lua eval=false steps=%d prompts_per_step=%d out=%s', bin, src,
                             opts.steps, opts.prompts, out)
local runs = {
  { label = '1 process x 2 threads', name = 'one', cmd = 'OMP_NUM_THREADS=2 ' .. common .. ' name=one' },
  { label = '2 ranks x 1 thread', name = 'two', cmd = 'sh ' .. src .. '/tests/dist/mpirun.sh 2 ' .. common .. ' name=two' },
}
print(string.format('dist_bench: %d steps of %d prompts (arith); %s', opts.steps, opts.prompts, empo.info().cpu))
print(string.format('%-24s %9s %10s %10s %9s %12s', '', 'wall s', 's/step', 'sample s', 'update s', 'collectives'))
local walls = {}
for i, r in ipairs(runs) do
  local t0 = log.clock()
  local ok = os.execute(r.cmd .. ' > ' .. out .. '.' .. r.name .. '.log 2>&1')
  walls[i] = log.clock() - t0
  if ok ~= 0 and ok ~= true then error('dist_bench: ' .. r.label .. ' failed (log ' .. out .. '.' .. r.name .. '.log)') end
  local recs = log.read_metrics(out .. '/' .. r.name .. '/metrics.jsonl')
  local sample, update, comm = 0, 0, 0
  for _, rec in ipairs(recs) do
    sample, update, comm = sample + rec.seconds_sample, update + rec.seconds_update, comm + (rec.seconds_comm or 0)
  end
  local n = #recs
  r.step = (sample + update) / n
  print(string.format('%-24s %9.1f %10.3f %10.3f %9.3f %11.1f%%', r.label, walls[i], r.step, sample / n, update / n,
                      100 * comm / math.max(sample + update, 1e-9)))
end
print(string.format('2 ranks / 1 process, time per step: %.2fx', runs[1].step / runs[2].step))
-- what one all-reduce of the gradients moves at real sizes: the flat f32
-- buffer (and a flag per parameter tensor); a ring all-reduce sends and
-- receives 2 (N - 1) / N of it per rank
local shapes = {
  { 'Qwen2.5-0.5B', { hidden_size = 896, intermediate_size = 4864, num_hidden_layers = 24, num_attention_heads = 14,
                      num_key_value_heads = 2 } },
  { 'Qwen2.5-1.5B', { hidden_size = 1536, intermediate_size = 8960, num_hidden_layers = 28, num_attention_heads = 12,
                      num_key_value_heads = 2 } },
}
for _, s in ipairs(shapes) do
  local cfg = { model_type = 'qwen2', vocab_size = 151936, tie_word_embeddings = true, max_position_embeddings = 32768 }
  for k, v in pairs(s[2]) do cfg[k] = v end
  local n = memory.parameter_count(empo.models.config(cfg, s[1]))
  print(string.format('%s: %d parameters, %.2f GB a gradient all-reduce; per rank a ring moves %.2f GB each way ' ..
                      'at 2 ranks, %.2f GB at 8', s[1], n, 4 * n / 2 ^ 30, 4 * n / 2 ^ 30, 2 * 7 / 8 * 4 * n / 2 ^ 30))
end
os.execute('rm -rf ' .. out .. ' ' .. out .. '.*.log')
