-- tests/dist/collectives.lua — empo.dist under `mpirun -np 2`
-- (tests/dist/mpirun.sh): rank and size, gather / broadcast / sum of
-- plain data (exact floats), the gradients' sum in both modes (a
-- parameter with a gradient on one rank only; one with none anywhere),
-- the same bits from exact mode whatever the split, the overflow of the
-- fixed-point grid as NaN, the lockstep check naming the rank whose
-- weights differ, and a GPU's gradients (the emulated device in CI).
local empo = require 'empo'
local check = require 'check'
local dist = empo.dist.init()
local rank, size = dist.rank(), dist.size()
local c = check.new('dist_collectives_rank' .. rank)

c.eq(size, 2, 'two ranks')
c.eq(dist.backend(), 'mpi', 'the MPI backend')
c.eq(empo.get_num_threads(), 1, 'one thread a rank')

local all = dist.gather({ rank = rank, x = 0.1 * (rank + 1), s = 'r' .. rank, nested = { 1 / 3, true } })
c.eq(#all, 2, 'gather: a value per rank')
c.eq(all[2].x, 0.2, 'gather: floats arrive exactly')
c.eq(all[1].nested[1], 1 / 3, 'gather: nested floats exactly')
c.eq(all[2].s, 'r1', 'gather: in rank order')
c.eq(dist.broadcast(rank == 0 and { 'from', 0 } or nil, 0)[1], 'from', 'broadcast from rank 0')
c.eq(dist.broadcast(rank == 1 and 'one' or nil, 1), 'one', 'broadcast from rank 1')
c.eq(dist.sum({ 1, rank })[2], 1, 'sum')

-- gradients: w has one on both ranks, u on rank 1 only, z on none
empo.manual_seed(3)
local w = empo.randn(4, 5, { requires_grad = true })
local u = empo.randn(3, { requires_grad = true })
local z = empo.randn(2, { requires_grad = true })
local params = { w, u, z }
local function backward()
  local loss = (w * (rank + 1)):sum()
  loss:backward()
  if rank == 1 then (u * u):sum():backward() end
end
backward()
dist.reduce_grads(params, false)
c.eq(w.grad:tolist()[2][3], 3, 'fast: the sum over the ranks (1 + 2)')
c.ok(u.grad ~= nil, 'fast: a gradient one rank had reaches every rank')
c.ok(math.abs(u.grad:tolist()[1] - 2 * u:tolist()[1]) < 1e-6, 'fast: with that rank\'s value')
c.eq(z.grad, nil, 'fast: no gradient anywhere stays none')

local opt = empo.optim.adamw{ params = params }
opt:zero_grad()
backward()
dist.fold_grads(params)
c.eq(w.grad, nil, 'exact: folded gradients are dropped')
dist.reduce_grads(params, true)
c.eq(w.grad:tolist()[2][3], 3, 'exact: the sum')
c.eq(z.grad, nil, 'exact: no gradient anywhere stays none')

-- exact mode: the sum of the same three parts, split 2 + 1 or 1 + 2 over the
-- ranks, is the same bits (fixed point has no order)
local parts = { 0.1, 1e-3 / 3, 123.456 }
local function exact_sum(mine)
  opt:zero_grad()
  for _, x in ipairs(mine) do
    local loss = (w * x):sum()
    loss:backward()
    dist.fold_grads(params)
  end
  dist.reduce_grads(params, true)
  return w.grad:tolist()[1][1]
end
local a = exact_sum(rank == 0 and { parts[1], parts[2] } or { parts[3] })
local b = exact_sum(rank == 0 and { parts[1] } or { parts[2], parts[3] })
c.eq(a, b, 'exact: the same bits whatever the split')

-- beyond the grid's range: NaN everywhere (the trainer skips such an update)
opt:zero_grad()
local big = (w * (rank == 1 and 1e7 or 1)):sum()
big:backward()
dist.fold_grads(params)
dist.reduce_grads(params, true)
local g = w.grad:tolist()[1][1]
c.ok(g ~= g, 'exact: an overflow of the fixed-point range gives NaN on every rank')

-- lockstep: equal weights pass; a planted difference on rank 1 is named
opt:zero_grad()
c.ok(#dist.check_lockstep(params, 1) == 16, 'equal weights: one checksum')
if rank == 1 then w:detach():copy_(w:detach() + 1e-3) end
local ok, err = pcall(dist.check_lockstep, params, 2)
c.ok(not ok and tostring(err):find('rank 1', 1, true) ~= nil, 'a difference names rank 1: ' .. tostring(err))
-- parameters on a GPU (in CI the emulated one: EMPO_CUDA_LIBRARY), summed
-- through NCCL on GPUs, or through host memory
if pcall(function() return empo.zeros(1):to('cuda') end) then
  local dw = empo.tensor({ 1, 2, 3 }):to('cuda'):requires_grad_()
  local loss = (dw * (rank + 1)):sum()
  loss:backward()
  dist.reduce_grads({ dw }, false)
  c.eq(dw.grad:cpu():tolist(), { 3, 3, 3 }, 'a GPU\'s gradients, fast: the sum over the ranks (' .. dist.device_path() .. ')')
  dw.grad = nil
  loss = (dw * (rank + 1)):sum()
  loss:backward()
  dist.fold_grads({ dw })
  dist.reduce_grads({ dw }, true)
  c.eq(dw.grad:cpu():tolist(), { 3, 3, 3 }, 'a GPU\'s gradients, exact: the sum over the ranks')
  c.eq(dw.grad.device, 'cuda', 'and they stay on the GPU')
end
c.done()
