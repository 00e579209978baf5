-- tests/parity/test_lora.lua — empo.nn.lora against a PyTorch LoRA forward
-- (tests/parity/lora_ref.py, float64) on random-weight tiny checkpoints:
-- the adapter directory is the oracle's, written in PEFT's layout, so this
-- also proves empo reads an adapter made elsewhere. Logits, the masked LM
-- loss and the gradient of every A and B (relative error <= 1e-5), on an
-- f32 base and on a bf16 base (the checkpoint in bf16: both sides read the
-- same values). Then: finite differences of the adapters' gradients, the
-- step-0 model equal to its base exactly, the merged checkpoint's logits,
-- and a save -> load -> save round trip byte for byte.
local source = os.getenv('EMPO_SOURCE_DIR') or '.'
local empo = require 'empo'
local lora = require 'empo.nn.lora'
local check = require 'check'
local c = check.new('test_lora')
local python = os.getenv('EMPO_PYTHON') or '/usr/bin/python3'
local TOL = 1e-5

local tmp = check.tmpdir()
local rel_err = check.rel_err

local HF = { model_type = 'qwen2', vocab_size = 67, hidden_size = 32, intermediate_size = 56, num_hidden_layers = 2,
             num_attention_heads = 4, num_key_value_heads = 2, rms_norm_eps = 1e-5, rope_theta = 1000,
             max_position_embeddings = 64, initializer_range = 0.15, tie_word_embeddings = false }

-- every matrix of a model in bf16 (what a Hugging Face bf16 checkpoint holds)
local function to_bf16(m)
  for _, p in ipairs(m:named_parameters()) do
    if p.tensor:dim() == 2 then
      local owner, name = m, nil
      for part in p.name:gmatch('[^%.]+') do
        if name then owner = owner[name] end
        name = part
      end
      owner[name] = p.tensor:detach():to('bf16')
    end
  end
  return m
end

local gen = empo.Generator(7, 0)
local ids = gen:randint(0, 67, 3, 11)
local mask = empo.lt(gen:rand(3, 11), 0.5):to('f32')
mask[{ 1, 2 }] = 1

local cases = {
  { name = 'f32 base, all projections', base = 'f32', rank = 4, alpha = 8, targets = lora.ALL },
  { name = 'bf16 base, q/v, rslora', base = 'bf16', rank = 3, alpha = 5, targets = { 'q_proj', 'v_proj' },
    rslora = true },
  { name = 'bf16 base tied, mlp', base = 'bf16', rank = 2, alpha = 2, targets = { 'gate_proj', 'up_proj', 'down_proj' },
    tied = true },
}

for i, case in ipairs(cases) do
  local hf = {}
  for k, v in pairs(HF) do hf[k] = v end
  hf.tie_word_embeddings = case.tied == true
  local dir, adir = string.format('%s/base%d', tmp, i), string.format('%s/adapter%d', tmp, i)
  local made = empo.models.new(hf, i)
  if case.base == 'bf16' then to_bf16(made) end
  made:save_pretrained(dir)
  empo.safetensors.save(dir .. '/inputs.safetensors', { ids = ids, mask = mask })
  local out = dir .. '/ref.safetensors'
  local cmd = string.format("%s '%s/tests/parity/lora_ref.py' '%s' '%s' '%s' '%s' %d %g %s %s", python, source, dir,
                            adir, dir .. '/inputs.safetensors', out, case.rank, case.alpha,
                            table.concat(case.targets, ','), case.rslora and 'rslora' or '')
  c.ok(os.execute(cmd) == 0, case.name .. ': the reference ran')
  local ref = empo.safetensors.load(out, { dtype = 'f32' })

  local model = empo.models.from_pretrained(dir, { dtype = case.base })
  lora.load(model, adir)                 -- the oracle's adapter, PEFT's layout
  c.eq(model.lora.rank, case.rank, case.name .. ': rank read from adapter_config.json')
  local logits = empo.no_grad(function() return model(ids) end)
  local e = rel_err(logits, ref.logits)
  c.ok(e <= TOL, string.format('%s: logits rel err %.2e', case.name, e))
  local loss = empo.train.lm_loss(model, ids, mask)
  loss:backward()
  local le = math.abs(loss:item() - ref.loss:item()) / math.abs(ref.loss:item())
  c.ok(le <= TOL, string.format('%s: loss %.7f vs %.7f', case.name, loss:item(), ref.loss:item()))
  local worst, worst_name, n = 0, '', 0
  for _, p in ipairs(lora.named_parameters(model)) do
    local g, rg = p.tensor.grad, ref['grad.' .. lora.PREFIX .. p.name]
    if g and rg then
      n = n + 1
      local pe = rel_err(g, rg)
      if pe > worst then worst, worst_name = pe, p.name end
    end
  end
  c.ok(n == 2 * #case.targets * HF.num_hidden_layers and worst <= TOL,
       string.format('%s: %d adapter gradients, worst rel err %.2e (%s)', case.name, n, worst, worst_name))
  local frozen = 0
  for _, p in ipairs(model:named_parameters()) do
    if not p.name:match('lora_') and p.tensor.grad then frozen = frozen + 1 end
  end
  c.eq(frozen, 0, case.name .. ': no base parameter gets a gradient')
  print(string.format('%-28s logits %.2e  loss %.2e  adapter grads worst %.2e', case.name, e, le, worst))
end

-- ---- finite differences (f32 base, central differences in f32) ----
do
  local model = empo.models.from_pretrained(tmp .. '/base1')
  lora.load(model, tmp .. '/adapter1')
  local function loss_of() return empo.no_grad(function() return empo.train.lm_loss(model, ids, mask):item() end) end
  local loss = empo.train.lm_loss(model, ids, mask)
  loss:backward()
  local worst = 0
  local params = lora.named_parameters(model)
  for k, pick in ipairs({ 1, 6, #params - 1, #params }) do
    local p = params[pick].tensor
    local flat = p:view(-1)
    local at = (k * 7919) % p:numel()
    local x0 = flat[at + 1]
    local h = 1e-2
    empo.no_grad(function() flat[at + 1] = x0 + h end)
    local up = loss_of()
    empo.no_grad(function() flat[at + 1] = x0 - h end)
    local down = loss_of()
    empo.no_grad(function() flat[at + 1] = x0 end)
    local fd, g = (up - down) / (2 * h), p.grad:view(-1)[at + 1]
    worst = math.max(worst, math.abs(fd - g) / math.max(math.abs(fd), 1e-3))
  end
  c.ok(worst <= 2e-2, string.format('adapter gradients equal central differences (worst rel %.2e)', worst))
end

-- ---- step 0: a fresh adapter's model is its base, exactly ----
do
  local base = empo.models.from_pretrained(tmp .. '/base2', { dtype = 'bf16' })
  local want = empo.no_grad(function() return base(ids) end)
  lora.apply(base, { rank = 8, alpha = 16 })
  local got = empo.no_grad(function() return base(ids) end)
  c.eq((got - want):abs():max():item(), 0, 'a fresh adapter (B = 0) gives the base logits exactly')
  local view = lora.base_view(base)
  c.ok(view.model.layers:at(1).self_attn.q_proj.weight == base.model.layers:at(1).self_attn.q_proj.weight,
       'the base view shares the base weights (no copy)')
  c.eq(#lora.parameters(view) + 0, 0, 'the base view has no adapters')
end

-- ---- merge: the merged checkpoint's logits; the round trip ----
do
  local model = empo.models.from_pretrained(tmp .. '/base1')
  lora.load(model, tmp .. '/adapter1')
  local want = empo.no_grad(function() return model(ids) end)
  lora.merge(model)
  c.ok(model:is_stock(), 'a merged model is a stock model again (the C decoder runs it)')
  model:save_pretrained(tmp .. '/merged')
  local merged = empo.models.from_pretrained(tmp .. '/merged')
  local e = rel_err(empo.no_grad(function() return merged(ids) end), want)
  c.ok(e <= TOL, string.format('merged checkpoint logits = base + adapter forward (rel err %.2e)', e))

  local m2 = empo.models.from_pretrained(tmp .. '/base1')
  lora.load(m2, tmp .. '/adapter1')
  lora.save(m2, tmp .. '/again1')
  local m3 = empo.models.from_pretrained(tmp .. '/base1')
  lora.load(m3, tmp .. '/again1')
  lora.save(m3, tmp .. '/again2')
  local function same(f)
    return empo.fs.read_text(tmp .. '/again1/' .. f) == empo.fs.read_text(tmp .. '/again2/' .. f)
  end
  c.ok(same('adapter_model.safetensors') and same('adapter_config.json'), 'save -> load -> save is byte-identical')
end

os.execute("rm -rf '" .. tmp .. "'")
c.done()
