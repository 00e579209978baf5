-- tests/tensor/test_tensor.lua — the Tensor type from Lua: creation, views,
-- printing, tolist, indexing, arithmetic (broadcasting, scalars on either
-- side), reductions, autograd, no_grad, freeing, random draws, AdamW.
-- Expected values are written down or computed in plain Lua.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_tensor')

local T = empo.tensor

-- ---- creation ----
local a = T({ { 1, 2, 3 }, { 4, 5, 6 } })
c.eq(a:size(), { 2, 3 }, 'size of nested table')
c.eq(a.shape, { 2, 3 }, 't.shape')
c.eq(a:size(2), 3, 'size(2)')
c.eq(a:size(-1), 3, 'size(-1)')
c.eq(a:dim(), 2, 'dim')
c.eq(a:numel(), 6, 'numel')
c.eq(a:dtype(), 'f32', 'default dtype')
c.eq(a:stride(), { 3, 1 }, 'contiguous strides')
c.ok(a:is_contiguous(), 'contiguous')
c.eq(a:tolist(), { { 1, 2, 3 }, { 4, 5, 6 } }, 'tolist round trip')
c.eq(#a, 2, '__len is the size of dim 1')
c.eq(T(3.5):item(), 3.5, '0-d from a number')
c.eq(T(3.5):dim(), 0, '0-d dim')
c.eq(T({ 1, 2 }, 'i64'):dtype(), 'i64', 'dtype as a string')
c.eq(T({ 1, 2 }, { dtype = 'f64' }):dtype(), 'f64', 'dtype in options')
c.eq(T({ true, false }, 'u8'):tolist(), { 1, 0 }, 'booleans')
c.eq(T({}):size(), { 0 }, 'empty table')
c.eq(T({ { { 1 }, { 2 } } }):size(), { 1, 2, 1 }, '3 levels')
c.eq(empo.zeros(2, 3):tolist(), { { 0, 0, 0 }, { 0, 0, 0 } }, 'zeros')
c.eq(empo.ones({ 2 }):tolist(), { 1, 1 }, 'ones from a table')
c.eq(empo.full({ 2, 2 }, 7):tolist(), { { 7, 7 }, { 7, 7 } }, 'full')
c.eq(empo.full(3, 2, 'i32'):dtype(), 'i32', 'full dtype')
c.eq(empo.zeros(2, { dtype = 'i64' }):dtype(), 'i64', 'zeros dtype option')
c.eq(empo.empty(4, 5):size(), { 4, 5 }, 'empty')
c.eq(empo.zeros():dim(), 0, 'zeros() is 0-d')
c.eq(empo.arange(4):tolist(), { 0, 1, 2, 3 }, 'arange(n)')
c.eq(empo.arange(4):dtype(), 'i64', 'arange of integers is i64')
c.eq(empo.arange(1, 2, 0.25):tolist(), { 1, 1.25, 1.5, 1.75 }, 'arange(start, stop, step)')
c.eq(empo.arange(5, 0, -2):tolist(), { 5, 3, 1 }, 'arange downwards')
c.ok(empo.is_tensor(a) and not empo.is_tensor({}) and not empo.is_tensor(1), 'is_tensor')
local copy = T(a)
c.eq(copy:tolist(), a:tolist(), 'tensor(t) copies')
c.ok(not copy:shares_storage(a), 'tensor(t) does not share storage')

-- ---- views ----
local v = a:view(3, 2)
c.eq(v:tolist(), { { 1, 2 }, { 3, 4 }, { 5, 6 } }, 'view')
c.ok(v:shares_storage(a), 'view shares storage')
c.eq(a:view({ -1 }):size(), { 6 }, 'view(-1) in a table')
c.eq(a:reshape(6):tolist(), { 1, 2, 3, 4, 5, 6 }, 'reshape')
c.eq(a:flatten():size(), { 6 }, 'flatten')
local at = a:transpose(1, 2)
c.eq(at:tolist(), { { 1, 4 }, { 2, 5 }, { 3, 6 } }, 'transpose(1, 2)')
c.ok(not at:is_contiguous(), 'transpose is not contiguous')
c.eq(at:stride(), { 1, 3 }, 'transposed strides')
c.eq(at:contiguous():tolist(), at:tolist(), 'contiguous keeps values')
c.ok(at:contiguous():is_contiguous(), 'contiguous()')
c.eq(a:permute(2, 1):tolist(), at:tolist(), 'permute(2, 1)')
c.eq(a:permute({ 2, 1 }):tolist(), at:tolist(), 'permute({2, 1})')
c.eq(a:narrow(2, 2, 2):tolist(), { { 2, 3 }, { 5, 6 } }, 'narrow is 1-based')
c.eq(a:slice(2, 1, 3, 2):tolist(), { { 1, 3 }, { 4, 6 } }, 'slice with step')
c.eq(a:slice(2, -2):tolist(), { { 2, 3 }, { 5, 6 } }, 'slice from the end')
c.eq(a:select(1, 2):tolist(), { 4, 5, 6 }, 'select(1, 2)')
c.eq(a:select(2, -1):tolist(), { 3, 6 }, 'select(2, -1)')
c.eq(T({ 1, 2 }):unsqueeze(1):size(), { 1, 2 }, 'unsqueeze(1)')
c.eq(T({ 1, 2 }):unsqueeze(-1):size(), { 2, 1 }, 'unsqueeze(-1)')
c.eq(empo.zeros(1, 3, 1):squeeze():size(), { 3 }, 'squeeze()')
c.eq(empo.zeros(1, 3, 1):squeeze(1):size(), { 3, 1 }, 'squeeze(1)')
c.eq(empo.zeros(3):squeeze():size(), { 3 }, 'squeeze() with nothing to squeeze')
c.eq(T({ { 1 }, { 2 } }):expand(2, 3):tolist(), { { 1, 1, 1 }, { 2, 2, 2 } }, 'expand')
c.eq(T({ { 1 }, { 2 } }):expand(-1, 2):size(), { 2, 2 }, 'expand with -1')
local cl = a:clone()
cl[{ 1, 1 }] = 100
c.eq(a[{ 1, 1 }], 1, 'clone copies')
local parts = T({ 1, 2, 3, 4, 5 }):split(2)
c.eq(#parts, 3, 'split(2) pieces')
c.eq(parts[3]:tolist(), { 5 }, 'split remainder')
local parts2 = a:split({ 1, 2 }, 2)
c.eq(parts2[2]:tolist(), { { 2, 3 }, { 5, 6 } }, 'split with sizes along dim 2')
c.eq(#a:chunk(2, 2), 2, 'chunk')

-- ---- conversions ----
c.eq(T({ 1.7, -2.2 }):long():tolist(), { 1, -2 }, 'long truncates')
c.eq(T({ 1, 2 }, 'i64'):float():dtype(), 'f32', 'float()')
c.eq(T({ 1, 2 }):double():dtype(), 'f64', 'double()')
c.eq(T({ 1, 2 }):int():dtype(), 'i32', 'int()')
c.eq(T({ 1, 2 }):to('i64'):dtype(), 'i64', "to('i64')")
c.near(T({ 1.5 }):to('bf16'):float():item(), 1.5, 0, 'bf16 round trip')
c.near(T({ 0.1 }):to('f16'):float():item(), 0.1, 1e-3, 'f16 round trip')

-- ---- indexing (1-based) ----
c.eq(a[1]:tolist(), { 1, 2, 3 }, 't[1] is the first row')
c.eq(a[-1]:tolist(), { 4, 5, 6 }, 't[-1] is the last row')
c.eq(a[2][3], 6, 't[2][3]')
c.eq(a[{ 2, 3 }], 6, 't[{2, 3}]')
c.eq(a[{ 2 }]:tolist(), { 4, 5, 6 }, 't[{2}] is a row')
local w = empo.zeros(2, 3)
w[{ 1, 2 }] = 5
w[2] = 7
c.eq(w:tolist(), { { 0, 5, 0 }, { 7, 7, 7 } }, 'element and row assignment')
w[1] = T({ 1, 2, 3 })
c.eq(w[1]:tolist(), { 1, 2, 3 }, 'row assignment from a tensor')
local v1 = T({ 10, 20, 30 })
v1[-1] = 1
c.eq(v1:tolist(), { 10, 20, 1 }, 'negative index assignment')
c.eq(v1[2], 20, '1-d index gives a number')
local rowview = w[2]
rowview[1] = 42
c.eq(w[{ 2, 1 }], 42, 'row views share storage')
c.eq(w:fill_(3):tolist(), { { 3, 3, 3 }, { 3, 3, 3 } }, 'fill_')
c.eq(w:copy_(T({ 1, 2, 3 })):tolist(), { { 1, 2, 3 }, { 1, 2, 3 } }, 'copy_ broadcasts')

-- ---- arithmetic with broadcasting and scalars ----
local b = T({ 10, 20, 30 })
c.eq((a + b):tolist(), { { 11, 22, 33 }, { 14, 25, 36 } }, 'a + b broadcasts')
c.eq((a - b):tolist(), { { -9, -18, -27 }, { -6, -15, -24 } }, 'a - b')
c.eq((a * b):tolist(), { { 10, 40, 90 }, { 40, 100, 180 } }, 'a * b')
c.near((b / a):tolist(), { { 10, 10, 10 }, { 2.5, 4, 5 } }, 1e-6, 'b / a')
c.eq((a ^ T({ 2 })):tolist(), { { 1, 4, 9 }, { 16, 25, 36 } }, 'a ^ tensor')
c.eq((a + 1):tolist(), { { 2, 3, 4 }, { 5, 6, 7 } }, 'a + s')
c.eq((1 + a):tolist(), { { 2, 3, 4 }, { 5, 6, 7 } }, 's + a')
c.eq((a - 1):tolist(), { { 0, 1, 2 }, { 3, 4, 5 } }, 'a - s')
c.eq((10 - a):tolist(), { { 9, 8, 7 }, { 6, 5, 4 } }, 's - a')
c.eq((a * 2):tolist(), { { 2, 4, 6 }, { 8, 10, 12 } }, 'a * s')
c.eq((2 * a):tolist(), { { 2, 4, 6 }, { 8, 10, 12 } }, 's * a')
c.near((a / 4):tolist(), { { 0.25, 0.5, 0.75 }, { 1, 1.25, 1.5 } }, 1e-7, 'a / s')
c.near((6 / a):tolist(), { { 6, 3, 2 }, { 1.5, 1.2, 1 } }, 1e-6, 's / a')
c.eq((a ^ 2):tolist(), { { 1, 4, 9 }, { 16, 25, 36 } }, 'a ^ s')
c.eq((2 ^ a):tolist(), { { 2, 4, 8 }, { 16, 32, 64 } }, 's ^ a')
c.eq((-a):tolist(), { { -1, -2, -3 }, { -4, -5, -6 } }, '-a')
c.eq(empo.add(a, 1):tolist(), (a + 1):tolist(), 'empo.add with a number')
c.eq(a:mul(b):tolist(), (a * b):tolist(), 'a:mul(b)')
c.eq(T({ 1, 5, 3 }):maximum(T({ 4, 2, 3 })):tolist(), { 4, 5, 3 }, 'maximum')
c.eq(T({ 1, 5, 3 }):minimum(2):tolist(), { 1, 2, 2 }, 'minimum with a number')
c.eq(T({ -2, 0.5, 3 }):clamp(0, 1):tolist(), { 0, 0.5, 1 }, 'clamp')
c.eq(T({ -2, 0.5, 3 }):clamp(nil, 1):tolist(), { -2, 0.5, 1 }, 'clamp with no low bound')
c.eq(T({ 1, 2, 3 }):eq(2):tolist(), { 0, 1, 0 }, 'eq with a number')
c.eq(T({ 1, 2, 3 }):lt(T({ 2, 2, 2 })):tolist(), { 1, 0, 0 }, 'lt')
c.eq(T({ 1, 2, 3 }):gt(1.5):dtype(), 'u8', 'comparisons give u8')

-- ---- unary and reductions ----
c.near(T({ 0, 1 }):exp():tolist(), { 1, math.exp(1) }, 1e-6, 'exp')
c.near(T({ 1, 4 }):sqrt():tolist(), { 1, 2 }, 1e-6, 'sqrt')
c.near(T({ 1, 4 }):rsqrt():tolist(), { 1, 0.5 }, 1e-6, 'rsqrt')
c.near(T({ 1 }):log():item(), 0, 1e-7, 'log')
c.near(T({ 0 }):sigmoid():item(), 0.5, 1e-7, 'sigmoid')
c.near(T({ 0.5 }):tanh():item(), math.tanh(0.5), 1e-6, 'tanh')
c.near(T({ 1 }):silu():item(), 1 / (1 + math.exp(-1)), 1e-6, 'silu')
c.eq(T({ -1, 2 }):relu():tolist(), { 0, 2 }, 'relu')
c.eq(T({ -1, 2 }):abs():tolist(), { 1, 2 }, 'abs')
c.near(T({ 1 }):gelu():item(), 0.8413447, 1e-5, 'gelu (erf)')
c.near(T({ 1 }):gelu(true):item(), 0.8411920, 1e-5, 'gelu (tanh)')
c.eq(a:sum():item(), 21, 'sum all')
c.eq(a:sum(1):tolist(), { 5, 7, 9 }, 'sum(1) over rows')
c.eq(a:sum(2):tolist(), { 6, 15 }, 'sum(2)')
c.eq(a:sum(-1, true):size(), { 2, 1 }, 'sum keepdim')
c.eq(a:sum({ 1, 2 }):item(), 21, 'sum over a table of dims')
c.eq(a:mean():item(), 3.5, 'mean')
c.eq(a:mean(2):tolist(), { 2, 5 }, 'mean(2)')
c.eq(a:max():item(), 6, 'max all')
local mv, mi = T({ { 1, 9, 3 }, { 7, 2, 8 } }):max(2)
c.eq(mv:tolist(), { 9, 8 }, 'max(2) values')
c.eq(mi:tolist(), { 1, 2 }, 'max(2) indices are 0-based values')
c.eq(mi:dtype(), 'i64', 'max indices are i64')
c.eq(T({ { 1, 9, 3 }, { 7, 2, 8 } }):argmax(2):tolist(), { 1, 2 }, 'argmax(2)')
c.eq(T({ { 1, 9, 3 }, { 7, 2, 8 } }):argmax():item(), 1, 'argmax over all')
local sm = T({ { 1, 2, 3 } }):softmax()
local z = math.exp(1) + math.exp(2) + math.exp(3)
c.near(sm:tolist(), { { math.exp(1) / z, math.exp(2) / z, math.exp(3) / z } }, 1e-6, 'softmax (last dim)')
c.near(T({ { 1, 2, 3 } }):log_softmax(2):tolist(), { { 1 - math.log(z), 2 - math.log(z), 3 - math.log(z) } }, 1e-5,
       'log_softmax(2)')
c.near(T({ { 1 }, { 3 } }):softmax(1):tolist(), { { 1 / (1 + math.exp(2)) }, { 1 / (1 + math.exp(-2)) } }, 1e-6,
       'softmax(1)')

-- ---- linear algebra, indexing ops, fused kernels ----
c.eq(a:matmul(T({ { 1 }, { 0 }, { 1 } })):tolist(), { { 4 }, { 10 } }, 'matmul')
c.eq(empo.linear(a, T({ { 1, 1, 1 } }), T({ 0.5 })):tolist(), { { 6.5 }, { 15.5 } }, 'linear with bias')
c.eq(empo.linear(a, T({ { 1, 0, 0 } })):tolist(), { { 1 }, { 4 } }, 'linear without bias')
local emb = T({ { 0, 0 }, { 1, 1 }, { 2, 2 } })
c.eq(empo.embedding(emb, T({ 2, 0 }, 'i64')):tolist(), { { 2, 2 }, { 0, 0 } }, 'embedding (0-based ids)')
c.eq(empo.gather(a, 2, T({ { 2 }, { 0 } }, 'i64')):tolist(), { { 3 }, { 4 } }, 'gather along dim 2')
c.eq(empo.index_select(a, 1, T({ 1 }, 'i64')):tolist(), { { 4, 5, 6 } }, 'index_select')
c.eq(empo.cat({ a, a }, 1):size(), { 4, 3 }, 'cat dim 1')
c.eq(empo.cat({ a, b:view(1, 3) }):size(), { 3, 3 }, 'cat default dim')
c.eq(empo.cat({ a, a }, 2):tolist(), { { 1, 2, 3, 1, 2, 3 }, { 4, 5, 6, 4, 5, 6 } }, 'cat dim 2')
c.eq(empo.where(T({ 1, 0, 1 }, 'u8'), T({ 1, 2, 3 }), T({ 9, 9, 9 })):tolist(), { 1, 9, 3 }, 'where')
c.eq(empo.where(T({ 1, 0 }, 'u8'), T({ 1, 2 }), 0):tolist(), { 1, 0 }, 'where with a number')
c.eq(empo.masked_fill(T({ 1, 2, 3 }), T({ 0, 1, 0 }, 'u8'), -1):tolist(), { 1, -1, 3 }, 'masked_fill')
local x = T({ { 3, 4 } })
c.near(empo.rmsnorm(x, T({ 1, 2 }), 0):tolist(), { { 3 / math.sqrt(12.5), 8 / math.sqrt(12.5) } }, 1e-5, 'rmsnorm')
c.near(empo.swiglu(T({ 1 }), T({ 3 })):item(), 3 / (1 + math.exp(-1)), 1e-5, 'swiglu')
local q1 = empo.randn(1, 2, 1, 4)
local kv = T({ { { { 1, 2, 3, 4 } } } })
c.near(empo.attention(q1, kv, kv, { causal = true }):tolist(),
       { { { { 1, 2, 3, 4 } }, { { 1, 2, 3, 4 } } } }, 1e-6, 'attention over one key is that value (GQA)')
c.eq(empo.rope(empo.randn(1, 1, 3, 4)):size(), { 1, 1, 3, 4 }, 'rope keeps the shape')
local r0 = empo.randn(1, 1, 1, 4)
c.near(empo.rope(r0, nil, 0):tolist(), r0:tolist(), 1e-6, 'rope at position 0 is the identity')
local logits = T({ { 0, 0 }, { 1, 3 } })
local lp, ent = empo.logprob_entropy(logits, T({ 1, 1 }, 'i64'))
local p1 = 1 / (1 + math.exp(-2))
c.near(lp:tolist(), { math.log(0.5), math.log(p1) }, 1e-5, 'logprob')
c.near(ent:tolist(), { math.log(2), -(p1 * math.log(p1) + (1 - p1) * math.log(1 - p1)) }, 1e-5, 'entropy')

-- ---- printing ----
local s = tostring(T({ { 1, 2, 3 }, { 4, 5, 6 } }))
c.ok(s:find('[empo.Tensor of size 2x3 f32]', 1, true) ~= nil, 'footer: ' .. s)
c.ok(s:find(' 1 2 3\n 4 5 6\n', 1, true) ~= nil, 'integral floats print as integers: ' .. s)
local s2 = tostring(T({ 0.5, -1.25 }))
c.ok(s2:find('0.5000', 1, true) and s2:find('-1.2500', 1, true), '%.4f formatting: ' .. s2)
c.ok(tostring(T({ 1e-7, 2e-6 })):find('1.0000e-07', 1, true) ~= nil, 'tiny values use %e')
c.ok(tostring(T({ 1.5e6, 2.5 })):find('1.5000e+06', 1, true) ~= nil, 'huge values use %e')
c.ok(tostring(T({ 1e-5, 1.5 })):find(' 0.0000 1.5000', 1, true) ~= nil, 'a tiny value beside others stays %f')
local wide = tostring(empo.zeros(2, 30) + 0.5)
c.ok(wide:find('Columns 1 to', 1, true) ~= nil, 'wide matrices print in column blocks')
local maxw = 0
for line in wide:gmatch('[^\n]+') do maxw = math.max(maxw, #line) end
c.ok(maxw <= 80, 'rows fit 80 columns')
c.ok(tostring(T(2.5)):find('2.5000\n[empo.Tensor scalar f32]', 1, true) ~= nil, '0-d print')
c.ok(tostring(T({ 1, 2 }, 'i64')):find(' 1 2\n[empo.Tensor of size 2 i64]', 1, true) ~= nil, 'i64 print')
local big = tostring(empo.zeros(100, 100))
c.ok(big:find('...', 1, true) ~= nil and #big < 2000, 'large tensors are elided')
c.ok(tostring(empo.zeros(2, 2, 2)):find('(2,.,.) =', 1, true) ~= nil, '3-d tensors print by matrix')
c.ok(tostring(empo.zeros(0, 3)) == '[empo.Tensor of size 0x3 f32]', 'empty tensor print')
local g = empo.ones(2, { requires_grad = true })
c.ok(tostring(g):find('requires_grad]', 1, true) ~= nil, 'requires_grad in the footer')
c.ok(tostring(g * 2):find('grad_fn=<', 1, true) ~= nil, 'grad_fn in the footer')
c.ok(tostring(T({ 0 / 0, 1 / 0, -1 / 0 })):find('nan', 1, true) ~= nil, 'nan and inf print')

-- ---- autograd ----
local xg = T({ 1, 2, 3 }, { requires_grad = true })
c.ok(xg.requires_grad, 'requires_grad property')
c.ok(xg.is_leaf, 'leaf')
c.eq(xg.grad, nil, 'no grad before backward')
local y = (xg * xg):sum()
c.ok(y:grad_fn() ~= nil, 'result has a grad_fn')
c.eq(xg:grad_fn(), nil, 'a leaf has no grad_fn')
y:backward()
c.eq(xg.grad:tolist(), { 2, 4, 6 }, 'd sum(x^2) = 2x')
;(xg * 3):sum():backward()
c.eq(xg.grad:tolist(), { 5, 7, 9 }, 'gradients accumulate')
xg:zero_grad()
c.eq(xg.grad, nil, 'zero_grad drops the grad')
xg.grad = T({ 1, 1, 1 })
c.eq(xg.grad:tolist(), { 1, 1, 1 }, 'assigning t.grad')
xg.grad = nil
local w2 = empo.randn(3, 2, { requires_grad = true })
local out = T({ { 1, 2, 3 } }):matmul(w2):exp():mean()
out:backward()
c.eq(w2.grad:size(), { 3, 2 }, 'grad through matmul/exp/mean')
local d = xg:detach()
c.ok(not d.requires_grad and d:grad_fn() == nil, 'detach')
local req = empo.zeros(2):requires_grad_()
c.ok(req.requires_grad, 'requires_grad_()')
req.requires_grad = false
c.ok(not req.requires_grad, 'requires_grad = false')

-- ---- no_grad ----
c.ok(empo.is_grad_enabled(), 'grad on by default')
local r1, r2 = empo.no_grad(function(p, q) return xg * p, q end, 2, 'extra')
c.eq(r1:grad_fn(), nil, 'no_grad: no graph recorded')
c.eq(r2, 'extra', 'no_grad passes arguments and results')
c.ok(empo.is_grad_enabled(), 'no_grad restores the mode')
local ok, err = pcall(empo.no_grad, function() error('inner failure') end)
c.ok(not ok and tostring(err):find('inner failure', 1, true), 'no_grad re-raises')
c.ok(empo.is_grad_enabled(), 'no_grad restores the mode after an error')
c.eq(empo.set_grad_enabled(false), true, 'set_grad_enabled returns the previous mode')
c.eq((xg * 2):grad_fn(), nil, 'grad off')
empo.set_grad_enabled(true)
c.ok((xg * 2):grad_fn() ~= nil, 'grad on again')

-- ---- freeing ----
local f = empo.ones(3)
local before = empo.memory().tensors
f:free()
c.eq(empo.memory().tensors, before - 1, 'free releases at once')
c.ok(f:is_freed(), 'is_freed')
c.raises(function() return f:exp() end, 'tensor was freed')
c.raises(function() return f + 1 end, 'tensor was freed')
c.raises(function() return f:size() end, 'tensor was freed')
c.raises(function() return f[1] end, 'tensor was freed')
c.ok(tostring(f) == '[empo.Tensor (freed)]', 'a freed tensor still prints')
c.runs(function() f:free() end, 'a second free is harmless')
c.eq(empo.memory().tensors, before - 1, 'and releases nothing more')

-- dropped tensors are released after a collection
empo.collect()
local base = empo.memory().tensors
for _ = 1, 1000 do local _ = empo.ones(4) + 1 end
empo.collect()
c.eq(empo.memory().tensors, base, 'dropped tensors are released by empo.collect()')
for _ = 1, 50000 do local _ = a + 1 end
c.ok(empo.memory().tensors < base + 50000, 'the GC releases tensors in a loop')

-- ownership stress: kept, dropped, freed and re-freed tensors and views in
-- a seeded random order; every handle is released exactly once
empo.collect()
local base2 = empo.memory().tensors
local gen_s = empo.Generator(99, 0)
local kept = {}
for _ = 1, 20000 do
  local u = gen_s:uniform()
  local k = math.floor(gen_s:uniform() * 64) + 1
  if u < 0.3 then
    kept[k] = empo.ones(2) + k
  elseif u < 0.5 then
    if kept[k] then kept[k]:free(); kept[k] = nil end
  elseif u < 0.7 then
    if kept[k] then kept[k] = kept[k]:view(-1):narrow(1, 1, 2) end   -- views of views; old box dropped
  elseif u < 0.72 then
    collectgarbage('step')
  else
    local _ = a * u
  end
end
local sum_kept, nkept = 0, 0
for _, t in pairs(kept) do sum_kept = sum_kept + t:sum():item(); nkept = nkept + 1 end
c.ok(sum_kept > 0, 'kept tensors still hold their values')
empo.collect()
c.eq(empo.memory().tensors, base2 + nkept, 'only kept tensors survive the stress loop')
for _, t in pairs(kept) do t:free() end
kept = nil
empo.collect()
c.eq(empo.memory().tensors, base2, 'all released after the stress loop')

-- memory pressure: dropped big tensors do not pile up between GC cycles
empo.collect()
empo.reset_peak_memory()
local live0 = empo.memory().live
for _ = 1, 100 do local _ = empo.zeros(1024, 1024) end   -- 4 MiB each, 400 MiB in all
c.ok(empo.memory().peak - live0 < 160 * 2 ^ 20,
     string.format('memory pressure forces collections (peak %.0f MiB over 400 MiB dropped)',
                   (empo.memory().peak - live0) / 2 ^ 20))

-- ---- random ----
empo.manual_seed(123)
local r_a = empo.randn(3):tolist()
empo.manual_seed(123)
c.eq(empo.randn(3):tolist(), r_a, 'manual_seed reproduces draws')
local gen = empo.Generator(5, 1)
local g_a = gen:rand(4):tolist()
gen:set_state(5, 1, 0)
c.eq(gen:rand(4):tolist(), g_a, 'Generator set_state reproduces')
c.eq(empo.rand(4, { generator = empo.Generator(5, 1) }):tolist(), g_a, 'generator option')
c.ok(empo.Generator(5, 2):rand(4):tolist()[1] ~= g_a[1], 'streams differ')
local seed, stream, counter = gen:get_state()
c.ok(seed == 5 and stream == 1 and counter > 0, 'get_state')
local ri = empo.randint(3, 7, 100):tolist()
local in_range = true
for _, vv in ipairs(ri) do if vv < 3 or vv >= 7 or vv % 1 ~= 0 then in_range = false end end
c.ok(in_range, 'randint in [low, high)')
c.eq(empo.randint(10, { 2, 2 }):size(), { 2, 2 }, 'randint(high, size)')
local mn = empo.multinomial(T({ 0, 0, 1 }), 5, true):tolist()
c.eq(mn, { 2, 2, 2, 2, 2 }, 'multinomial picks the only possible index (0-based)')
c.eq(empo.randn(2, { dtype = 'f64' }):dtype(), 'f64', 'randn dtype option')
local u = gen:uniform()
c.ok(u >= 0 and u < 1, 'uniform draw')

-- ---- optimizer ----
local p = T({ 1, -1 }, { requires_grad = true })
local opt = empo.optim.adamw { params = { p }, lr = 0.1, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0 }
;(p * T({ 2, -3 })):sum():backward()
opt:step()
-- first AdamW step: m/(1-b1) = g, v/(1-b2) = g^2 -> p -= lr * g / (|g| + eps)
c.near(p:tolist(), { 0.9, -0.9 }, 1e-6, 'adamw first step')
opt:zero_grad()
c.eq(p.grad, nil, 'optimizer zero_grad')
c.eq(opt.t, 1, 'step count')
local q = T({ 3, 4 }, { requires_grad = true })
q.grad = T({ 3, 4 })
local norm = empo.clip_grad_norm({ q }, 1)
c.near(norm, 5, 1e-6, 'clip_grad_norm returns the norm')
c.near(q.grad:tolist(), { 0.6, 0.8 }, 1e-5, 'clip_grad_norm scales')
c.near(empo.grad_norm({ q }), 1, 1e-5, 'grad_norm')
local named = empo.optim.adamw { params = { w = empo.zeros(2, { requires_grad = true }) } }
c.eq(#named.params, 1, 'params by name')

-- ---- runtime ----
empo.set_num_threads(1)
c.eq(empo.get_num_threads(), 1, 'set_num_threads')
empo.set_num_threads(2)
local mem = empo.memory()
c.ok(mem.live > 0 and mem.peak >= mem.live and mem.cached >= 0, 'memory()')
c.ok(type(empo.version) == 'string' and empo.version ~= '', 'version')

c.done()
