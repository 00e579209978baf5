-- empo.tensor — the Tensor type: a boxed libempo handle with metamethods.
--
-- A Tensor is `struct empo_tensor_box { empo_tensor *h; int32_t slot; }`;
-- the box owns one reference, dropped at once by t:free() (after which every
-- method raises "tensor was freed") or after the garbage collector finds the
-- box dead. Tensor memory lives in C.
--
-- Why not ffi.gc or a __gc per box: LuaJIT runs finalizers one by one from
-- inside the collector, through the interpreter, which costs 0.3-0.9 us per
-- tensor (measured, Lua or C finalizer alike) -- more than a small op.
-- Instead each box is registered in a slot table (handle in a C array, box
-- in a weak-valued Lua table); one sentinel object's finalizer marks the end
-- of every GC cycle, and the next tensor creation sweeps the slots whose box
-- is gone, in compiled code (~70 ns per tensor). empo.collect() collects
-- and sweeps at once; lua_close releases everything still held. The Lua
-- GC cannot see C memory, so a collection is also forced when the bytes of
-- live tensors grow by half (M.gc_policy). For code holding raw handles
-- (t.h): handles are released only when a tensor is created, so take them
-- after the last tensor creation before the C call that uses them.
--
-- Lua conventions (like Torch7):
--   * positions you pass as Lua numbers are 1-based: dims (t:sum(1) sums the
--     first dim), t[i], t[{i, j}], narrow/select/slice starts; negative ones
--     count from the end (-1 = last). Dim 0 is an error.
--   * index *tensors* hold 0-based values, as in PyTorch: token ids, indices
--     given to gather/index_select/embedding, and those returned by
--     max/argmax/multinomial.
--   * t[i] on a 1-d tensor is a number; on an n-d tensor the i-th slice of
--     dim 1 (a view). t[{i, j}] reads one element; both can be assigned.
--
-- This file holds the type, inspection, indexing, autograd entry points and
-- the arithmetic metamethods; ops.lua (empo.tensor.ops) adds the other
-- operations, random.lua random tensors, print.lua tostring; ffi.lua is
-- the binding below them all.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local C = E.C

if not pcall(ffi.typeof, 'struct empo_tensor_box') then
  ffi.cdef [[
    struct empo_tensor_box { empo_tensor *h; int32_t slot; };
    struct empo_gc_sentinel { int unused; };
  ]]
end

local istype, ffi_string, ffi_new = ffi.istype, ffi.string, ffi.new
local type, tonumber, select, error, format = type, tonumber, select, error, string.format
local floor = math.floor

local M = {}
local methods = {}   -- t:name(...)
local props = {}     -- t.name (computed)
local mt = {}
M.methods, M.props, M.mt = methods, props, mt

local MAX_DIMS = C.EMPO_MAX_DIMS

-- Scratch buffers shared by every call (single-threaded Lua state).
local outp = ffi_new('empo_tensor*[1]')
local outp2 = ffi_new('empo_tensor*[1]')
local shape_buf = ffi_new('int64_t[?]', MAX_DIMS)
local idx_buf = ffi_new('int64_t[?]', MAX_DIMS)
local dbl = ffi_new('double[1]')
local desc_buf = ffi_new('char[256]')
M.outp, M.outp2, M.shape_buf, M.idx_buf = outp, outp2, shape_buf, idx_buf

local box_t -- set by ffi.metatype at the end of the file

-- ---- ownership: slots swept after each GC cycle (see the top) ----

local cap = 1024
local slot_h = ffi_new('empo_tensor*[?]', cap + 1)   -- [1..top] handles
local slot_box = setmetatable({}, { __mode = 'v' })   -- [1..top] boxes, weak
local free_slots, nfree, top = {}, 0, 0
local sweep_due = false

local function sweep()
  sweep_due = false
  local released = 0
  for s = 1, top do
    local h = slot_h[s]
    if h ~= nil and slot_box[s] == nil then
      slot_h[s] = nil
      nfree = nfree + 1
      free_slots[nfree] = s
      C.empo_tensor_release(h)
      released = released + 1
    end
  end
  return released
end

local function grow()
  local ncap = cap * 2
  local n = ffi_new('empo_tensor*[?]', ncap + 1)
  ffi.copy(n, slot_h, (cap + 1) * ffi.sizeof('empo_tensor*'))
  slot_h, cap = n, ncap
end

-- Memory pressure: the Lua GC sees only the small boxes, never the tensor
-- memory behind them, so a loop dropping big tensors would pile up C memory
-- between cycles. When the bytes held by live tensors (on the host and on
-- a device together) pass gc_at, collect
-- and sweep at once, then allow factor x the survivors (at least min_bytes
-- more) before the next forced collection. Defaults: 1.5, 64 MiB.
local gc_factor, gc_min = 1.5, 64 * 2 ^ 20
local gc_at = gc_min
local function pressure_collect()
  collectgarbage()
  sweep()
  local live = tonumber(C.empo_mem_all_live_bytes())
  gc_at = math.max(live * gc_factor, live + gc_min)
end

-- set the policy; returns the previous one
function M.gc_policy(factor, min_bytes)
  local pf, pm = gc_factor, gc_min
  gc_factor, gc_min = factor or gc_factor, min_bytes or gc_min
  local live = tonumber(C.empo_mem_all_live_bytes())
  gc_at = math.max(live * gc_factor, live + gc_min)
  return pf, pm
end

-- The box owning handle h (one reference).
local function new_box(h)
  if sweep_due then sweep() end
  if C.empo_mem_all_live_bytes() > gc_at then pressure_collect() end
  local s
  if nfree > 0 then
    s = free_slots[nfree]
    nfree = nfree - 1
  else
    s = top + 1
    top = s
    if s > cap then grow() end
  end
  slot_h[s] = h
  local b = box_t(h, s)
  slot_box[s] = b
  return b
end
M.new_box = new_box

-- Unregister box b and release its handle now.
local function release_box(b)
  local h = b.h
  if h ~= nil then
    b.h = nil
    local s = b.slot
    slot_h[s] = nil
    slot_box[s] = nil
    nfree = nfree + 1
    free_slots[nfree] = s
    C.empo_tensor_release(h)
  end
end

-- A sentinel nobody references dies in every GC cycle; its finalizer arms
-- the sweep and plants the next one.
local arm
local sentinel_t = ffi.metatype('struct empo_gc_sentinel', {
  __gc = function() sweep_due = true; arm() end,
})
arm = function() sentinel_t() end
arm()

-- Collect garbage and release the tensors of dead boxes now; returns how
-- many were released.
function M.collect()
  collectgarbage()
  return sweep()
end
function M.sweep_if_due() if sweep_due then sweep() end end

-- At lua_close (all cdata finalizers run then): release what is still held.
-- Anchored in the tensor metatable, so it lives as long as the type.
local owner = ffi.gc(ffi_new('int[1]'), function()
  for s = 1, top do
    local h = slot_h[s]
    if h ~= nil then
      slot_h[s] = nil
      local b = slot_box[s]
      if b ~= nil then b.h = nil end
      C.empo_tensor_release(h)
    end
  end
  top, nfree = 0, 0
end)

-- ---- dtypes ----

local DTYPE = {
  f32 = 0, f64 = 1, bf16 = 2, f16 = 3, i32 = 4, i64 = 5, u8 = 6,
  float32 = 0, float = 0, float64 = 1, double = 1, bfloat16 = 2, float16 = 3, half = 3,
  int32 = 4, int = 4, int64 = 5, long = 5, uint8 = 6, byte = 6, bool = 6,
}
local DNAME = { [0] = 'f32', 'f64', 'bf16', 'f16', 'i32', 'i64', 'u8' }
M.DTYPE, M.DNAME = DTYPE, DNAME

-- ---- errors ----
-- Every helper raises at level 3: itself, the public function, the caller.

local function typename(x)
  if istype('struct empo_tensor_box', x) then return 'tensor' end
  local t = type(x)
  if t == 'cdata' then return tostring(ffi.typeof(x)):gsub('^ctype', 'cdata') end
  return t
end
M.typename = typename

local function argerror(fname, argn, expected, got)
  error(format('%s: argument %d: expected %s, got %s', fname, argn, expected, typename(got)), 3)
end
M.argerror = argerror

-- "[2 x 3] f32" for error messages.
local function describe(h)
  return ffi_string(C.empo_tensor_describe(h, desc_buf, 256))
end
M.describe = describe

-- The handle of tensor argument x of fname, or a clear error.
local function H(x, fname, argn)
  if istype(box_t, x) then
    local h = x.h
    if h ~= nil then return h end
    error(format('%s: argument %d: tensor was freed', fname, argn), 3)
  end
  error(format('%s: argument %d: expected tensor, got %s', fname, argn, typename(x)), 3)
end
M.handle = H

-- Like H, but nil gives a NULL handle.
local function HO(x, fname, argn)
  if x == nil then return nil end
  if istype(box_t, x) then
    local h = x.h
    if h ~= nil then return h end
    error(format('%s: argument %d: tensor was freed', fname, argn), 3)
  end
  error(format('%s: argument %d: expected tensor or nil, got %s', fname, argn, typename(x)), 3)
end
M.handle_or_nil = HO

-- Box *outp after a C call; raise the C message on failure. Call it in tail
-- position (`return result(...)`) so the error points at the user's line.
local function result(st)
  if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
  return new_box(outp[0])
end
M.result = result

local function check(st)
  if st ~= 0 then error(ffi_string(C.empo_last_error()), 3) end
end
M.check = check

-- Take ownership of a raw handle (one reference) from other C code.
function M.wrap(h)
  if h == nil then return nil end
  return new_box(h)
end

function M.is_tensor(x) return istype(box_t, x) end

-- ---- argument parsing ----

local function dtype_id(d, fname, argn)
  if d == nil then return 0 end
  local id = DTYPE[d]
  if id then return id end
  if type(d) == 'number' and DNAME[d] then return d end
  if type(d) == 'string' then
    error(format("%s: argument %d: unknown dtype '%s' (expected f32, f64, bf16, f16, i32, i64 or u8)",
                 fname, argn, d), 3)
  end
  argerror(fname, argn, 'dtype name', d)
end
M.dtype_id = dtype_id

-- 0-based dim from a Lua dim (1..n, or -n..-1) of a tensor with nd dims.
local function cdim_n(nd, d, fname, argn, h)
  if type(d) ~= 'number' then argerror(fname, argn, 'dim (number)', d) end
  if d % 1 == 0 then
    if d >= 1 and d <= nd then return d - 1 end
    if d < 0 and d >= -nd then return nd + d end
  end
  local what = h and describe(h) or (nd .. '-d tensor')
  if d == 0 then
    error(format('%s: argument %d: dim 0 is invalid: dims are 1-based (1..%d, or -%d..-1 from the end) for %s',
                 fname, argn, nd, nd, what), 3)
  end
  error(format('%s: argument %d: dim %s is out of range (1..%d, or -%d..-1) for %s',
               fname, argn, tostring(d), nd, nd, what), 3)
end
M.cdim_n = cdim_n

local function cdim(h, d, fname, argn)
  local nd = C.empo_tensor_ndim(h)
  if type(d) == 'number' and d % 1 == 0 then
    if d >= 1 and d <= nd then return d - 1 end
    if d < 0 and d >= -nd then return nd + d end
  end
  return cdim_n(nd, d, fname, argn, h)
end
M.cdim = cdim

-- 0-based position from a Lua index (1..n, or -n..-1) into a dim of size n.
local function cindex(i, n, fname, what, h)
  if type(i) ~= 'number' then
    error(format('%s: %s: expected a number index, got %s', fname, what, typename(i)), 3)
  end
  if i % 1 == 0 then
    if i >= 1 and i <= n then return i - 1 end
    if i < 0 and i >= -n then return n + i end
  end
  error(format('%s: index %s is out of range for %s of size %d%s (indices are 1..%d or -%d..-1)',
               fname, tostring(i), what, n, h and (' in ' .. describe(h)) or '', n, n), 3)
end
M.cindex = cindex

local function is_options(x)
  return type(x) == 'table' and x[1] == nil and not istype(box_t, x)
end

-- Sizes as varargs numbers or one table, optionally followed by an options
-- table: (2, 3), ({2, 3}), (2, 3, {dtype = 'i64'}). Fills buf; returns
-- ndim, options.
local function read_shape(fname, buf, ...)
  local n = select('#', ...)
  local a1 = ...
  if type(a1) == 'table' and not istype(box_t, a1) then
    local nd = #a1
    if nd > MAX_DIMS then error(format('%s: %d dims, at most %d', fname, nd, MAX_DIMS), 3) end
    for i = 1, nd do
      local v = a1[i]
      if type(v) == 'cdata' then v = tonumber(v) end
      if type(v) ~= 'number' or v % 1 ~= 0 then
        error(format('%s: size %d: expected an integer, got %s', fname, i, tostring(v)), 3)
      end
      buf[i - 1] = v
    end
    local opts = select(2, ...)
    if opts ~= nil and type(opts) ~= 'table' then argerror(fname, 2, 'options table', opts) end
    return nd, opts
  end
  local nd = 0
  for i = 1, n do
    local v = select(i, ...)
    if type(v) == 'cdata' then v = tonumber(v) end
    if type(v) == 'number' then
      if v % 1 ~= 0 then error(format('%s: argument %d: size must be an integer, got %s', fname, i, v), 3) end
      if nd >= MAX_DIMS then error(format('%s: more than %d dims', fname, MAX_DIMS), 3) end
      buf[nd] = v
      nd = nd + 1
    elseif i == n and type(v) == 'table' then
      return nd, v
    elseif v == nil and i == n then
      return nd, nil
    else
      argerror(fname, i, 'size (integer) or options table', v)
    end
  end
  return nd, nil
end
M.read_shape = read_shape
M.is_options = is_options

-- ---- creation ----

-- Options shared by creation functions: dtype, requires_grad.
-- the creation options every creator takes: device ('cpu', 'cuda'), requires_grad
local function finish(t, opts)
  if opts and opts.device ~= nil and opts.device ~= 'cpu' then
    if opts.device ~= 'cuda' then error("device must be 'cpu' or 'cuda', got " .. tostring(opts.device), 3) end
    check(C.empo_to(outp, t.h, C.EMPO_CUDA))
    t:free()
    t = new_box(outp[0])
  end
  if opts and opts.requires_grad then
    check(C.empo_tensor_set_requires_grad(t.h, 1))
  end
  return t
end
M.finish = finish

local function creator(name, kind, value)
  local fname = 'empo.' .. name
  return function(...)
    local nd, opts = read_shape(fname, shape_buf, ...)
    local dt = dtype_id(opts and opts.dtype, fname, nd + 1)
    local st
    if kind == 0 and opts and opts.device == 'cuda' then   -- straight into device memory
      st = C.empo_tensor_empty_on(outp, nd, shape_buf, dt, C.EMPO_CUDA)
      opts = { requires_grad = opts.requires_grad }
    elseif kind == 0 then st = C.empo_tensor_empty(outp, nd, shape_buf, dt)
    elseif kind == 1 then st = C.empo_tensor_zeros(outp, nd, shape_buf, dt)
    else st = C.empo_tensor_full(outp, nd, shape_buf, dt, value) end
    if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
    return finish(new_box(outp[0]), opts)
  end
end
M.empty = creator('empty', 0)
M.zeros = creator('zeros', 1)
M.ones = creator('ones', 2, 1)

-- full(size, value, opts): size is a number or a table of sizes.
function M.full(size, value, opts)
  local nd
  if type(size) == 'number' then nd = read_shape('empo.full', shape_buf, size)
  elseif type(size) == 'table' and not istype(box_t, size) then nd = read_shape('empo.full', shape_buf, size)
  else argerror('empo.full', 1, 'size (number or table)', size) end
  if type(value) ~= 'number' then argerror('empo.full', 2, 'number', value) end
  if opts ~= nil and type(opts) ~= 'table' then opts = { dtype = opts } end
  local dt = dtype_id(opts and opts.dtype, 'empo.full', 3)
  check(C.empo_tensor_full(outp, nd, shape_buf, dt, value))
  return finish(new_box(outp[0]), opts)
end

-- A 0-d tensor holding s, with dtype dt, on the device of handle like (the
-- CPU when like is nil): a number next to a tensor in an op goes where it is.
local function scalar_tensor(s, dt, like)
  if C.empo_tensor_full(outp, 0, shape_buf, dt, s) ~= 0 then
    error(ffi_string(C.empo_last_error()), 3)
  end
  local t = new_box(outp[0])
  local device = like ~= nil and C.empo_tensor_device(like) or C.EMPO_CPU
  if device == C.EMPO_CPU then return t end
  local st = C.empo_to(outp, t.h, device)
  t:free()
  if st ~= 0 then error(ffi_string(C.empo_last_error()), 3) end
  return new_box(outp[0])
end
M.scalar_tensor = scalar_tensor

-- Nested Lua tables (or a number) -> tensor. Validates the shape is
-- rectangular and every leaf is a number (booleans count as 1/0).
local function flatten(x, shape, depth, nd, buf, pos, path)
  local n = shape[depth]
  if type(x) ~= 'table' or istype(box_t, x) or #x ~= n then
    local got = (type(x) == 'table' and not istype(box_t, x)) and (#x .. ' elements') or typename(x)
    error(format('empo.tensor: ragged nested table: element %s should hold %d elements, got %s',
                 table.concat(path, ''), n, got), 0)
  end
  if depth == nd then
    for i = 1, n do
      local v = x[i]
      local tv = type(v)
      if tv ~= 'number' then
        if tv == 'boolean' then v = v and 1 or 0
        elseif tv == 'cdata' and tonumber(v) then v = tonumber(v)
        else
          path[depth] = '[' .. i .. ']'
          error(format('empo.tensor: element %s is a %s, expected a number',
                       table.concat(path, ''), typename(v)), 0)
        end
      end
      buf[pos] = v
      pos = pos + 1
    end
  else
    for i = 1, n do
      path[depth] = '[' .. i .. ']'
      pos = flatten(x[i], shape, depth + 1, nd, buf, pos, path)
      path[depth] = nil
    end
  end
  return pos
end

function M.tensor(data, opts)
  if opts ~= nil and type(opts) ~= 'table' then opts = { dtype = opts } end
  local dt = dtype_id(opts and opts.dtype, 'empo.tensor', 2)
  local td = type(data)
  if istype(box_t, data) then
    local h = H(data, 'empo.tensor', 1)
    if C.empo_detach(outp, h) ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
    local d = new_box(outp[0])
    local st = (opts and opts.dtype) and C.empo_to_dtype(outp, d.h, dt) or C.empo_clone(outp, d.h)
    d:free()
    if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
    return finish(new_box(outp[0]), opts)
  elseif td == 'number' or td == 'boolean' then
    local v = (td == 'boolean') and (data and 1 or 0) or data
    if C.empo_tensor_full(outp, 0, shape_buf, dt, v) ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
    return finish(new_box(outp[0]), opts)
  elseif td ~= 'table' then
    argerror('empo.tensor', 1, 'table, number or tensor', data)
  end
  local shape, cur = {}, data
  while type(cur) == 'table' and not istype(box_t, cur) do
    shape[#shape + 1] = #cur
    if #shape > MAX_DIMS then error(format('empo.tensor: more than %d nested levels', MAX_DIMS), 2) end
    if #cur == 0 then break end
    cur = cur[1]
  end
  local nd, numel = #shape, 1
  for i = 1, nd do
    shape_buf[i - 1] = shape[i]
    numel = numel * shape[i]
  end
  local buf = ffi_new('double[?]', numel > 0 and numel or 1)
  local ok, err = pcall(flatten, data, shape, 1, nd, buf, 0, {})
  if not ok then error(err, 2) end
  if C.empo_tensor_from_buffer(outp, nd, shape_buf, dt, buf, 1) ~= 0 then
    error(ffi_string(C.empo_last_error()), 2)
  end
  return finish(new_box(outp[0]), opts)
end

-- ---- inspection ----

local function size_table(h, fn)
  local nd = C.empo_tensor_ndim(h)
  local s = {}
  for i = 1, nd do s[i] = tonumber(fn(h, i - 1)) end
  return s
end

function methods.size(t, dim)
  local h = H(t, 'empo.size', 1)
  if dim == nil then return size_table(h, C.empo_tensor_size) end
  return tonumber(C.empo_tensor_size(h, cdim(h, dim, 'empo.size', 2)))
end

function methods.stride(t, dim)
  local h = H(t, 'empo.stride', 1)
  if dim == nil then return size_table(h, C.empo_tensor_stride) end
  return tonumber(C.empo_tensor_stride(h, cdim(h, dim, 'empo.stride', 2)))
end

function methods.dim(t) return C.empo_tensor_ndim(H(t, 'empo.dim', 1)) end
function methods.numel(t) return tonumber(C.empo_tensor_numel(H(t, 'empo.numel', 1))) end
function methods.dtype(t) return DNAME[C.empo_tensor_dtype(H(t, 'empo.dtype', 1))] end
function methods.is_contiguous(t) return C.empo_tensor_is_contiguous(H(t, 'empo.is_contiguous', 1)) ~= 0 end
function methods.describe(t) return describe(H(t, 'empo.describe', 1)) end
function methods.shares_storage(a, b)
  return C.empo_tensor_shares_storage(H(a, 'empo.shares_storage', 1), H(b, 'empo.shares_storage', 2)) ~= 0
end
function methods.is_freed(t) return t.h == nil end

function methods.item(t)
  local h = H(t, 'empo.item', 1)
  check(C.empo_tensor_item(h, dbl))
  return dbl[0]
end

-- Pointer to the first element, typed by dtype; valid while t lives.
local PTR = { [0] = 'float *', 'double *', 'uint16_t *', 'uint16_t *', 'int32_t *', 'int64_t *', 'uint8_t *' }
function methods.data_ptr(t)
  local h = H(t, 'empo.data_ptr', 1)
  if C.empo_tensor_device(h) ~= C.EMPO_CPU then error('empo.data_ptr: ' .. describe(h) ..
                                                     ' lives on the device; the host cannot read it (t:cpu() first)', 2) end
  return ffi.cast(PTR[C.empo_tensor_dtype(h)], C.empo_tensor_data(h))
end

-- Nested Lua tables of numbers (a number for a 0-d tensor).
function methods.tolist(t)
  local h = H(t, 'empo.tolist', 1)
  local nd, n = C.empo_tensor_ndim(h), tonumber(C.empo_tensor_numel(h))
  local buf = ffi_new('double[?]', n > 0 and n or 1)
  check(C.empo_tensor_read_f64(h, buf))
  if nd == 0 then return buf[0] end
  local sizes = size_table(h, C.empo_tensor_size)
  local pos = 0
  local function build(d)
    local r = {}
    if d == nd then
      for i = 1, sizes[d] do r[i] = buf[pos]; pos = pos + 1 end
    else
      for i = 1, sizes[d] do r[i] = build(d + 1) end
    end
    return r
  end
  return build(1)
end

-- Release the tensor now; later use raises "tensor was freed". Idempotent.
function methods.free(t)
  if not istype(box_t, t) then argerror('empo.free', 1, 'tensor', t) end
  release_box(t)
end

-- ---- in place (no autograd) ----

function methods.fill_(t, v)
  local h = H(t, 'empo.fill_', 1)
  if type(v) ~= 'number' then argerror('empo.fill_', 2, 'number', v) end
  check(C.empo_tensor_fill_(h, v))
  return t
end

function methods.copy_(t, src)
  local h = H(t, 'empo.copy_', 1)
  if type(src) == 'number' then
    check(C.empo_tensor_fill_(h, src))
  else
    check(C.empo_tensor_copy_(h, H(src, 'empo.copy_', 2)))
  end
  return t
end

function props.requires_grad(t) return C.empo_tensor_requires_grad(H(t, 'empo.Tensor.requires_grad', 1)) ~= 0 end
function props.is_leaf(t) return C.empo_tensor_is_leaf(H(t, 'empo.Tensor.is_leaf', 1)) ~= 0 end
function props.shape(t) return size_table(H(t, 'empo.Tensor.shape', 1), C.empo_tensor_size) end
function props.ndim(t) return C.empo_tensor_ndim(H(t, 'empo.Tensor.ndim', 1)) end
-- 'cpu' or 'cuda'
function props.device(t)
  return C.empo_tensor_device(H(t, 'empo.Tensor.device', 1)) == C.EMPO_CPU and 'cpu' or 'cuda'
end

-- ---- arithmetic: tensor (op) tensor, tensor (op) number, number (op) tensor ----

local function freed(fname, argn)
  error(format('%s: argument %d: tensor was freed', fname, argn), 3)
end

local function bad_operands(fname, a, b)
  local an = (istype(box_t, a) or type(a) == 'number') and 2 or 1
  local x = an == 1 and a or b
  if an == 2 and not istype(box_t, a) and not istype(box_t, b) and type(b) == 'number' then
    error(format('%s: expected at least one tensor, got two numbers', fname), 3)
  end
  error(format('%s: argument %d: expected tensor or number, got %s', fname, an, typename(x)), 3)
end

-- One op's metamethod: tensor (op) tensor with tt, tensor (op) number with
-- ts, number (op) tensor with st; each is called as f(outp, handle, other).
local function arith(name, tt, ts, st)
  local fname = 'empo.' .. name
  return function(a, b)
    if istype(box_t, a) then
      local ha = a.h
      if ha == nil then freed(fname, 1) end
      if istype(box_t, b) then
        local hb = b.h
        if hb == nil then freed(fname, 2) end
        return result(tt(outp, ha, hb))
      elseif type(b) == 'number' then
        return result(ts(outp, ha, b))
      end
    elseif type(a) == 'number' and istype(box_t, b) then
      local hb = b.h
      if hb == nil then freed(fname, 2) end
      return result(st(outp, hb, a))
    end
    bad_operands(fname, a, b)
  end
end

local add = arith('add', C.empo_add, C.empo_add_scalar, C.empo_add_scalar)
local sub = arith('sub', C.empo_sub, function(o, h, s) return C.empo_add_scalar(o, h, -s) end, C.empo_rsub_scalar)
local mul = arith('mul', C.empo_mul, C.empo_mul_scalar, C.empo_mul_scalar)
-- a / s multiplies by 1/s, as PyTorch's CPU kernels do for a scalar divisor.
local div = arith('div', C.empo_div, function(o, h, s) return C.empo_mul_scalar(o, h, 1 / s) end,
                  C.empo_rdiv_scalar)
-- s ^ t: s as a one-element tensor of t's dtype, broadcast by empo_pow
local pow = arith('pow', C.empo_pow, C.empo_pow_scalar, function(o, hb, s)
  local st = scalar_tensor(s, C.empo_tensor_dtype(hb), hb)
  local status = C.empo_pow(o, st.h, hb)
  st:free()
  return status
end)

local function neg(a)
  return result(C.empo_neg(outp, H(a, 'empo.neg', 1)))
end

methods.add, methods.sub, methods.mul, methods.div, methods.pow, methods.neg = add, sub, mul, div, pow, neg
mt.__add, mt.__sub, mt.__mul, mt.__div, mt.__pow, mt.__unm = add, sub, mul, div, pow, neg

-- ---- indexing: t[i], t[{i, j}], t[i] = v, t.grad = g ----

-- Handle of t indexed by the 1-based positions in key (a number or a table
-- of numbers, one per leading dim). Returns h, nil when key names a whole
-- element (then idx_buf holds it), or a new handle to the sub-view.
local function locate(t, key, fname)
  local h = t.h
  if h == nil then error(fname .. ': tensor was freed', 3) end
  local nd = C.empo_tensor_ndim(h)
  local k = type(key) == 'number' and 1 or #key
  if nd == 0 then error(fname .. ': cannot index a 0-d tensor (use t:item())', 3) end
  if k > nd then error(format('%s: %d indices for %s', fname, k, describe(h)), 3) end
  for d = 1, k do
    local i = type(key) == 'number' and key or key[d]
    local n = tonumber(C.empo_tensor_size(h, d - 1))
    if type(i) ~= 'number' or i % 1 ~= 0 or i == 0 or i > n or i < -n then
      if type(i) ~= 'number' then
        error(format('%s: index %d: expected a number, got %s', fname, d, typename(i)), 3)
      end
      error(format('%s: index %s is out of range for dim %d of size %d in %s (indices are 1..%d or -%d..-1)',
                   fname, tostring(i), d, n, describe(h), n, n), 3)
    end
    idx_buf[d - 1] = i > 0 and i - 1 or n + i
  end
  if k == nd then return h, nil end
  -- a view: select the leading dims one by one
  local cur = h
  for d = 1, k do
    local st = C.empo_select(outp, cur, 0, idx_buf[d - 1])
    if cur ~= h then C.empo_tensor_release(cur) end
    if st ~= 0 then error(ffi_string(C.empo_last_error()), 3) end
    cur = outp[0]
  end
  return h, cur
end

mt.__index = function(t, k)
  local m = methods[k]
  if m ~= nil then return m end
  local tk = type(k)
  if tk == 'number' or (tk == 'table' and not istype(box_t, k)) then
    local h, view = locate(t, k, 'empo.Tensor index')
    if view ~= nil then return new_box(view) end
    if C.empo_tensor_get(h, idx_buf, dbl) ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
    return dbl[0]
  end
  local p = props[k]
  if p ~= nil then return p(t) end
  return nil
end

mt.__newindex = function(t, k, v)
  local tk = type(k)
  if tk == 'number' or (tk == 'table' and not istype(box_t, k)) then
    local h, view = locate(t, k, 'empo.Tensor assignment')
    local st
    if view == nil then
      if type(v) ~= 'number' then
        if type(v) == 'boolean' then v = v and 1 or 0
        else error('empo.Tensor assignment: an element takes a number, got ' .. typename(v), 2) end
      end
      st = C.empo_tensor_set(h, idx_buf, v)
    elseif type(v) == 'number' then
      st = C.empo_tensor_fill_(view, v)
      C.empo_tensor_release(view)
    elseif istype(box_t, v) and v.h ~= nil then
      st = C.empo_tensor_copy_(view, v.h)
      C.empo_tensor_release(view)
    else
      C.empo_tensor_release(view)
      error('empo.Tensor assignment: a slice takes a number or a tensor, got ' .. typename(v), 2)
    end
    if st ~= 0 then error(ffi_string(C.empo_last_error()), 2) end
  elseif k == 'grad' then
    local h = H(t, 'empo.Tensor.grad', 1)
    if C.empo_tensor_set_grad(h, HO(v, 'empo.Tensor.grad', 2)) ~= 0 then
      error(ffi_string(C.empo_last_error()), 2)
    end
  elseif k == 'requires_grad' then
    local h = H(t, 'empo.Tensor.requires_grad', 1)
    if C.empo_tensor_set_requires_grad(h, v and 1 or 0) ~= 0 then
      error(ffi_string(C.empo_last_error()), 2)
    end
  else
    error(format("empo.Tensor: cannot set field '%s'", tostring(k)), 2)
  end
end

mt.__len = function(t)
  local h = H(t, 'empo.Tensor length', 1)
  if C.empo_tensor_ndim(h) == 0 then error('empo.Tensor length: a 0-d tensor has no length', 2) end
  return tonumber(C.empo_tensor_size(h, 0))
end

mt.__tostring = function(t)
  return require('empo.tensor.print').format(t)
end

mt.__owner = owner   -- see the ownership section

box_t = ffi.metatype('struct empo_tensor_box', mt)
M.box_t = box_t

return M
