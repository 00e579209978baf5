-- tests/tensor/test_ffi.lua — the FFI binding is complete: every function
-- declared in the generated cdef resolves in the loaded library, every
-- function of the public headers is in the cdef, the ABI versions agree,
-- and the binding's error path carries the C message.
local check = require 'check'
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local c = check.new('test_ffi')
local C = E.C

local names = E.function_names()
c.ok(#names >= 100, 'the cdef declares the whole API (' .. #names .. ' functions)')

local seen = {}
for _, name in ipairs(names) do
  seen[name] = true
  local ok, f = pcall(function() return C[name] end)
  c.ok(ok and f ~= nil, 'symbol resolves: ' .. name .. (ok and '' or (' (' .. tostring(f) .. ')')))
end
for _, name in ipairs({ 'empo_add', 'empo_matmul', 'empo_backward', 'empo_philox4x32', 'empo_adamw_step',
                        'empo_tensor_describe', 'empo_logprob_entropy', 'empo_last_error' }) do
  c.ok(seen[name], 'the cdef parser finds ' .. name)
end

-- Every function of the public headers made it into the cdef.
local src = os.getenv('EMPO_SOURCE_DIR')
if src then
  -- every public header (core/include/empo/), not a list that could fall behind
  local headers = {}
  local ls = io.popen('ls ' .. src .. '/core/include/empo/*.h')
  for path in ls:lines() do headers[#headers + 1] = path:match('[^/]+$') end
  ls:close()
  c.ok(#headers >= 13, 'public headers found (' .. #headers .. ')')
  local n = 0
  for _, h in ipairs(headers) do
    local f = io.open(src .. '/core/include/empo/' .. h)
    if c.ok(f ~= nil, 'header readable: ' .. h) then
      local text = f:read('*a'):gsub('/%*.-%*/', '')
      f:close()
      for name in text:gmatch('[%w_%*]+%s+%**(empo_[%w_]+)%s*%(') do
        n = n + 1
        c.ok(seen[name], h .. ': ' .. name .. ' is in the cdef')
      end
    end
  end
  c.ok(n >= 150, 'headers parsed (' .. n .. ' functions)')
end

-- ABI
c.eq(C.empo_abi_version(), C.EMPO_ABI_VERSION, 'ABI version of the library matches the cdef')
c.eq(E.abi_version, C.EMPO_ABI_VERSION, 'empo.ffi.abi_version')

-- types and constants from the cdef
c.ok(ffi.sizeof('empo_adamw_config') == 5 * 8, 'empo_adamw_config is 5 doubles')
c.eq({ C.EMPO_F32, C.EMPO_F64, C.EMPO_BF16, C.EMPO_F16, C.EMPO_I32, C.EMPO_I64, C.EMPO_U8 },
     { 0, 1, 2, 3, 4, 5, 6 }, 'dtype enum')
c.eq(C.EMPO_MAX_DIMS, 8, 'EMPO_MAX_DIMS')
c.eq(ffi.string(C.empo_dtype_name(C.EMPO_BF16)), 'bf16', 'empo_dtype_name')
c.eq(ffi.string(C.empo_status_name(C.EMPO_E_SHAPE)), 'shape', 'empo_status_name')

-- check() raises the C message; a success returns the status
local out = ffi.new('empo_tensor*[1]')
local shape = ffi.new('int64_t[1]', -3)
local ok, err = pcall(E.check, C.empo_tensor_zeros(out, 1, shape, C.EMPO_F32))
c.ok(not ok and tostring(err):find('-3', 1, true) ~= nil, 'check raises the C message: ' .. tostring(err))
c.eq(E.last_error(), ffi.string(C.empo_last_error()), 'last_error')
shape[0] = 2
c.eq(E.check(C.empo_tensor_zeros(out, 1, shape, C.EMPO_F32)), 0, 'check passes a success through')
C.empo_tensor_release(out[0])

-- where the library came from
c.ok(type(E.origin) == 'string', 'origin: ' .. tostring(E.origin))

-- the kernel table in use, and the switch to the reference one
local empo = require 'empo'
local isa = os.getenv('EMPO_ISA')
local fast = (isa == 'avx2' or isa == 'avx512') and isa or empo.best_kernel_table()
c.eq(empo.kernel_table(), (isa == 'ref' or (os.getenv('EMPO_REFERENCE') == '1' and isa ~= 'avx2' and isa ~= 'avx512')) and 'ref' or fast,
     'empo.kernel_table()')
local has512 = io.open('/proc/cpuinfo'):read('*a'):find('avx512dq', 1, true) ~= nil
if (os.getenv('LD_PRELOAD') or ''):find('vgpreload', 1, true) then
  has512 = false    -- valgrind's cpuid hides AVX-512 (it cannot run it) while /proc/cpuinfo still lists it
end
c.eq(empo.best_kernel_table(), has512 and 'avx512' or 'avx2', 'the best table follows the CPU\'s flags')
local prev = empo.set_reference_kernels(true)
c.eq(empo.kernel_table(), 'ref', 'set_reference_kernels(true) selects the reference table')
c.ok(empo.reference_kernels(), 'reference_kernels() after the switch')
empo.set_reference_kernels(false)
c.eq(empo.kernel_table(), fast, 'set_reference_kernels(false) goes back to the fast table chosen at start')
empo.set_kernel_table('avx2')
c.eq(empo.kernel_table(), 'avx2', 'set_kernel_table by name')
c.raises(function() empo.set_kernel_table('avx1024') end, 'kernel table avx1024: unknown (avx2, avx512, ref)')
if not has512 then c.raises(function() empo.set_kernel_table('avx512') end, 'this CPU has no AVX-512') end
empo.set_kernel_table(fast)
empo.set_reference_kernels(prev)
local info = empo.info()
c.ok(info.line:find('kernels ' .. info.kernels, 1, true) and info.threads >= 1 and info.cpu:find('cores', 1, true),
     'empo.info(): ' .. info.line)
-- EMPO_ISA from the environment, and a name it does not know
local bin = os.getenv('EMPO_BINARY')
if bin then
  local p = io.popen("EMPO_ISA=avx2 '" .. bin .. "' info 2>&1")
  local out = p:read('*a')
  p:close()
  c.ok(out:find('kernels: avx2', 1, true) ~= nil and out:find('threads:', 1, true) ~= nil, 'empo info: ' .. out)
  p = io.popen("EMPO_ISA=avx3 '" .. bin .. "' -e \"print(require('empo').kernel_table())\" 2>&1")
  out = p:read('*a')
  p:close()
  c.ok(out:find('EMPO_ISA=avx3: not a kernel table', 1, true) ~= nil and
       out:find(empo.best_kernel_table(), 1, true) ~= nil,
       'an unknown EMPO_ISA is named, and the best table runs: ' .. out)
end

c.done()
