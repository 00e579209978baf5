-- tests/cuda/test_device.lua — tensors on the GPU: moving them there and
-- back (every dtype, views, empty ones), reading and writing their
-- elements, the device pool's figures and reuse, the gradient through
-- `to`, and the clear refusals. In CI it runs on the emulated device
-- (EMPO_CUDA_LIBRARY, tests/CMakeLists.txt), whose memory the host cannot
-- touch outside kernels and copies, so a host read of device memory
-- crashes here; on a GPU machine on the real one (tests/device/check.sh).
local empo = require 'empo'
local check = require 'check'
local c = check.new('cuda/test_device')

check.need_cuda()
c.ok(type(empo.cuda_device()) == 'string', 'cuda_device names the device')
c.eq(empo.cuda_allow_tf32(true), false, 'TF32 is off until asked for')
c.eq(empo.cuda_allow_tf32(false), true, 'and says it was on')

-- every dtype goes there and comes back the same
local values = { { 1.5, -2.25, 3 }, { 0, 7, -8 } }
for _, dt in ipairs { 'f32', 'f64', 'bf16', 'f16', 'i32', 'i64', 'u8' } do
  local vals = dt == 'u8' and { { 1, 2, 3 }, { 0, 7, 255 } } or values
  local a = empo.tensor(vals, { dtype = dt })
  local d = a:to('cuda')
  c.eq(d.device, 'cuda', dt .. ': on the device')
  c.eq(d:dtype(), dt, dt .. ': dtype kept')
  c.eq(d:cpu():tolist(), a:tolist(), dt .. ': the round trip keeps every value')
  c.eq(d:tolist(), a:tolist(), dt .. ': tolist reads a device tensor')
end

-- creators take a device
c.eq(empo.zeros({ 2, 2 }, { device = 'cuda' }).device, 'cuda', 'zeros on the device')
local r = empo.randn({ 3 }, { device = 'cuda', requires_grad = true })
c.ok(r.device == 'cuda' and r.requires_grad and r.is_leaf, 'randn on the device, a leaf that requires grad')
c.eq(empo.tensor({ 1, 2 }, { device = 'cuda' }):cpu():tolist(), { 1, 2 }, 'tensor{} on the device')
c.raises(function() empo.ones({ 2 }, { device = 'tpu' }) end, "device must be 'cpu' or 'cuda'")

-- views of a device tensor come down as what they show; strided host views go up
local x = empo.randn({ 4, 5, 3 })
local dx = x:cuda()
c.eq(dx:transpose(1, 3):cpu():tolist(), x:transpose(1, 3):tolist(), 'a transposed device view')
c.eq(dx:narrow(2, 2, 3):cpu():tolist(), x:narrow(2, 2, 3):tolist(), 'a narrowed device view')
c.eq(dx:select(1, 3):cpu():tolist(), x:select(1, 3):tolist(), 'a selected device view')
c.eq(x:transpose(1, 2):cuda():cpu():tolist(), x:transpose(1, 2):tolist(), 'a strided host view goes up')
c.eq(empo.zeros({ 0, 3 }):cuda():cpu():size(), { 0, 3 }, 'an empty tensor')
c.ok(x:cuda():cuda() ~= nil and dx:to('cuda').device == 'cuda', 'to its own device: the same tensor')

-- elements: item, get/set, fill_, copy_
local s = empo.tensor(2.5):cuda()
c.eq(s:item(), 2.5, 'item of a device scalar')
local m = empo.zeros({ 2, 3 }):cuda()
m:fill_(4)
c.eq(m:cpu():tolist(), { { 4, 4, 4 }, { 4, 4, 4 } }, 'fill_ on the device')
m:copy_(empo.tensor({ 1, 2, 3 }))
c.eq(m:cpu():tolist(), { { 1, 2, 3 }, { 1, 2, 3 } }, 'copy_ broadcasts a host tensor into a device one')
local h = empo.zeros({ 2, 3 })
h:copy_(m)
c.eq(h:tolist(), m:cpu():tolist(), 'copy_ from the device into a host tensor')
c.raises(function() m:transpose(1, 2):fill_(1) end, 'strided view on the device')
c.raises(function() return m:data_ptr() end, 'lives on the device')

-- the gradient goes back to where the input was
local w = empo.randn({ 3, 4 }):requires_grad_()
local y = (w:to('cuda'):cpu() * 3):sum()
y:backward()
c.eq(w.grad:tolist(), empo.full({ 3, 4 }, 3):tolist(), 'the gradient through cuda and back')
c.eq(w.grad.device, 'cpu', 'the gradient is on the input\'s device')

-- ops take tensors of one device (until they run there: the refusal names it)
c.raises(function() return dx + x end, 'add', 'cuda')

-- the sampler has no device kernel yet: it samples on the cpu, results back on the device
do
  local ffi = require 'ffi'
  local C = empo.ffi.C
  local logits = empo.randn({ 3, 20 })
  local ids, lp, ref = empo.zeros({ 3 }, { dtype = 'i64' }):cuda(), empo.ones({ 3 }):cuda(), empo.zeros({ 3 }):cuda()
  local greedy = ffi.new('empo_sampling', { 0.0, 0, 1.0, 0.0 })
  c.eq(C.empo_sample(ids.h, lp.h, ref.h, logits:cuda().h, greedy, nil), 0, 'sample takes device logits')
  c.eq(ids:cpu():tolist(), logits:argmax(2):tolist(), 'greedy tokens, written back on the device')
  c.eq(lp:cpu():tolist(), { 0, 0, 0 }, 'greedy log-probs (0) written back')
  c.ok(math.abs(ref:cpu():tolist()[2] - logits:log_softmax(2):max(2):tolist()[2]) < 1e-5, 'the model log-probs')
  c.ok(C.empo_sample(empo.zeros({ 3 }, { dtype = 'i64' }).h, nil, nil, logits:cuda().h, greedy, nil) ~= 0,
       'ids on another device than the logits is refused')
  c.ok(ffi.string(C.empo_last_error()):find('is on cpu but logits', 1, true), 'naming both devices')
end

-- the device pool: figures, reuse, emptying
empo.collect()
local before = empo.memory().cuda
c.ok(before ~= nil and before.allocs > 0, 'memory().cuda once the device is used')
for _ = 1, 5 do
  local t = empo.randn({ 64, 64 }):cuda()
  t = nil
  empo.collect()
end
local after = empo.memory().cuda
c.ok(after.allocs <= before.allocs + 1, string.format('blocks are reused (%d then %d device allocations)',
                                                    before.allocs, after.allocs))
c.ok(after.cached >= 64 * 64 * 4, 'a released block waits in the cache')
empo.empty_cache()
c.eq(empo.memory().cuda.cached, 0, 'empty_cache gives the device its blocks back')
c.done()
