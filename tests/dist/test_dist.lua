-- tests/dist/test_dist.lua — empo.dist in one process (the "none"
-- backend) and the data-parallel trainer's pieces that need no second
-- process: the shards of a step's questions, exact data transfer of plain
-- values, the gradients' fixed-point sum against the plain one, bad input,
-- and a process that mpirun started while the MPI backend is missing.
-- (Two ranks: tests/dist/collectives.lua and trainer.sh under mpirun.)
local empo = require 'empo'
local check = require 'check'
local dp = require 'empo.rl.data_parallel'
local c = check.new('test_dist')
local dist = empo.dist.init()

c.eq(dist.size(), 1, 'one process alone')
c.eq(dist.rank(), 0, 'rank 0')
c.eq(dist.backend(), 'none', 'no backend loaded')
c.eq(dist.gather({ 1, 'a' })[1][2], 'a', 'gather: its own value')
c.eq(dist.sum({ 2.5 })[1], 2.5, 'sum: itself')
dist.barrier()

-- plain values travel exactly
for _, v in ipairs({ 0.1, 1 / 3, -2 ^ -1074, 2 ^ 60 + 2 ^ 8, 1e308, -0.0 }) do
  c.eq(dist.decode(dist.encode(v)), v, 'a float reads back exactly: ' .. tostring(v))
end
local nan = dist.decode(dist.encode(0 / 0))
c.ok(nan ~= nan, 'NaN reads back')
c.eq(dist.decode(dist.encode(math.huge)), math.huge, 'inf reads back')
local t = dist.decode(dist.encode({ 'a\n"b', x = { true, false }, [7] = 3 }))
c.eq(t[1], 'a\n"b', 'strings with quotes and newlines')
c.eq(t.x[2], false, 'booleans')
c.eq(t[7], 3, 'sparse keys')
c.raises(function() dist.encode({ f = print }) end, 'cannot send a function')

-- shards: contiguous, covering, balanced by cost
local qs = {}
for i = 1, 10 do qs[i] = { id = i, cost = i <= 2 and 50 or 5 } end
local seen, sizes = {}, {}
for r = 0, 2 do
  local part = dp.shard(qs, function(q) return q.cost end, r, 3)
  local cost = 0
  for k, q in ipairs(part) do
    c.ok(not seen[q.id], 'each question on one rank')
    seen[q.id] = true
    if k > 1 then c.eq(q.id, part[k - 1].id + 1, 'a shard is contiguous') end
    cost = cost + q.cost
  end
  sizes[r + 1] = #part
end
for i = 1, 10 do c.ok(seen[i], 'question ' .. i .. ' is on a rank') end
c.ok(sizes[1] < sizes[3], 'the two costly questions make rank 0\'s shard short: ' .. table.concat(sizes, ' '))
c.eq(#dp.shard({}, function() return 1 end, 0, 2), 0, 'no questions, empty shards')
c.eq(#dp.shard({ qs[1] }, function() return 1 end, 1, 2), 1, 'one question lands on exactly one rank')
c.eq(#dp.shard({ qs[1] }, function() return 1 end, 0, 2), 0, '(not both)')

-- exact mode in one process: the fixed-point sum of the folds is the plain sum to 2^-36
empo.manual_seed(1)
local w = empo.randn(8, 8, { requires_grad = true })
local params = { w }
dist.reduce_grads(params, true)          -- (a rank with no micro-batch: nothing folded yet)
c.eq(w.grad, nil, 'exact: a reduction with nothing folded leaves no gradient')
local opt = empo.optim.adamw{ params = params }
local xs = { 0.3, -1.7, 12.25 }
for _, x in ipairs(xs) do
  local loss = (w * w * x):sum()
  loss:backward()
end
local plain = w.grad:clone()
opt:zero_grad()
for _, x in ipairs(xs) do
  local loss = (w * w * x):sum()
  loss:backward()
  dist.fold_grads(params)
end
dist.reduce_grads(params, true)
c.ok((w.grad - plain):abs():max():item() <= 1e-6 * plain:abs():max():item(),
     'exact: the fixed-point sum is the plain f32 one to its rounding')

-- bad input
opt:zero_grad()
local loss = w:sum()
loss:backward()
c.raises(function() dist.reduce_grads(params, true) end, 'was not folded')
opt:zero_grad()
c.raises(function() dist.reduce_grads({ empo.zeros(2, { dtype = 'bf16' }) }, false) end, 'the gradients reduced here are f32')
c.raises(function() dist.broadcast('x', 3) end, 'broadcast: from rank 3 of 1')

-- a process mpirun started, with no MPI backend to load: a clear error
local bin = os.getenv('EMPO_BINARY')
if bin then
  local p = io.popen('OMPI_COMM_WORLD_SIZE=2 EMPO_MPI_LIBRARY=/nonexistent/libempo_mpi.so ' .. bin ..
                     " -e \"require('empo').dist.init()\" 2>&1; echo status=$?")
  local out = p:read('*a')
  p:close()
  c.ok(out:find('built without MPI', 1, true) ~= nil and out:find('status=1', 1, true) ~= nil,
       'launched by mpirun without the backend: says so and fails: ' .. out)
end
c.done()
