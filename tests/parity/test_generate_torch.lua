-- tests/parity/test_generate_torch.lua — greedy generation by
-- empo.sample.generate (KV cache, rows at their own lengths, batch limits
-- that force admission of waiting prompts) against the PyTorch reference
-- decoder in float64 re-running the full sequence at every step
-- (tests/parity/generate_ref.py): the same tokens, and log-probs within 1e-4,
-- for prompts of different lengths on random-weight checkpoints that empo
-- writes (Qwen2 with GQA, Llama with one KV head and a tied head).
local source = os.getenv('EMPO_SOURCE_DIR') or '.'
package.path = source .. '/tests/lua/?.lua;' .. package.path
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_generate_torch')
local python = os.getenv('EMPO_PYTHON') or '/usr/bin/python3'

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local prompts = { { 3, 14, 15, 9, 2, 6 }, { 53 }, { 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8, 3, 2, 7 }, { 9, 5 } }
local NEW = 16

local cases = {
  { name = 'qwen2 GQA', cfg = { model_type = 'qwen2', num_attention_heads = 4, num_key_value_heads = 2 } },
  { name = 'llama, 1 KV head, tied', cfg = { model_type = 'llama', num_attention_heads = 4, num_key_value_heads = 1,
                                             tie_word_embeddings = true } },
}

for i, case in ipairs(cases) do
  local hf = { vocab_size = 67, hidden_size = 32, intermediate_size = 56, num_hidden_layers = 2, rms_norm_eps = 1e-5,
               rope_theta = 1000, max_position_embeddings = 64, initializer_range = 0.3, tie_word_embeddings = false }
  for k, v in pairs(case.cfg) do hf[k] = v end
  local model = empo.models.new(hf, 20 + i)
  local dir = string.format('%s/model%d', tmp, i)
  model:save_pretrained(dir)
  local f = io.open(dir .. '/prompts.json', 'w')
  f:write(empo.json.encode(prompts))
  f:close()
  local p = io.popen(string.format("%s '%s/tests/parity/generate_ref.py' '%s' '%s' %d", python, source, dir,
                                   dir .. '/prompts.json', NEW))
  local ref = empo.json.decode(p:read('*a'))
  p:close()
  c.ok(type(ref) == 'table' and #ref == #prompts, case.name .. ': the reference ran')
  for _, max_batch in ipairs({ false, 1 }) do
    local out = empo.sample.generate(model, nil, prompts, { temperature = 0, max_new_tokens = NEW,
                                                           max_batch = max_batch or nil })
    local same, worst = 0, 0
    for j, r in ipairs(ref or {}) do
      if check.same(out[j].ids, r.ids) then same = same + 1 end
      for t = 1, math.min(#r.logprobs, #out[j].ids) do
        worst = math.max(worst, math.abs(out[j].ref_logprobs[t] - r.logprobs[t]))
      end
    end
    local label = string.format('%s, max_batch %s', case.name, tostring(max_batch or 'all'))
    c.eq(same, #prompts, label .. ': greedy tokens equal PyTorch\'s for every prompt')
    c.ok(worst < 1e-4, string.format('%s: log-probs within 1e-4 of PyTorch float64 (%.2e)', label, worst))
  end
end

os.execute("rm -rf '" .. tmp .. "'")
c.done()
