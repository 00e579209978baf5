-- tests/bench/generate_bench.lua — sampling speed of empo.sample.generate
-- next to a PyTorch KV-cache decode loop of the same model and weights
-- (tests/bench/generate_torch.py), same thread count, in one run:
-- generated tokens/s (prefill included), time to the first token, peak
-- memory (empo: its peak of live tensor bytes and the process's peak RSS;
-- PyTorch: its process's peak RSS; each configuration runs in processes
-- of its own). Best of two rounds of `repeats` runs (after a warm-up),
-- empo and PyTorch taking turns.
--
--     empo run tests/bench/generate_bench.lua [threads=2] [repeats=3] [only=tiny] [c_decode=false]
--
-- c_decode=false runs empo's decode steps through the Lua model instead of
-- the C decode step (to see what the latter brings).
--
-- Workloads (the sampling engine's issue): T = 1, no stop, every sequence
-- runs to max_new_tokens; each prompt is prefilled once for its samples.
local empo = require 'empo'
local log = empo.logger

local opts = empo.config.apply({ threads = 2, repeats = 3, only = '', python = '/usr/bin/python3', c_decode = true }, arg,
                               'generate_bench')
empo.set_num_threads(opts.threads)
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'

local configs = {
  { name = 'tiny', d = 256, layers = 4, heads = 4, kv = 2, ffn = 704, vocab = 512, prompts = 8, n = 8, plen = 32, new = 96 },
  { name = 'small', d = 512, layers = 8, heads = 8, kv = 2, ffn = 1408, vocab = 4096, prompts = 8, n = 8, plen = 32, new = 96 },
  { name = 'arith', d = 128, layers = 3, heads = 4, kv = 2, ffn = 384, vocab = 80, prompts = 16, n = 8, plen = 100, new = 40 },
}

local tmp = os.tmpname()
os.remove(tmp)

local function new_model(c, dir)
  local model = empo.models.new({ model_type = 'qwen2', vocab_size = c.vocab, hidden_size = c.d,
    intermediate_size = c.ffn, num_hidden_layers = c.layers, num_attention_heads = c.heads,
    num_key_value_heads = c.kv, rope_theta = 10000, tie_word_embeddings = true }, 0)
  model:save_pretrained(dir)
  return model
end

-- best: the best figures so far, updated with `repeats` runs (after a warm-up)
local function run_empo(c, model, best)
  local prompts = empo.Generator(0, 0):randint(0, c.vocab, c.prompts, c.plen):tolist()
  for r = 0, opts.repeats do
    collectgarbage()
    local out, st = empo.sample.generate(model, nil, prompts, { n = c.n, temperature = 1.0,
                                                               max_new_tokens = c.new, seed = r,
                                                               c_decode = opts.c_decode })
    assert(st.tokens == c.prompts * c.n * c.new and #out == c.prompts * c.n)
    if r > 0 then
      best.tokens_per_s = math.max(best.tokens_per_s, st.tokens_per_s)
      best.time_to_first_token = math.min(best.time_to_first_token, st.time_to_first_token)
      best.peak_bytes = math.max(best.peak_bytes, st.peak_bytes)
    end
  end
end

local function run_torch(c, dir)
  local cmd = string.format("%s '%sgenerate_torch.py' %d '%s' %d %d %d %d %d", opts.python, here, opts.threads, dir,
                            c.prompts, c.n, c.plen, c.new, opts.repeats)
  local p = io.popen(cmd)
  local out = p:read('*a')
  p:close()
  local tps, ttft, rss = out:match('([%d%.]+) ([%d%.]+) ([%d%.]+)')
  return tonumber(tps), tonumber(ttft), tonumber(rss)
end

-- Two rounds of empo then PyTorch, the best of each side: the machine's
-- speed drifts over seconds, and alternating keeps one side from getting
-- only its slow spells.
local function row(c)
  local dir = tmp .. '/' .. c.name
  local model = new_model(c, dir)
  local e = { tokens_per_s = 0, time_to_first_token = math.huge, peak_bytes = 0 }
  local tps, ttft, trss = 0, math.huge, 0
  for _ = 1, 2 do
    run_empo(c, model, e)
    local t, f, r = run_torch(c, dir)
    if t then tps, ttft, trss = math.max(tps, t), math.min(ttft, f), math.max(trss, r) end
  end
  if tps == 0 then tps, ttft, trss = nil, nil, nil end
  os.execute("rm -rf '" .. tmp .. "'")
  return string.format('%-6s %-14s %9.0f %9.0f %6.2fx %8.1f ms %8.1f ms %7.1f MB %6.0f MB %6.0f MB', c.name,
    string.format('%dx%d %d+%d', c.prompts, c.n, c.plen, c.new), e.tokens_per_s, tps or 0,
    tps and e.tokens_per_s / tps or 0, 1000 * e.time_to_first_token, 1000 * (ttft or 0), e.peak_bytes / 2 ^ 20,
    empo.logger.peak_rss_mb(), trss or 0)
end

if opts.only ~= '' then   -- one configuration (a child process of the full run: its own RSS)
  for _, c in ipairs(configs) do
    if c.name == opts.only then print(row(c)) end
  end
  return
end
print(empo.info().line)
print(string.format('sampling: generated tokens/s (T = 1, prefill included), %d threads, best of 2 x %d, %s decode step',
                    opts.threads, opts.repeats, opts.c_decode and 'C' or 'Lua'))
print(string.format('%-6s %-14s %9s %9s %7s %10s %10s %10s %9s %9s', 'config', 'prompts x n', 'empo', 'PyTorch',
                    'ratio', 'empo TTFT', 'torch TTFT', 'empo peak', 'empo RSS', 'torch RSS'))
local script = debug.getinfo(1, 'S').source:sub(2)
for _, c in ipairs(configs) do
  local p = io.popen(string.format("'%s' run '%s' only=%s threads=%d repeats=%d python='%s' c_decode=%s", arg[-1],
                                   script, c.name, opts.threads, opts.repeats, opts.python, tostring(opts.c_decode)))
  io.write(p:read('*a'))
  p:close()
  io.stdout:flush()
end
