-- tests/bench/train_bench.lua — training tokens/s (forward + backward +
-- AdamW) of empo's decoder next to the same model in PyTorch
-- (tests/bench/train_torch.py), same thread count, in one run; plus peak
-- memory (process max RSS for both, and empo's own peak of live tensor bytes).
-- Each side reports its fastest step (best of `steps`, in two rounds taken
-- in turns), which is robust to the load of a shared machine; read the ratio.
--
--     empo run tests/bench/train_bench.lua [threads=2] [steps=5] [only=arith]
local empo = require 'empo'
local log = empo.logger

local opts = empo.config.apply({ threads = 2, steps = 5, only = '', python = '/usr/bin/python3' }, arg, 'train_bench')
empo.set_num_threads(opts.threads)
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local reference = dofile(here .. 'reference_env.lua')    -- OpenBLAS's core for the PyTorch process only

local configs = {
  { name = 'arith', d = 128, layers = 3, heads = 4, kv = 2, ffn = 384, vocab = 80, batch = 64, seq = 160 },
  { name = 'tiny', d = 256, layers = 4, heads = 4, kv = 2, ffn = 704, vocab = 512, batch = 16, seq = 128 },
  { name = 'small', d = 512, layers = 8, heads = 8, kv = 2, ffn = 1408, vocab = 4096, batch = 16, seq = 128 },
  -- Qwen2.5-0.5B's shape (494M parameters, tied); 2 timed steps (one is seconds on 2 cores)
  { name = 'qwen05', d = 896, layers = 24, heads = 14, kv = 2, ffn = 4864, vocab = 151936, batch = 2, seq = 256,
    steps = 2 },
}

local function run_empo(c)
  local model = empo.models.new({ model_type = 'qwen2', vocab_size = c.vocab, hidden_size = c.d,
    intermediate_size = c.ffn, num_hidden_layers = c.layers, num_attention_heads = c.heads,
    num_key_value_heads = c.kv, rope_theta = 10000, tie_word_embeddings = true }, 0)
  local opt = empo.optim.adamw{ params = model:parameters(), lr = 1e-4 }
  local ids = empo.randint(0, c.vocab, c.batch, c.seq + 1)
  local function step()
    local loss = empo.train.lm_loss(model, ids)
    loss:backward()
    opt:step()
    opt:zero_grad()
  end
  for _ = 1, 2 do step() end
  collectgarbage()   -- the warm-up steps' garbage is not this measurement's
  empo.reset_peak_memory()
  local best = math.huge    -- the fastest step: the machine is shared and noisy
  for _ = 1, c.steps or opts.steps do
    local t0 = log.clock()
    step()
    best = math.min(best, log.clock() - t0)
  end
  return c.batch * c.seq / best, empo.memory().peak / 2^20
end

local function run_torch(c)
  local cmd = string.format('%s%s %strain_torch.py %d %d %d %d %d %d %d %d %d %d', reference.prefix, opts.python, here,
    opts.threads, c.steps or opts.steps, c.d, c.layers, c.heads, c.kv, c.ffn, c.vocab, c.batch, c.seq)
  local p = io.popen(cmd)
  local out = p:read('*a')
  p:close()
  local tps, rss = out:match('([%d%.]+) ([%d%.]+)')
  return tonumber(tps), tonumber(rss)
end

print(empo.info().line)
print(string.format('training tokens/s (forward + backward + AdamW), %d threads, fastest of 2 x %d steps (qwen05: 2 x 2); ' ..
                    'PyTorch with OPENBLAS_CORETYPE=%s', opts.threads, opts.steps, reference.core))
print(string.format('%-6s %-10s %10s %10s %7s %12s %12s %12s', 'config', 'batch', 'empo', 'PyTorch', 'ratio',
  'empo peak', 'empo RSS', 'torch RSS'))
for _, c in ipairs(configs) do
  if opts.only == '' or opts.only == c.name then
    -- two rounds, empo and PyTorch taking turns, the best of each: the
    -- machine's speed drifts over seconds
    -- (peak: the lower of the two; the second round's may include the
    -- first's garbage not yet collected)
    local e, peak, t, trss = 0, math.huge, nil, nil
    for _ = 1, 2 do
      local e1, p1 = run_empo(c)
      e, peak = math.max(e, e1), math.min(peak, p1)
      empo.collect()
      empo.empty_cache()               -- empo's blocks go back to the system before PyTorch's run
      local t1, r1 = run_torch(c)
      if t1 then t, trss = math.max(t or 0, t1), math.max(trss or 0, r1) end
    end
    print(string.format('%-6s %-10s %10.0f %10.0f %6.2fx %10.1f MB %9.1f MB %9.1f MB', c.name,
      c.batch .. 'x' .. c.seq, e, t or 0, t and e / t or 0, peak, empo.logger.peak_rss_mb(), trss or 0))
  end
end
