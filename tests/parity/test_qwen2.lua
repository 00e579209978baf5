-- tests/parity/test_qwen2.lua — empo.models against the PyTorch reference
-- decoder (tests/parity/qwen2_ref.py, float64) on random-weight tiny
-- checkpoints that empo writes: logits, the masked LM loss and every
-- parameter's gradient, for GQA with q/k/v biases (untied and tied heads),
-- Llama with attention_bias and one KV head, and Mistral. Relative errors
-- (‖empo − ref‖ / ‖ref‖) must stay within 1e-4.
local source = os.getenv('EMPO_SOURCE_DIR') or '.'
package.path = source .. '/tests/lua/?.lua;' .. package.path
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_qwen2')
local python = os.getenv('EMPO_PYTHON') or '/usr/bin/python3'
local TOL = 1e-4

local tmp = check.tmpdir()
local rel_err = check.rel_err

local cases = {
  { name = 'qwen2 GQA untied', cfg = { model_type = 'qwen2', num_attention_heads = 4, num_key_value_heads = 2 } },
  { name = 'qwen2 GQA tied', cfg = { model_type = 'qwen2', num_attention_heads = 4, num_key_value_heads = 2,
                                     tie_word_embeddings = true } },
  { name = 'llama bias, 1 KV head', cfg = { model_type = 'llama', attention_bias = true, num_attention_heads = 4,
                                            num_key_value_heads = 1 } },
  { name = 'mistral MHA', cfg = { model_type = 'mistral', num_attention_heads = 2, num_key_value_heads = 2 } },
}

for i, case in ipairs(cases) do
  local hf = { vocab_size = 67, hidden_size = 32, intermediate_size = 56, num_hidden_layers = 2, rms_norm_eps = 1e-5,
               rope_theta = 1000, max_position_embeddings = 64, initializer_range = 0.15, tie_word_embeddings = false }
  for k, v in pairs(case.cfg) do hf[k] = v end
  local model = empo.models.new(hf, i)
  local dir = string.format('%s/model%d', tmp, i)
  model:save_pretrained(dir)

  local gen = empo.Generator(100 + i, 0)
  local ids = gen:randint(0, 67, 3, 13)
  local mask = empo.lt(gen:rand(3, 13), 0.3):to('f32')      -- ~30% of positions count
  mask[{ 1, 2 }] = 1
  local logits = empo.no_grad(function() return model(ids) end)
  local loss = empo.train.lm_loss(model, ids, mask)
  loss:backward()
  empo.safetensors.save(dir .. '/inputs.safetensors', { ids = ids, mask = mask })

  local out = dir .. '/ref.safetensors'
  local cmd = string.format("%s '%s/tests/parity/qwen2_ref.py' '%s' '%s' '%s'", python, source, dir,
                            dir .. '/inputs.safetensors', out)
  c.ok(os.execute(cmd) == 0, case.name .. ': reference ran')
  local ref = empo.safetensors.load(out, { dtype = 'f32' })
  local e = rel_err(logits, ref.logits)
  c.ok(e <= TOL, string.format('%s: logits rel err %.2e', case.name, e))
  e = math.abs(loss:item() - ref.loss:item()) / math.abs(ref.loss:item())
  c.ok(e <= TOL, string.format('%s: loss %.6f vs %.6f', case.name, loss:item(), ref.loss:item()))
  local worst, worst_name, n = 0, '', 0
  for _, p in ipairs(model:named_parameters()) do
    local g, rg = p.tensor.grad, ref['grad.' .. p.name]
    if not g or not rg then
      c.ok(false, case.name .. ': gradient missing for ' .. p.name)
    else
      n = n + 1
      local pe = rel_err(g, rg)
      if pe > worst then worst, worst_name = pe, p.name end
    end
  end
  c.ok(n == #model:named_parameters() and worst <= TOL,
       string.format('%s: %d parameter gradients, worst rel err %.2e (%s)', case.name, n, worst, worst_name))
  print(string.format('%-24s logits %.2e  loss %.2e  grads worst %.2e', case.name, rel_err(logits, ref.logits),
                      math.abs(loss:item() - ref.loss:item()) / math.abs(ref.loss:item()), worst))
end

os.execute("rm -rf '" .. tmp .. "'")
c.done()
