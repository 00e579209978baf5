-- empo.tensor.ops — every operation of core/include/empo/ops.h and the views of
-- core/include/empo/tensor.h, as Tensor methods (t:exp()) and as functions
-- (empo.exp(t)). Argument checking happens here so that a wrong Lua type
-- is a Lua error naming the function and the argument; shape and dtype
-- checks are the C side's. Dims and positions are 1-based (see
-- empo.tensor); index tensors are 0-based.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local C = E.C

local istype, ffi_string, ffi_new = ffi.istype, ffi.string, ffi.new
local type, tonumber, select, error, format = type, tonumber, select, error, string.format
local box_t, new_box, outp, outp2 = T.box_t, T.new_box, T.outp, T.outp2
local H, HO, result, check, argerror = T.handle, T.handle_or_nil, T.result, T.check, T.argerror
local cdim, cdim_n, describe, typename = T.cdim, T.cdim_n, T.describe, T.typename
local methods = T.methods
local shape_buf = T.shape_buf

local M = {}

local function def(name, fn)
  methods[name] = fn
  M[name] = fn
end

-- ---- unary ----

def('exp', function(a) return result(C.empo_exp(outp, H(a, 'empo.exp', 1))) end)
def('log', function(a) return result(C.empo_log(outp, H(a, 'empo.run.log', 1))) end)
def('sqrt', function(a) return result(C.empo_sqrt(outp, H(a, 'empo.sqrt', 1))) end)
def('rsqrt', function(a) return result(C.empo_rsqrt(outp, H(a, 'empo.rsqrt', 1))) end)
def('tanh', function(a) return result(C.empo_tanh(outp, H(a, 'empo.tanh', 1))) end)
def('sigmoid', function(a) return result(C.empo_sigmoid(outp, H(a, 'empo.sigmoid', 1))) end)
def('silu', function(a) return result(C.empo_silu(outp, H(a, 'empo.silu', 1))) end)
def('relu', function(a) return result(C.empo_relu(outp, H(a, 'empo.relu', 1))) end)
def('abs', function(a) return result(C.empo_abs(outp, H(a, 'empo.abs', 1))) end)
def('neg', methods.neg)
def('add', methods.add)
def('sub', methods.sub)
def('mul', methods.mul)
def('div', methods.div)
def('pow', methods.pow)

-- approximate: true or 'tanh' for the tanh approximation.
def('gelu', function(a, approximate)
  local h = H(a, 'empo.gelu', 1)
  return result(C.empo_gelu(outp, h, (approximate and approximate ~= 'none') and 1 or 0))
end)

local inf = math.huge
def('clamp', function(a, lo, hi)
  local h = H(a, 'empo.clamp', 1)
  if lo ~= nil and type(lo) ~= 'number' then argerror('empo.clamp', 2, 'number or nil', lo) end
  if hi ~= nil and type(hi) ~= 'number' then argerror('empo.clamp', 3, 'number or nil', hi) end
  return result(C.empo_clamp(outp, h, lo or -inf, hi or inf))
end)

-- ---- binary with a tensor or a number ----

-- The other operand as a handle; a number becomes a 0-d tensor with h's
-- dtype (returned as a box so the caller can free it).
local function operand(x, h, fname, argn)
  if istype(box_t, x) then
    local hx = x.h
    if hx == nil then error(format('%s: argument %d: tensor was freed', fname, argn), 3) end
    return hx, nil
  end
  if type(x) == 'number' or type(x) == 'boolean' then
    local v = x
    if type(x) == 'boolean' then v = x and 1 or 0 end
    local s = T.scalar_tensor(v, C.empo_tensor_dtype(h), h)
    return s.h, s
  end
  error(format('%s: argument %d: expected tensor or number, got %s', fname, argn, typename(x)), 3)
end

local function binary(name, cfn)
  local fname = 'empo.' .. name
  def(name, function(a, b)
    local hb, tmp = operand(b, H(a, fname, 1), fname, 2)
    local st = cfn(outp, H(a, fname, 1), hb)   -- a's handle taken after any allocation
    if tmp then tmp:free() end
    return result(st)
  end)
end
binary('eq', function(o, a, b) return C.empo_eq(o, a, b) end)
binary('lt', function(o, a, b) return C.empo_lt(o, a, b) end)
binary('gt', function(o, a, b) return C.empo_gt(o, a, b) end)

def('maximum', function(a, b)
  local ha = H(a, 'empo.maximum', 1)
  if type(b) == 'number' then return result(C.empo_clamp(outp, ha, b, inf)) end
  return result(C.empo_maximum(outp, ha, H(b, 'empo.maximum', 2)))
end)
def('minimum', function(a, b)
  local ha = H(a, 'empo.minimum', 1)
  if type(b) == 'number' then return result(C.empo_clamp(outp, ha, -inf, b)) end
  return result(C.empo_minimum(outp, ha, H(b, 'empo.minimum', 2)))
end)

-- ---- reductions ----

-- Reduce over several dims (a table), last first so earlier dims keep
-- their numbers.
local function reduce_dims(x, dims, keepdim, fn, fname)
  local h = H(x, fname, 1)
  local nd, cd = C.empo_tensor_ndim(h), {}
  for i, d in ipairs(dims) do cd[i] = cdim_n(nd, d, fname, 2, h) end
  table.sort(cd, function(p, q) return p > q end)
  local cur = x
  for _, d in ipairs(cd) do cur = fn(cur, d + 1, keepdim) end
  return cur
end

local sum, mean
-- sum(x) over everything; sum(x, dim, keepdim); sum(x, {d1, d2}, keepdim)
sum = function(x, dim, keepdim)
  local h = H(x, 'empo.sum', 1)
  if dim == nil then return result(C.empo_sum(outp, h)) end
  if type(dim) == 'table' then return reduce_dims(x, dim, keepdim, sum, 'empo.sum') end
  return result(C.empo_sum_dim(outp, h, cdim(h, dim, 'empo.sum', 2), keepdim and 1 or 0))
end
mean = function(x, dim, keepdim)
  local h = H(x, 'empo.mean', 1)
  if dim == nil then return result(C.empo_mean(outp, h)) end
  if type(dim) == 'table' then return reduce_dims(x, dim, keepdim, mean, 'empo.mean') end
  return result(C.empo_mean_dim(outp, h, cdim(h, dim, 'empo.mean', 2), keepdim and 1 or 0))
end
def('sum', sum)
def('mean', mean)

-- max(x) -> 0-d tensor; max(x, dim, keepdim) -> values, indices (i64, 0-based)
def('max', function(x, dim, keepdim)
  local h = H(x, 'empo.max', 1)
  if dim == nil then return result(C.empo_max(outp, h)) end
  local st = C.empo_max_dim(outp, outp2, h, cdim(h, dim, 'empo.max', 2), keepdim and 1 or 0)
  if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
  return new_box(outp[0]), new_box(outp2[0])
end)

-- argmax(x, dim, keepdim) -> i64 0-based indices; without dim, over the
-- flattened tensor (a 0-d index).
def('argmax', function(x, dim, keepdim)
  local h = H(x, 'empo.argmax', 1)
  if dim == nil then
    shape_buf[0] = -1
    check(C.empo_reshape(outp, h, 1, shape_buf))
    local flat = new_box(outp[0])
    local st = C.empo_argmax(outp, flat.h, 0, 0)
    flat:free()
    return result(st)
  end
  return result(C.empo_argmax(outp, h, cdim(h, dim, 'empo.argmax', 2), keepdim and 1 or 0))
end)

-- softmax over dim (default: the last)
def('softmax', function(x, dim)
  local h = H(x, 'empo.softmax', 1)
  return result(C.empo_softmax(outp, h, dim == nil and C.empo_tensor_ndim(h) - 1 or cdim(h, dim, 'empo.softmax', 2)))
end)
def('log_softmax', function(x, dim)
  local h = H(x, 'empo.log_softmax', 1)
  return result(C.empo_log_softmax(outp, h,
    dim == nil and C.empo_tensor_ndim(h) - 1 or cdim(h, dim, 'empo.log_softmax', 2)))
end)

-- ---- linear algebra ----

def('matmul', function(a, b)
  return result(C.empo_matmul(outp, H(a, 'empo.matmul', 1), H(b, 'empo.matmul', 2)))
end)
-- x [..., in] @ w[out, in]^T + b[out]
def('linear', function(x, w, b)
  return result(C.empo_linear(outp, H(x, 'empo.linear', 1), H(w, 'empo.linear', 2), HO(b, 'empo.linear', 3)))
end)
-- mixed precision: bf16(x) @ w16^T + b, w16 a bf16 copy of w (empo.nn.mixed)
def('linear_bf16', function(x, w, w16, b)
  return result(C.empo_linear_bf16(outp, H(x, 'empo.linear_bf16', 1), H(w, 'empo.linear_bf16', 2),
                                   H(w16, 'empo.linear_bf16', 3), HO(b, 'empo.linear_bf16', 4)))
end)

-- ---- indexing ----

-- weight [V, D], ids (i32/i64, 0-based) [...] -> [..., D]
def('embedding', function(w, ids)
  return result(C.empo_embedding(outp, H(w, 'empo.embedding', 1), H(ids, 'empo.embedding', 2)))
end)
def('gather', function(x, dim, index)
  local h = H(x, 'empo.gather', 1)
  return result(C.empo_gather(outp, h, cdim(h, dim, 'empo.gather', 2), H(index, 'empo.gather', 3)))
end)
def('index_select', function(x, dim, index)
  local h = H(x, 'empo.index_select', 1)
  return result(C.empo_index_select(outp, h, cdim(h, dim, 'empo.index_select', 2), H(index, 'empo.index_select', 3)))
end)

-- cat({t1, t2, ...}, dim = 1)
def('cat', function(list, dim)
  if type(list) ~= 'table' or istype(box_t, list) then argerror('empo.cat', 1, 'table of tensors', list) end
  local n = #list
  if n == 0 then error('empo.cat: argument 1: the list of tensors is empty', 2) end
  local hs = ffi_new('empo_tensor*[?]', n)
  for i = 1, n do
    local x = list[i]
    if not istype(box_t, x) then
      error(format('empo.cat: argument 1: element %d: expected tensor, got %s', i, typename(x)), 2)
    end
    if x.h == nil then error(format('empo.cat: argument 1: element %d: tensor was freed', i), 2) end
    hs[i - 1] = x.h
  end
  local d = dim == nil and 0 or cdim(hs[0], dim, 'empo.cat', 2)
  return result(C.empo_cat(outp, n, hs, d))
end)

-- where(cond, a, b): a and b may be numbers
def('where', function(c, a, b)
  H(c, 'empo.where', 1)
  local ref = (istype(box_t, a) and a.h) or (istype(box_t, b) and b.h)
  local ta, tb
  local ha, hb
  if type(a) == 'number' or type(b) == 'number' then
    local dt = ref and C.empo_tensor_dtype(ref) or C.EMPO_F32
    if type(a) == 'number' then ta = T.scalar_tensor(a, dt, ref or nil); ha = ta.h end
    if type(b) == 'number' then tb = T.scalar_tensor(b, dt, ref or nil); hb = tb.h end
  end
  ha = ha or H(a, 'empo.where', 2)
  hb = hb or H(b, 'empo.where', 3)
  local st = C.empo_where(outp, H(c, 'empo.where', 1), ha, hb)
  if ta then ta:free() end
  if tb then tb:free() end
  return result(st)
end)

def('masked_fill', function(x, mask, value)
  local h = H(x, 'empo.masked_fill', 1)
  local hm = H(mask, 'empo.masked_fill', 2)
  if type(value) ~= 'number' then argerror('empo.masked_fill', 3, 'number', value) end
  return result(C.empo_masked_fill(outp, h, hm, value))
end)

-- ---- fused transformer kernels ----

-- x [..., D] * rsqrt(mean(x^2) + eps) * w [D]
def('rmsnorm', function(x, w, eps)
  if eps ~= nil and type(eps) ~= 'number' then argerror('empo.rmsnorm', 3, 'number', eps) end
  return result(C.empo_rmsnorm(outp, H(x, 'empo.rmsnorm', 1), H(w, 'empo.rmsnorm', 2), eps or 1e-6))
end)

-- x [B, H, T, Dh]; positions i64 [B, T] or [T] (values) or nil for offset + t
def('rope', function(x, positions, offset, theta)
  local h = H(x, 'empo.rope', 1)
  local hp = HO(positions, 'empo.rope', 2)
  if offset ~= nil and type(offset) ~= 'number' then argerror('empo.rope', 3, 'number', offset) end
  if theta ~= nil and type(theta) ~= 'number' then argerror('empo.rope', 4, 'number', theta) end
  return result(C.empo_rope(outp, h, hp, offset or 0, theta or 10000))
end)

-- q [B, Hq, T, Dh], k/v [B, Hkv, S, Dh]; opts {causal=, scale=, key_mask=}
-- (opts may also be a boolean: causal)
def('attention', function(q, k, v, opts)
  local hq, hk, hv = H(q, 'empo.attention', 1), H(k, 'empo.attention', 2), H(v, 'empo.attention', 3)
  local causal, scale, mask = false, 0, nil
  if type(opts) == 'boolean' then
    causal = opts
  elseif type(opts) == 'table' then
    causal = opts.causal and true or false
    scale = opts.scale or 0
    if type(scale) ~= 'number' then argerror('empo.attention', 4, 'number for opts.scale', scale) end
    mask = HO(opts.key_mask, 'empo.attention', 4)
  elseif opts ~= nil then
    argerror('empo.attention', 4, 'options table', opts)
  end
  return result(C.empo_attention(outp, hq, hk, hv, causal and 1 or 0, scale, mask))
end)

-- silu(gate) * up
def('swiglu', function(g, u)
  return result(C.empo_swiglu(outp, H(g, 'empo.swiglu', 1), H(u, 'empo.swiglu', 2)))
end)

-- logits [N, V], ids [N] -> logp [N], entropy [N]
def('logprob_entropy', function(logits, ids)
  local st = C.empo_logprob_entropy(outp, outp2, H(logits, 'empo.logprob_entropy', 1),
                                    H(ids, 'empo.logprob_entropy', 2))
  if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
  return new_box(outp[0]), new_box(outp2[0])
end)

-- h [N, D], weight [V, D], ids [N] -> logp [N], entropy [N] of softmax(h @ weight^T / temperature),
-- chunk rows at a time (never [N, V]); opts: temperature (1), vocab (0 = all rows), chunk (0 = ~32 MB)
def('head_logprob', function(h, weight, ids, opts)
  opts = opts or {}
  local t, vocab, chunk = opts.temperature or 1, opts.vocab or 0, opts.chunk or 0
  if type(t) ~= 'number' or not (t > 0) then argerror('empo.head_logprob', 4, 'temperature > 0', t) end
  local st = C.empo_head_logprob(outp, outp2, H(h, 'empo.head_logprob', 1), H(weight, 'empo.head_logprob', 2),
                                 H(ids, 'empo.head_logprob', 3), 1 / t, vocab, chunk)
  if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
  return new_box(outp[0]), new_box(outp2[0])
end)

-- ---- views and copies ----

-- view / reshape / expand (x, size...): the C function op with a shape
local function shape_op(name, op)
  local fname = 'empo.' .. name
  def(name, function(x, ...)
    local h = H(x, fname, 1)
    local nd = T.read_shape(fname, shape_buf, ...)
    return result(op(outp, h, nd, shape_buf))
  end)
end
shape_op('view', C.empo_view)
shape_op('reshape', C.empo_reshape)
def('flatten', function(x)
  shape_buf[0] = -1
  return result(C.empo_reshape(outp, H(x, 'empo.flatten', 1), 1, shape_buf))
end)
shape_op('expand', C.empo_expand)
def('transpose', function(x, d0, d1)
  local h = H(x, 'empo.transpose', 1)
  return result(C.empo_transpose(outp, h, cdim(h, d0, 'empo.transpose', 2), cdim(h, d1, 'empo.transpose', 3)))
end)

local perm_buf = ffi_new('int[?]', C.EMPO_MAX_DIMS)
-- permute(x, 2, 1, 3) or permute(x, {2, 1, 3})
def('permute', function(x, ...)
  local h = H(x, 'empo.permute', 1)
  local nd = C.empo_tensor_ndim(h)
  local dims = ...
  if type(dims) ~= 'table' then dims = { ... } end
  if #dims ~= nd then
    error(format('empo.permute: %d dims given for %s', #dims, describe(h)), 2)
  end
  for i = 1, nd do perm_buf[i - 1] = cdim_n(nd, dims[i], 'empo.permute', i + 1, h) end
  return result(C.empo_permute(outp, h, nd, perm_buf))
end)

-- Size of dim cd (0-based) of h.
local function dsize(h, cd) return tonumber(C.empo_tensor_size(h, cd)) end

-- narrow(x, dim, start, length): elements start..start+length-1 (1-based)
def('narrow', function(x, dim, start, length)
  local h = H(x, 'empo.narrow', 1)
  local cd = cdim(h, dim, 'empo.narrow', 2)
  local n = dsize(h, cd)
  if type(start) ~= 'number' or start % 1 ~= 0 then argerror('empo.narrow', 3, 'integer start', start) end
  if type(length) ~= 'number' or length % 1 ~= 0 then argerror('empo.narrow', 4, 'integer length', length) end
  local s0 = start > 0 and start - 1 or n + start
  if start == 0 or s0 < 0 or length < 0 or s0 + length > n then
    error(format('empo.narrow: start %d, length %d do not fit dim %d (size %d) of %s',
                 start, length, dim, n, describe(h)), 2)
  end
  return result(C.empo_narrow(outp, h, cd, s0, length))
end)

-- slice(x, dim, first, last, step): first..last inclusive, 1-based,
-- negatives from the end, clamped like string.sub; step >= 1.
def('slice', function(x, dim, first, last, step)
  local h = H(x, 'empo.slice', 1)
  local cd = cdim(h, dim, 'empo.slice', 2)
  local n = dsize(h, cd)
  first, last, step = first or 1, last or -1, step or 1
  if type(first) ~= 'number' then argerror('empo.slice', 3, 'number', first) end
  if type(last) ~= 'number' then argerror('empo.slice', 4, 'number', last) end
  if type(step) ~= 'number' or step < 1 or step % 1 ~= 0 then
    error(format('empo.slice: argument 5: step must be an integer >= 1, got %s', tostring(step)), 2)
  end
  if first < 0 then first = n + first + 1 end
  if last < 0 then last = n + last + 1 end
  if first < 1 then first = 1 end
  if last > n then last = n end
  if last < first - 1 then last = first - 1 end
  if first > n + 1 then first, last = n + 1, n end
  return result(C.empo_slice(outp, h, cd, first - 1, last, step))
end)

-- select(x, dim, index): removes dim
def('select', function(x, dim, index)
  local h = H(x, 'empo.select', 1)
  local cd = cdim(h, dim, 'empo.select', 2)
  local i = T.cindex(index, dsize(h, cd), 'empo.select', 'dim ' .. tostring(dim), h)
  return result(C.empo_select(outp, h, cd, i))
end)

-- unsqueeze(x, dim): dim is the new dim's place, 1..n+1 or -(n+1)..-1
def('unsqueeze', function(x, dim)
  local h = H(x, 'empo.unsqueeze', 1)
  return result(C.empo_unsqueeze(outp, h, cdim_n(C.empo_tensor_ndim(h) + 1, dim, 'empo.unsqueeze', 2, h)))
end)

-- squeeze(x, dim); without dim, every dim of size 1
def('squeeze', function(x, dim)
  local h = H(x, 'empo.squeeze', 1)
  if dim ~= nil then
    return result(C.empo_squeeze(outp, h, cdim(h, dim, 'empo.squeeze', 2)))
  end
  local nd, cur = C.empo_tensor_ndim(h), h
  for d = nd - 1, 0, -1 do
    if C.empo_tensor_size(h, d) == 1 then
      local st = C.empo_squeeze(outp, cur, d)
      if cur ~= h then C.empo_tensor_release(cur) end
      if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
      cur = outp[0]
    end
  end
  if cur == h then   -- nothing to squeeze: still a new view
    for d = 0, nd - 1 do shape_buf[d] = C.empo_tensor_size(h, d) end
    return result(C.empo_view(outp, h, nd, shape_buf))
  end
  return new_box(cur)
end)

def('contiguous', function(x) return result(C.empo_contiguous(outp, H(x, 'empo.contiguous', 1))) end)
def('clone', function(x) return result(C.empo_clone(outp, H(x, 'empo.clone', 1))) end)

-- x:to('cuda') / x:to('cpu') moves x (the gradient follows it back);
-- x:to('bf16') converts it.
local DEVICES = { cpu = C.EMPO_CPU, cuda = C.EMPO_CUDA }
def('to', function(x, what)
  local h = H(x, 'empo.to', 1)
  if what == nil then argerror('empo.to', 2, "device ('cpu', 'cuda') or dtype string", what) end
  if DEVICES[what] then return result(C.empo_to(outp, h, DEVICES[what])) end
  return result(C.empo_to_dtype(outp, h, T.dtype_id(what, 'empo.to', 2)))
end)
def('cpu', function(x) return result(C.empo_to(outp, H(x, 'empo.cpu', 1), C.EMPO_CPU)) end)
def('cuda', function(x) return result(C.empo_to(outp, H(x, 'empo.cuda', 1), C.EMPO_CUDA)) end)
local function caster(name, dt)
  local fname = 'empo.' .. name
  def(name, function(x) return result(C.empo_to_dtype(outp, H(x, fname, 1), dt)) end)
end
caster('float', C.EMPO_F32)
caster('double', C.EMPO_F64)
caster('half', C.EMPO_F16)
caster('bfloat16', C.EMPO_BF16)
caster('int', C.EMPO_I32)
caster('long', C.EMPO_I64)
caster('byte', C.EMPO_U8)

-- split(x, size_or_sizes, dim = 1) -> a table of views (via narrow)
def('split', function(x, sizes, dim)
  local h = H(x, 'empo.split', 1)
  dim = dim or 1
  local cd = cdim(h, dim, 'empo.split', 3)
  local n = dsize(h, cd)
  local parts, start = {}, 0
  if type(sizes) == 'number' then
    if sizes < 1 or sizes % 1 ~= 0 then
      error(format('empo.split: argument 2: size must be a positive integer, got %s', tostring(sizes)), 2)
    end
    while start < n do
      local len = math.min(sizes, n - start)
      check(C.empo_narrow(outp, h, cd, start, len))
      parts[#parts + 1] = new_box(outp[0])
      start = start + len
    end
  elseif type(sizes) == 'table' then
    local total = 0
    for i = 1, #sizes do total = total + sizes[i] end
    if total ~= n then
      error(format('empo.split: sizes add up to %d but dim %d of %s has size %d', total, dim, describe(h), n), 2)
    end
    for i = 1, #sizes do
      check(C.empo_narrow(outp, h, cd, start, sizes[i]))
      parts[i] = new_box(outp[0])
      start = start + sizes[i]
    end
  else
    argerror('empo.split', 2, 'size or table of sizes', sizes)
  end
  return parts
end)

-- chunk(x, n, dim = 1): n pieces (the last may be smaller)
def('chunk', function(x, n, dim)
  local h = H(x, 'empo.chunk', 1)
  if type(n) ~= 'number' or n < 1 then argerror('empo.chunk', 2, 'positive number', n) end
  local size = dsize(h, cdim(h, dim or 1, 'empo.chunk', 3))
  return M.split(x, math.max(1, math.ceil(size / n)), dim)
end)

return M
