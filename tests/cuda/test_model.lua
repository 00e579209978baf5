-- tests/cuda/test_model.lua — a Qwen2 model on the GPU against the same
-- model on the CPU: every op of a training step on its own (values and
-- gradients), then the model's loss and gradients, then 20 AdamW steps
-- (losses within 1e-4). In CI on the emulated device (tests/CMakeLists.txt);
-- on a GPU machine on the real one (tests/device/check.sh).
local empo = require 'empo'
local check = require 'check'
local c = check.new('cuda/test_model')

check.need_cuda()

local function rel(a, b)   -- ||a - b|| / ||b|| of two tensors on any devices
  a, b = a:cpu(), b:cpu()
  local num, den = ((a - b) * (a - b)):sum():item(), (b * b):sum():item()
  return math.sqrt(num / (den > 0 and den or 1))
end

-- ---- op by op: each on both devices, the same inputs, loss = sum(y * w) ----
local function both(name, make, inputs, tol)
  local results = {}
  for _, device in ipairs { 'cpu', 'cuda' } do
    local leaves = {}
    for i, t in ipairs(inputs) do
      leaves[i] = t:detach():to(device)
      if t:dtype() == 'f32' then leaves[i]:requires_grad_() end
    end
    local y = make(unpack(leaves))
    empo.manual_seed(7)
    local w = empo.randn(y:size()):to(device)
    local loss = (y * w):sum()
    loss:backward()
    local grads = {}
    for i, l in ipairs(leaves) do grads[i] = l.requires_grad and l.grad or false end
    results[device] = { y = y, grads = grads }
  end
  local worst = rel(results.cuda.y, results.cpu.y)
  for i, g in ipairs(results.cpu.grads) do
    if g then worst = math.max(worst, rel(results.cuda.grads[i], g)) end
  end
  c.ok(worst <= (tol or 1e-5), string.format('%s: cuda within %.2g of cpu (values and gradients)', name, worst))
end

empo.manual_seed(1)
local x, w, b = empo.randn({ 6, 16 }), empo.randn({ 24, 16 }), empo.randn({ 24 })
both('linear with bias', function(x, w, b) return empo.linear(x, w, b) end, { x, w, b })
both('matmul (batched, broadcast)', function(a, b) return a:matmul(b) end, { empo.randn({ 2, 3, 5, 4 }), empo.randn({ 4, 7 }) })
both('add with broadcasting', function(a, b) return a + b end, { empo.randn({ 3, 1, 5 }), empo.randn({ 4, 1 }) })
both('mul, div, sub', function(a, b) return (a * b - a) / (b:abs() + 1) end, { empo.randn({ 4, 5 }), empo.randn({ 5 }) })
both('unary: exp, tanh, silu, scalars', function(a) return a:exp() + a:tanh() * 2 + empo.silu(a) - 1 end,
     { empo.randn({ 7, 9 }) })
both('sum, mean over dims', function(a) return a:sum(2) + a:mean(2) end, { empo.randn({ 5, 6 }) })
both('softmax, log_softmax', function(a) return a:softmax(2) + a:log_softmax(1) end, { empo.randn({ 4, 9 }) })
both('max over a dim', function(a) return (a:max(2)) end, { empo.randn({ 4, 9 }) })
both('rmsnorm', function(x, w) return empo.rmsnorm(x, w, 1e-6) end, { empo.randn({ 5, 32 }), empo.randn({ 32 }) })
both('swiglu', function(g, u) return empo.swiglu(g, u) end, { empo.randn({ 5, 12 }), empo.randn({ 5, 12 }) })
both('rope', function(q) return empo.rope(q, nil, 3, 10000) end, { empo.randn({ 2, 3, 5, 8 }) })
both('attention (grouped, causal)', function(q, k, v) return empo.attention(q, k, v, true) end,
     { empo.randn({ 2, 4, 5, 8 }), empo.randn({ 2, 2, 5, 8 }), empo.randn({ 2, 2, 5, 8 }) })
both('embedding', function(w, ids) return empo.embedding(w, ids) end,
     { empo.randn({ 11, 6 }), empo.tensor({ { 1, 4, 4 }, { 0, 10, 2 } }, { dtype = 'i64' }) })
both('logprob + entropy', function(l, ids)
  local lp, ent = empo.logprob_entropy(l, ids, { entropy = true })
  return lp + ent
end, { empo.randn({ 6, 40 }), empo.tensor({ 3, 0, 39, 7, 7, 1 }, { dtype = 'i64' }) })
both('narrow, select, expand (their gradients)', function(a)
  return a:narrow(2, 2, 3):sum(2) + a:select(2, 1) + a:narrow(2, 1, 1):expand(4, 6):sum(2)
end, { empo.randn({ 4, 6 }) })
both('cat (values and gradients split back)', function(a, b) return empo.cat({ a, b:transpose(1, 2), a }, 2) end,
     { empo.randn({ 3, 4 }), empo.randn({ 2, 3 }) })
both('where (b broadcast) and masked_fill', function(a, b)
  local cond = a:gt(0.3):to('f32')
  return empo.where(cond, a, b) + a:masked_fill(b:lt(0), -2.5)
end, { empo.randn({ 4, 6 }), empo.randn({ 6 }) })
both('transpose then contiguous', function(a) return a:transpose(1, 2):contiguous() * 2 end, { empo.randn({ 3, 4, 5 }) })

-- ---- the model: loss and gradients, then 20 AdamW steps ----
local cfg = check.tiny_hf({ tie_word_embeddings = false })
local cpu_model = empo.models.new(cfg, 5)
local gpu_model = empo.models.new(cfg, 5):to('cuda')
c.eq(gpu_model.model.embed_tokens.weight.device, 'cuda', 'model:to moves the parameters')
c.eq(#gpu_model:parameters(), #cpu_model:parameters(), 'every parameter is still there')
empo.manual_seed(3)
local ids = empo.randint(0, cfg.vocab_size, 2, 9)
local gpu_ids = ids:cuda()

local loss_cpu, loss_gpu = empo.train.lm_loss(cpu_model, ids), empo.train.lm_loss(gpu_model, gpu_ids)
c.ok(math.abs(loss_cpu:item() - loss_gpu:item()) < 1e-5,
     string.format('the loss: cpu %.7f, cuda %.7f', loss_cpu:item(), loss_gpu:item()))
loss_cpu:backward()
loss_gpu:backward()
local worst, where = 0, ''
local cp, gp = cpu_model:named_parameters(), gpu_model:named_parameters()
for i, p in ipairs(cp) do
  local e = rel(gp[i].tensor.grad, p.tensor.grad)
  if e > worst then worst, where = e, p.name end
end
c.ok(worst <= 1e-5, string.format('every gradient within %.2g (worst: %s)', worst, where))
c.eq(gp[1].tensor.grad.device, 'cuda', 'the gradients stay on the device')

-- a model on the device saves as the same checkpoint
local dir = check.tmpdir()
empo.models.save_pretrained(gpu_model, dir .. '/gpu')
empo.models.save_pretrained(cpu_model, dir .. '/cpu')
local a, b = io.open(dir .. '/gpu/model.safetensors', 'rb'), io.open(dir .. '/cpu/model.safetensors', 'rb')
c.ok(a:read('*a') == b:read('*a'), 'save_pretrained from the device writes the same bytes as from the cpu')
a:close(); b:close()

local opt_cpu = empo.optim.adamw { params = cpu_model:parameters(), lr = 1e-2 }
local opt_gpu = empo.optim.adamw { params = gpu_model:parameters(), lr = 1e-2 }
local max_gap, allocs_after_2 = 0, nil
for step = 1, 20 do
  if step == 3 then allocs_after_2 = empo.memory().cuda.allocs end
  for _, pair in ipairs { { cpu_model, opt_cpu, ids }, { gpu_model, opt_gpu, gpu_ids } } do
    pair[2]:zero_grad()
    local loss = empo.train.lm_loss(pair[1], pair[3])
    loss:backward()
    empo.clip_grad_norm(pair[1]:parameters(), 1.0)
    pair[2]:step()
    pair.loss = loss:item()
  end
  local a = empo.train.lm_loss(cpu_model, ids):item()
  local b = empo.train.lm_loss(gpu_model, gpu_ids):item()
  max_gap = math.max(max_gap, math.abs(a - b))
  empo.collect()   -- the step's tensors go now (as refcounting would), so the next step reuses their blocks
  if step == 20 then
    c.ok(max_gap <= 1e-4, string.format('20 AdamW steps: losses within %.2g (cpu %.6f, cuda %.6f at step 20)',
                                        max_gap, a, b))
    local allocs = empo.memory().cuda.allocs
    c.ok(allocs == allocs_after_2, string.format('steps 3 to 20 ask the device for no new memory (%d blocks, then %d)',
                                                 allocs_after_2, allocs))
  end
end
c.done()
