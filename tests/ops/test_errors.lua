-- tests/ops/test_errors.lua — every kind of bad input gives a Lua error
-- whose message names the op and the shapes/dtypes/argument involved, and
-- the process (and its state) survives it: shape and dtype mismatches,
-- out-of-range indices and dims, backward from a non-scalar, freed tensors,
-- wrong Lua argument types, ragged tables. Errors raised at the caller's
-- line carry "file:line:".
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_errors')

local T = empo.tensor
local a = empo.randn(2, 3)
local b = empo.randn(4, 5)

-- ---- shapes ----
c.raises(function() return a + b end, 'add', '[2 x 3]', '[4 x 5]')
c.raises(function() return a * b end, 'mul', '[2 x 3]', '[4 x 5]')
c.raises(function() return empo.matmul(a, b) end, 'matmul', '[2 x 3]', '[4 x 5]')
c.raises(function() return a:view(4, 2) end, 'view', '[2 x 3]')
c.raises(function() return empo.cat({ a, b }, 1) end, 'cat', '[2 x 3]', '[4 x 5]')
c.raises(function() return empo.rmsnorm(a, empo.ones(4)) end, 'rmsnorm', '[2 x 3]', '[4]')
c.raises(function() return empo.linear(a, empo.randn(4, 5)) end, 'linear', '[2 x 3]')
c.raises(function() return empo.attention(empo.randn(1, 2, 3, 4), empo.randn(1, 3, 3, 4), empo.randn(1, 3, 3, 4)) end,
         'attention', '[1 x 2 x 3 x 4]')
c.raises(function() return empo.masked_fill(a, empo.zeros(5, { dtype = 'u8' }), 0) end, 'masked_fill', '[5]')
c.raises(function() return a:expand(4, 4) end, 'expand', '[2 x 3]')
c.raises(function() return a:split({ 1, 1 }, 2) end, 'empo.split', 'add up to 2', '[2 x 3]')

-- ---- dtypes ----
local ids = T({ 1, 2, 3 }, 'i64')
c.raises(function() return a + ids end, 'add', 'i64', 'f32')
c.raises(function() return ids:softmax() end, 'softmax', 'i64')
c.raises(function() return empo.embedding(a, T({ 0.5 })) end, 'embedding', 'f32')
c.raises(function() return T({ 1 }, 'i64'):requires_grad_() end, 'requires_grad', 'i64')
c.raises(function() return empo.zeros(2, { dtype = 'f99' }) end, 'empo.zeros', "unknown dtype 'f99'")
c.raises(function() return a:to('complex') end, 'empo.to', "unknown dtype 'complex'")

-- ---- indices and dims (1-based in Lua) ----
c.raises(function() return a[3] end, 'index 3 is out of range', 'dim 1 of size 2', '[2 x 3]')
c.raises(function() return a[0] end, 'index 0 is out of range', 'indices are 1..2')
c.raises(function() return a[{ 1, 4 }] end, 'index 4', 'dim 2 of size 3')
c.raises(function() return a[{ 1, 1, 1 }] end, '3 indices', '[2 x 3]')
c.raises(function() a[{ 9, 1 }] = 1 end, 'assignment', 'index 9')
c.raises(function() return a:select(1, 5) end, 'empo.select', 'index 5', '[2 x 3]')
c.raises(function() return a:narrow(2, 2, 5) end, 'empo.narrow', 'length 5', '[2 x 3]')
c.raises(function() return a:sum(3) end, 'empo.sum', 'dim 3 is out of range', '[2 x 3]')
c.raises(function() return a:sum(0) end, 'empo.sum', 'dim 0 is invalid', '1-based')
c.raises(function() return a:transpose(1, 5) end, 'empo.transpose', 'dim 5')
c.raises(function() return a:softmax(-3) end, 'empo.softmax', 'dim -3')
c.raises(function() return a:permute(1) end, 'empo.permute', '1 dims given', '[2 x 3]')
c.raises(function() return empo.embedding(a, T({ 0, 5 }, 'i64')) end, 'embedding', 'index 5')
c.raises(function() return empo.gather(a, 2, T({ { 0, 7 } }, 'i64')) end, 'gather', 'index 7')
c.raises(function() return empo.index_select(a, 1, T({ 2 }, 'i64')) end, 'index_select', '2')
c.raises(function() return a:item() end, 'item', '[2 x 3]')
c.raises(function() return T(1)[1] end, '0-d')

-- ---- autograd ----
local x = empo.randn(2, 3, { requires_grad = true })
c.raises(function() (x * 2):backward() end, 'backward', '[2 x 3]', 'scalar')
c.raises(function() a:sum():backward() end, 'backward', 'does not require grad')
local once = (x * x):sum()
once:backward()
c.raises(function() once:backward() end, 'backward')
c.runs(function() (x * x):sum():backward() end, 'a new graph after an error still works')

-- ---- freed tensors ----
local f = empo.ones(2)
f:free()
c.raises(function() return f:exp() end, 'empo.exp', 'tensor was freed')
c.raises(function() return f + 1 end, 'empo.add', 'argument 1', 'tensor was freed')
c.raises(function() return a + f end, 'empo.add', 'argument 2', 'tensor was freed')
c.raises(function() return 2 * f end, 'empo.mul', 'tensor was freed')
c.raises(function() return empo.matmul(a, f) end, 'empo.matmul', 'argument 2', 'tensor was freed')
c.raises(function() return f:sum() end, 'tensor was freed')
c.raises(function() return f:tolist() end, 'tensor was freed')
c.raises(function() return f:item() end, 'tensor was freed')
c.raises(function() return f.grad end, 'tensor was freed')
c.raises(function() return #f end, 'tensor was freed')
c.raises(function() f[1] = 2 end, 'tensor was freed')
c.raises(function() return empo.cat({ a, f }) end, 'empo.cat', 'element 2', 'tensor was freed')
c.raises(function() return empo.tensor(f) end, 'tensor was freed')

-- ---- wrong Lua argument types ----
c.raises(function() return a + 'x' end, 'empo.add: argument 2: expected tensor or number, got string')
c.raises(function() return empo.add(a, 'x') end, 'empo.add: argument 2: expected tensor or number, got string')
c.raises(function() return empo.add({}, a) end, 'empo.add: argument 1: expected tensor or number, got table')
c.raises(function() return empo.add(1, 2) end, 'empo.add', 'two numbers')
c.raises(function() return a - true end, 'empo.sub', 'got boolean')
c.raises(function() return a * nil end, 'empo.mul', 'got nil')
c.raises(function() return empo.matmul(a, nil) end, 'empo.matmul: argument 2: expected tensor, got nil')
c.raises(function() return empo.exp('a') end, 'empo.exp: argument 1: expected tensor, got string')
c.raises(function() return empo.exp(a.h) end, 'empo.exp: argument 1: expected tensor, got cdata')
c.raises(function() return a:sum('x') end, 'empo.sum', 'argument 2', 'got string')
c.raises(function() return a:view('x') end, 'empo.view', 'got string')
c.raises(function() return a:view(2.5, 2) end, 'empo.view', 'integer')
c.raises(function() return a:fill_('x') end, 'empo.fill_: argument 2: expected number, got string')
c.raises(function() return empo.zeros('x') end, 'empo.zeros', 'got string')
c.raises(function() return empo.cat(a) end, 'empo.cat: argument 1: expected table of tensors, got tensor')
c.raises(function() return empo.cat({ a, 3 }) end, 'empo.cat', 'element 2', 'got number')
c.raises(function() return empo.cat({}) end, 'empo.cat', 'empty')
c.raises(function() return empo.masked_fill(a, a:gt(0), 'x') end, 'empo.masked_fill', 'argument 3')
c.raises(function() return empo.attention(a, a, a, 'causal') end, 'empo.attention', 'argument 4')
c.raises(function() return empo.rope(a, 'x') end, 'empo.rope', 'argument 2', 'got string')
c.raises(function() return empo.no_grad(42) end, 'empo.no_grad', 'function')
c.raises(function() return empo.optim.adamw { params = { a, 'x' } } end, 'adamw', 'parameter 2')
c.raises(function() return empo.clip_grad_norm({ a }, 'x') end, 'empo.clip_grad_norm', 'argument 2')
c.raises(function() a.foo = 1 end, "cannot set field 'foo'")
c.raises(function() a[1] = 'x' end, 'assignment', 'got string')
c.raises(function() return empo.Generator(-1) end, 'empo.Generator', 'non-negative')
c.raises(function() return empo.randint('a', 3, 2) end, 'empo.randint', 'argument 1')
c.raises(function() return empo.multinomial(a, 'x') end, 'empo.multinomial', 'argument 3')

-- ---- tables given to empo.tensor ----
c.raises(function() return T({ { 1, 2 }, { 3 } }) end, 'empo.tensor', 'ragged', '[2]')
c.raises(function() return T({ 1, 'a' }) end, 'empo.tensor', 'element [2] is a string')
c.raises(function() return T({ { 1 }, 2 }) end, 'empo.tensor', 'ragged')
c.raises(function() return T({ 1, { 2 } }) end, 'empo.tensor', 'element [2] is a table')
c.raises(function() return T('abc') end, 'empo.tensor: argument 1: expected table, number or tensor, got string')
c.raises(function() return T(nil) end, 'empo.tensor', 'got nil')

-- ---- messages point at the caller ----
local line = debug.getinfo(1, 'l').currentline + 1
local ok, err = pcall(function() local _ = a + b end)
c.ok(not ok and tostring(err):find('test_errors.lua:' .. line .. ':', 1, true) ~= nil,
     'error position is the caller\'s line: ' .. tostring(err))
line = debug.getinfo(1, 'l').currentline + 1
ok, err = pcall(function() local _ = a:exp('x'):matmul(b) end)
c.ok(not ok and tostring(err):find('test_errors.lua:' .. line .. ':', 1, true) ~= nil,
     'method errors carry the caller\'s line: ' .. tostring(err))

-- ---- the state survives ----
c.eq((T({ 1, 2 }) + 1):tolist(), { 2, 3 }, 'ops still work after all those errors')
c.ok(empo.is_grad_enabled(), 'grad mode untouched')

c.done()
