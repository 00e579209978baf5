-- tests/cuda/test_dist_device.lua — the gradients of parameters on the GPU
-- summed by empo.dist, one rank: exact mode through host memory (fold
-- downloads, the reduction uploads), and with EMPO_DIST_NCCL=1 (as
-- tests/device/check.sh runs it on a GPU) the fast mode through NCCL,
-- whose sum over one rank must leave every gradient as it was. CI runs it
-- on the emulated device, where NCCL cannot start: the fast mode then
-- says so and goes through the host. (Two ranks: tests/dist/collectives.lua.)
local empo = require 'empo'
local check = require 'check'
local c = check.new('cuda/test_dist_device')
check.need_cuda()
local dist = empo.dist.init()

empo.manual_seed(4)
local w = empo.randn(16, 8):to('cuda'):requires_grad_()
local b = empo.randn(8):to('cuda'):requires_grad_()
local unused = empo.randn(3):to('cuda'):requires_grad_()
local params = { w, b, unused }
local opt = empo.optim.adamw{ params = params }
local function backward(x)
  local loss = ((w * x):sum(2) + b:sum()):sum()
  loss:backward()
end
backward(1.5)
local want_w, want_b = w.grad:cpu(), b.grad:cpu()

-- fast: one rank's sum is the gradient itself, wherever it went
dist.reduce_grads(params, false)
c.eq((w.grad:cpu() - want_w):abs():max():item(), 0, 'fast: the gradients stay as they were')
c.eq(b.grad.device, 'cuda', 'fast: the gradient stays on the device')
c.eq(unused.grad, nil, 'fast: no gradient stays none')
local path = dist.device_path()
c.ok(path == 'nccl' or path == 'host' or (path == '' and os.getenv('EMPO_DIST_NCCL') ~= '1'),
     'the path is said: ' .. path)
if os.getenv('EMPO_DIST_NCCL') == '1' and not empo.cuda_device():find('emulated', 1, true) then
  c.eq(path, 'nccl', 'on a GPU with EMPO_DIST_NCCL=1 the sum goes through NCCL')
end

-- exact: folded twice (x 1.5 and x 0.5), the sum of both on the device
opt:zero_grad()
backward(1.5)
dist.fold_grads(params)
c.eq(w.grad, nil, 'exact: the folded gradient is dropped')
backward(0.5)
dist.fold_grads(params)
dist.reduce_grads(params, true)
c.eq(w.grad.device, 'cuda', 'exact: the sum lands on the device')
c.ok((w.grad:cpu() - want_w * (2 / 1.5)):abs():max():item() < 1e-5, 'exact: the sum of the two folds')
c.eq(dist.device_path(), 'host', 'exact: through host memory')
c.raises(function() dist.reduce_grads({ w, empo.zeros(2):requires_grad_() }, false) end, 'one device for all')
c.done()
