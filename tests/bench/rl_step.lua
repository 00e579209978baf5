-- tests/bench/rl_step.lua — one EMPO step's wall time by phase (sampling,
-- clustering and rewards, the policy update's log-probs + backward, the
-- optimizer) next to the same step in PyTorch (tests/bench/rl_step_torch.py:
-- KV-cache sampling plus the update, same model, weights, G, B, lengths and
-- threads), in one run; best of `repeats` after a warm-up, peak memory of
-- both. One line per size ends in the ratio. The update runs both ways on
-- the same rows, per sequence and with shared prompts (the prompt once per
-- group), and the line gives both; the step's total is the recipe
-- default's (shared_prompt = 'auto', which picks one by shape).
--
--     empo run tests/bench/rl_step.lua [threads=2] [repeats=3] [only=arith]
local empo = require 'empo'
local trainer_mod = require 'empo.rl.trainer'

local opts = empo.config.apply({ threads = 2, repeats = 3, only = '', python = '/usr/bin/python3' }, arg, 'rl_step')
empo.set_num_threads(opts.threads)
local here = debug.getinfo(1, 'S').source:sub(2):match('(.*/)') or './'
local reference = dofile(here .. 'reference_env.lua')    -- OpenBLAS's core for the PyTorch process only
opts.torch_env = reference.prefix
local clock = empo.logger.clock

local configs = {
  { name = 'arith', d = 128, layers = 3, heads = 4, kv = 2, ffn = 384, vocab = 80, prompts = 16, n = 8, plen = 100, new = 40 },
  { name = 'tiny', d = 256, layers = 4, heads = 4, kv = 2, ffn = 704, vocab = 512, prompts = 8, n = 8, plen = 32, new = 96 },
  -- Qwen2.5-0.5B's shape; one repeat (a step is minutes on 2 cores); PyTorch's update in micro-batches
  -- of 2 sequences (TRL's per_device_train_batch_size; at 8 its activations took 14 GB and were killed);
  -- empo under a 10.5 GB memory plan, without the other update path beside (its gradient copy is 1.8 GB)
  { name = 'qwen05', d = 896, layers = 24, heads = 14, kv = 2, ffn = 4864, vocab = 151936, prompts = 2, n = 8,
    plen = 128, new = 128, repeats = 1, torch_micro = 2, rope = 1000000, memory_gb = 10.5, side_by_side = false },
}

local function run_empo(c, dir)
  local model = empo.models.new({ model_type = 'qwen2', vocab_size = c.vocab, hidden_size = c.d,
    intermediate_size = c.ffn, num_hidden_layers = c.layers, num_attention_heads = c.heads,
    num_key_value_heads = c.kv, rope_theta = c.rope or 10000, tie_word_embeddings = true }, 0)
  model:save_pretrained(dir)
  -- the trainer's update path; sampling and scoring are driven here on token ids
  local t = trainer_mod.new({ model = model, tokenizer = {}, data = empo.data.list({ 'x' }),
                              sample = { n = c.n, temperature = 1.0, max_new_tokens = c.new },
                              loss = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28 },
                              optim = { lr = 1e-5, clip_grad = 1.0 }, micro_batch_tokens = 8192,
                              memory_gb = c.memory_gb })
  local prompts = empo.Generator(0, 0):randint(0, c.vocab, c.prompts, c.plen):tolist()
  local best = { sample = math.huge, score = math.huge, update = math.huge, optim = math.huge, step = math.huge,
                 per_seq = math.huge, shared = math.huge }
  local chosen   -- the path 'auto' took (the warm-up sets it)
  for r = 0, c.repeats or opts.repeats do
    collectgarbage()
    local t0 = clock()
    local out = empo.sample.generate(model, nil, prompts, { n = c.n, temperature = 1.0, max_new_tokens = c.new,
                                                           ignore_eos = true, seed = r })
    local t1 = clock()
    local rows = {}
    for i = 1, c.prompts do
      local answers = {}
      for k = 1, c.n do                                   -- an "answer": the completion's last token, as text
        local ids = out[(i - 1) * c.n + k].ids
        answers[k] = tostring(ids[#ids] % 10)
      end
      local g = empo.rl.score(answers, { extract = false, cluster = empo.cluster.math })
      for k = 1, c.n do
        local s = out[(i - 1) * c.n + k]
        rows[#rows + 1] = { prompt = prompts[i], completion = s.ids, old = s.logprobs, adv = g.advantages[k] }
      end
    end
    local t2 = clock()
    local upd = t:update(rows)
    local t3 = clock()
    chosen = upd.shared_prompt
    -- the other path on the same rows, for the side-by-side (its gradients are dropped)
    local other = not upd.shared_prompt
    local o0, o1 = 0, 0 / 0                       -- (NaN: not measured)
    if c.side_by_side ~= false then
      local grads = {}
      for i, p in ipairs(t.params) do grads[i] = p.grad and p.grad:clone() end
      t.opt:zero_grad()
      t.recipe.shared_prompt = other
      o0 = clock()
      t:update(rows)
      o1 = clock()
      t.recipe.shared_prompt = 'auto'
      for i, p in ipairs(t.params) do if grads[i] then p.grad:copy_(grads[i]) end end
      grads = nil                                 -- garbage before the optimizer step
    end
    local t3b = clock()
    empo.clip_grad_norm(t.params, 1.0)
    t.opt:step()
    t.opt:zero_grad()
    local t4 = clock()
    if r > 0 then
      best.sample, best.score = math.min(best.sample, t1 - t0), math.min(best.score, t2 - t1)
      best.update, best.optim = math.min(best.update, t3 - t2), math.min(best.optim, t4 - t3b)
      best.step = math.min(best.step, (t3 - t0) + (t4 - t3b))   -- the side-by-side run left out
      local mine, theirs = t3 - t2, o1 - o0
      if other then mine, theirs = theirs, mine end        -- mine: shared
      best.shared, best.per_seq = math.min(best.shared, mine), math.min(best.per_seq, theirs)
    end
  end
  best.peak = empo.memory().peak / 2 ^ 20
  best.chosen = chosen and 'shared' or 'per-seq'
  return best
end

local function row(c)
  local dir = os.tmpname()
  os.remove(dir)
  local e = run_empo(c, dir)
  empo.collect()                    -- this process's tensors go back to the system before PyTorch's run
  empo.empty_cache()
  local p = io.popen(string.format("%s%s '%srl_step_torch.py' %d '%s' %d %d %d %d %d %d", opts.torch_env, opts.python,
                                   here, opts.threads, dir, c.prompts, c.n, c.plen, c.new, c.repeats or opts.repeats,
                                   c.torch_micro or 0))
  local line = p:read('*a')
  p:close()
  os.execute("rm -rf '" .. dir .. "'")
  local ts, tu, tt, trss = line:match('([%d.]+) ([%d.]+) ([%d.]+) ([%d.]+)')
  if not ts then error('rl_step: the PyTorch side printed: ' .. line) end
  return string.format('%-6s %-12s | empo: sample %7.1f  score %5.1f  update %7.1f (%s)  optim %5.1f  = %7.1f ms, ' ..
                       'peak %5.1f MB, RSS %5.0f MB | update per-seq %7.1f  shared %7.1f ms = %.2fx | ' ..
                       'torch: sample %7.1f  update %7.1f  = %7.1f ms, RSS %5.0f MB | %.2fx',
                       c.name, string.format('%dx%d %d+%d', c.prompts, c.n, c.plen, c.new), 1e3 * e.sample,
                       1e3 * e.score, 1e3 * e.update, e.chosen, 1e3 * e.optim, 1e3 * e.step, e.peak,
                       empo.logger.peak_rss_mb(), 1e3 * e.per_seq, 1e3 * e.shared, e.per_seq / e.shared,
                       1e3 * tonumber(ts), 1e3 * tonumber(tu), 1e3 * tonumber(tt), tonumber(trss),
                       tonumber(tt) / e.step)
end

if opts.only ~= '' then
  for _, c in ipairs(configs) do
    if c.name == opts.only then print(row(c)) end
  end
  return
end
print(empo.info().line)
print(string.format('one EMPO step (G samples of B prompts + the policy update), %d threads, best of %d ' ..
                    '(qwen05: 1); PyTorch with OPENBLAS_CORETYPE=%s', opts.threads, opts.repeats, reference.core))
for _, c in ipairs(configs) do    -- each size in a process of its own (peak memory per size)
  local p = io.popen(string.format("'%s' run '%s' only=%s threads=%d repeats=%d python='%s'", arg[-1],
                                   debug.getinfo(1, 'S').source:sub(2), c.name, opts.threads, opts.repeats, opts.python))
  io.write(p:read('*a'))
  p:close()
end
