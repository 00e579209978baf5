-- tests/bench/token_stats.lua — what the token rewards (RENT's neg_entropy,
-- Intuitor's self_certainty) cost: sampling alone, sampling with the
-- per-token entropy and self-certainty computed in C from the draw's logits
-- (token_stats = true), and the teacher-forced forward pass the trainer
-- ran for them before; same model, prompts and threads, best of 3 after a
-- warm-up, in one process.
--
--     empo run tests/bench/token_stats.lua
local empo = require 'empo'
local logprob = require 'empo.rl.logprob'
empo.set_num_threads(2)
print(empo.info().line)
local clock = empo.logger.clock
for _, c in ipairs({
  { name = 'arith', d = 128, layers = 3, heads = 4, kv = 2, ffn = 384, vocab = 80, prompts = 16, n = 8, plen = 100, new = 40 },
  { name = 'tiny', d = 256, layers = 4, heads = 4, kv = 2, ffn = 704, vocab = 512, prompts = 8, n = 8, plen = 32, new = 96 } }) do
  local model = empo.models.new({ model_type = 'qwen2', vocab_size = c.vocab, hidden_size = c.d,
    intermediate_size = c.ffn, num_hidden_layers = c.layers, num_attention_heads = c.heads,
    num_key_value_heads = c.kv, rope_theta = 10000, tie_word_embeddings = true }, 0)
  local prompts = empo.Generator(0, 0):randint(0, c.vocab, c.prompts, c.plen):tolist()
  local best = { plain = 1e9, stats = 1e9, forced = 1e9 }
  for r = 0, 3 do
    local o = { n = c.n, temperature = 1.0, max_new_tokens = c.new, ignore_eos = true, seed = r }
    collectgarbage()
    local t0 = clock(); empo.sample.generate(model, nil, prompts, o); local t1 = clock()
    o.token_stats = true
    local out = empo.sample.generate(model, nil, prompts, o); local t2 = clock()
    local rows = {}
    for i, s in ipairs(out) do rows[i] = { prompt = prompts[s.prompt], completion = s.ids } end
    local t3 = clock()
    for _, idx in ipairs(logprob.micro_batches(rows, 8192)) do
      local sub = {}
      for k, i in ipairs(idx) do sub[k] = rows[i] end
      empo.no_grad(logprob.completions, model, sub, { temperature = 1.0, self_certainty = true })
    end
    local t4 = clock()
    if r > 0 then
      best.plain, best.stats, best.forced = math.min(best.plain, t1 - t0), math.min(best.stats, t2 - t1), math.min(best.forced, t4 - t3)
    end
  end
  print(string.format('%s: sampling %.1f ms, with token stats %.1f ms (+%.1f ms); the teacher-forced pass it replaces %.1f ms',
    c.name, best.plain * 1e3, best.stats * 1e3, (best.stats - best.plain) * 1e3, best.forced * 1e3))
end
