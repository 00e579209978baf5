-- tests/bench/decode_step_bench.lua — the C decode step against the Lua
-- model's, on the sampling benchmark's workloads (generate_bench.lua), in
-- one process with the two taking turns call by call (the machine's speed
-- drifts): the time of a decode step (the call's time after its first
-- token, over its steps), median and best of `reps` calls each.
--
--     empo run tests/bench/decode_step_bench.lua [threads=2] [reps=6] [only=arith]
local empo = require 'empo'

local opts = empo.config.apply({ threads = 2, reps = 6, only = '' }, arg, 'decode_step_bench')
empo.set_num_threads(opts.threads)

local configs = {
  { name = 'tiny', d = 256, layers = 4, heads = 4, kv = 2, ffn = 704, vocab = 512, prompts = 8, n = 8, plen = 32, new = 96 },
  { name = 'small', d = 512, layers = 8, heads = 8, kv = 2, ffn = 1408, vocab = 4096, prompts = 8, n = 8, plen = 32, new = 96 },
  { name = 'arith', d = 128, layers = 3, heads = 4, kv = 2, ffn = 384, vocab = 80, prompts = 16, n = 8, plen = 100, new = 40 },
}

print(string.format('decode step (ms), %d threads, C and Lua taking turns, %d calls each', opts.threads, opts.reps))
print(string.format('%-6s %10s %10s %10s %10s %7s', 'config', 'C median', 'C best', 'Lua median', 'Lua best', 'ratio'))
for _, c in ipairs(configs) do
  if opts.only == '' or opts.only == c.name then
    local model = empo.models.new({ model_type = 'qwen2', vocab_size = c.vocab, hidden_size = c.d,
      intermediate_size = c.ffn, num_hidden_layers = c.layers, num_attention_heads = c.heads,
      num_key_value_heads = c.kv, rope_theta = 10000, tie_word_embeddings = true }, 0)
    local prompts = empo.Generator(0, 0):randint(0, c.vocab, c.prompts, c.plen):tolist()
    local t = { [true] = {}, [false] = {} }
    for r = 0, opts.reps do   -- r = 0 warms up
      for _, on in ipairs({ true, false }) do
        local _, st = empo.sample.generate(model, nil, prompts, { n = c.n, max_new_tokens = c.new, seed = r,
                                                                  c_decode = on })
        assert(st.decode == (on and 'c' or 'lua'))
        if r > 0 then t[on][r] = (st.seconds - st.time_to_first_token) / st.steps * 1e3 end
      end
    end
    for _, on in ipairs({ true, false }) do table.sort(t[on]) end
    local med = function(x) return x[math.ceil(#x / 2)] end
    print(string.format('%-6s %10.3f %10.3f %10.3f %10.3f %6.2fx', c.name, med(t[true]), t[true][1], med(t[false]),
                        t[false][1], med(t[false]) / med(t[true])))
    model = nil
    collectgarbage()
  end
end
