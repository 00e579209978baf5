-- tests/bench/decode_step_bench.lua — the C decode step against the Lua
-- model's, on the sampling benchmark's workloads (generate_bench.lua), in
-- one process with the two taking turns call by call (the machine's speed
-- drifts): the time of a decode step (the call's time after its first
-- token, over its steps), median and best of `reps` calls each.
-- against=bf16 races the C decode step on f32 weights against the same on
-- bf16 copies (sample option bf16_weights) instead, and prints how far
-- the sampled log-probs moved (mean and largest |difference| over the
-- tokens both drew alike; the draws are the same uniforms, so the tokens
-- agree until a near tie flips one); rows=N cuts each workload to N
-- samples of one prompt (few rows: where the weights' bytes decide).
--
--     empo run tests/bench/decode_step_bench.lua [threads=2] [reps=6] [only=arith] [against=lua|bf16] [rows=N]
local empo = require 'empo'

local opts = empo.config.apply({ threads = 2, reps = 6, only = '', against = 'lua', rows = 0 }, arg,
                               'decode_step_bench')
if opts.against ~= 'lua' and opts.against ~= 'bf16' then error('decode_step_bench: against must be lua or bf16', 0) end
local bf16 = opts.against == 'bf16'
empo.set_num_threads(opts.threads)

local configs = {
  { name = 'tiny', d = 256, layers = 4, heads = 4, kv = 2, ffn = 704, vocab = 512, prompts = 8, n = 8, plen = 32, new = 96 },
  { name = 'small', d = 512, layers = 8, heads = 8, kv = 2, ffn = 1408, vocab = 4096, prompts = 8, n = 8, plen = 32, new = 96 },
  { name = 'arith', d = 128, layers = 3, heads = 4, kv = 2, ffn = 384, vocab = 80, prompts = 16, n = 8, plen = 100, new = 40 },
}

local other = bf16 and 'bf16' or 'Lua'
print(empo.info().line)
print(string.format('decode step (ms), %d threads, C and %s taking turns, %d calls each', opts.threads,
                    bf16 and 'C on bf16 weights' or 'Lua', opts.reps))
print(string.format('%-6s %5s %10s %10s %10s %10s %7s%s', 'config', 'rows', 'C median', 'C best', other .. ' median',
                    other .. ' best', bf16 and 'bf16/f32' or 'Lua/C', bf16 and '   sampled log-prob change: mean, largest' or ''))
for _, c in ipairs(configs) do
  if opts.only == '' or opts.only == c.name then
    local model = empo.models.new({ model_type = 'qwen2', vocab_size = c.vocab, hidden_size = c.d,
      intermediate_size = c.ffn, num_hidden_layers = c.layers, num_attention_heads = c.heads,
      num_key_value_heads = c.kv, rope_theta = 10000, tie_word_embeddings = true }, 0)
    local np, n = c.prompts, c.n
    if opts.rows > 0 then np, n = 1, opts.rows end
    local prompts = empo.Generator(0, 0):randint(0, c.vocab, np, c.plen):tolist()
    local t = { [true] = {}, [false] = {} }
    local diff, worst, count = 0, 0, 0
    for r = 0, opts.reps do   -- r = 0 warms up
      local outs = {}
      for _, on in ipairs({ true, false }) do
        local out, st = empo.sample.generate(model, nil, prompts, { n = n, max_new_tokens = c.new, seed = r,
                                                                    c_decode = on or bf16,
                                                                    bf16_weights = bf16 and not on })
        assert(st.decode == ((on or bf16) and 'c' or 'lua') and st.weights == ((bf16 and not on) and 'bf16' or 'f32'))
        if r > 0 then t[on][r] = (st.seconds - st.time_to_first_token) / st.steps * 1e3 end
        outs[on] = out
      end
      for i, a in ipairs(outs[true]) do   -- each sample's tokens up to the first that differs
        local b = outs[false][i]
        for k = 1, #a.ids do
          if b.ids[k] ~= a.ids[k] then break end
          local d = math.abs(a.logprobs[k] - b.logprobs[k])
          diff, worst, count = diff + d, math.max(worst, d), count + 1
        end
      end
    end
    for _, on in ipairs({ true, false }) do table.sort(t[on]) end
    local med = function(x) return x[math.ceil(#x / 2)] end
    print(string.format('%-6s %5d %10.3f %10.3f %10.3f %10.3f %6.2fx%s', c.name, np * n, med(t[true]), t[true][1],
                        med(t[false]), t[false][1], med(t[false]) / med(t[true]),
                        bf16 and string.format('   %.2e, %.2e over %d tokens', diff / count, worst, count) or ''))
    model = nil
    collectgarbage()
  end
end
