-- empo — the Lua library over libempo.
--
--     local empo = require 'empo'
--     local x = empo.randn(2, 3, { requires_grad = true })
--     local y = (x * 2 + 1):exp():sum()
--     y:backward()
--     print(x.grad)
--
-- The umbrella over the library's folders: tensors (empo.tensor), every op
-- as a function and a method (tensor/ops.lua), random draws
-- (tensor/random.lua), optimizers (empo.optim), safetensors, run logging,
-- grad mode, threads and memory are here at once; the other subsystems
-- load on first use (the `lazy` table at the end: nn, models, sample,
-- train, rl and its pieces, text, io, run). Lua positions (dims, t[i],
-- narrow starts) are 1-based; index tensors hold 0-based values — see
-- empo/tensor/init.lua.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local ops = require 'empo.tensor.ops'
require 'empo.tensor.autograd'   -- (Tensor methods only)
local random = require 'empo.tensor.random'
local optim = require 'empo.optim'
local C = E.C

local empo = {}

for k, f in pairs(ops) do empo[k] = f end

empo.version = ffi.string(C.empo_version())
empo.abi_version = E.abi_version
empo.dtypes = { 'f32', 'f64', 'bf16', 'f16', 'i32', 'i64', 'u8' }

-- creation
empo.tensor = T.tensor
empo.zeros, empo.ones, empo.full, empo.empty = T.zeros, T.ones, T.full, T.empty
empo.is_tensor = T.is_tensor
empo.Tensor = T.mt          -- the metatable of every tensor (methods: empo.Tensor.methods)
empo.Tensor_methods = T.methods

-- arange(n) or arange(start, stop[, step]), with an optional options table.
-- Integer arguments give i64 (as PyTorch), others f32.
function empo.arange(a, b, c, d)
  local opts
  if type(b) == 'table' then opts, b = b, nil
  elseif type(c) == 'table' then opts, c = c, nil
  elseif type(d) == 'table' then opts = d end
  local start, stop, step = 0, a, 1
  if b ~= nil then start, stop, step = a, b, c or 1 end
  for i, v in ipairs({ start, stop, step }) do
    if type(v) ~= 'number' then T.argerror('empo.arange', i, 'number', v) end
  end
  if step == 0 then error('empo.arange: step must not be 0', 2) end
  local integral = start % 1 == 0 and stop % 1 == 0 and step % 1 == 0
  local dt = T.dtype_id(opts and opts.dtype or (integral and 'i64' or 'f32'), 'empo.arange', 4)
  local n = math.max(0, math.ceil((stop - start) / step))
  if start == 0 and step == 1 then
    T.check(C.empo_tensor_arange(T.outp, n, dt))
    return T.finish(T.new_box(T.outp[0]), opts)
  end
  local buf = ffi.new('double[?]', math.max(n, 1))
  for i = 0, n - 1 do buf[i] = start + i * step end
  T.shape_buf[0] = n
  T.check(C.empo_tensor_from_buffer(T.outp, 1, T.shape_buf, dt, buf, C.EMPO_F64))
  return T.finish(T.new_box(T.outp[0]), opts)
end

-- random
empo.Generator = random.Generator
empo.is_generator = random.is_generator
empo.manual_seed = random.manual_seed
empo.default_generator = random.default_generator
empo.randn, empo.rand, empo.randint, empo.multinomial = random.randn, random.rand, random.randint, random.multinomial

-- optim
empo.optim = { adamw = optim.adamw }
empo.clip_grad_norm = optim.clip_grad_norm
empo.grad_norm = optim.grad_norm
empo.zero_grad = optim.zero_grad
empo.safetensors = require 'empo.io.safetensors'

-- ---- grad mode ----

function empo.set_grad_enabled(on)
  return C.empo_grad_set_enabled(on and 1 or 0) ~= 0
end
function empo.is_grad_enabled() return C.empo_grad_is_enabled() ~= 0 end

local function finish_no_grad(prev, ok, ...)
  C.empo_grad_set_enabled(prev)
  if not ok then error((...), 0) end
  return ...
end

-- Run fn(...) with grad mode off; the mode is restored even when fn fails.
function empo.no_grad(fn, ...)
  if type(fn) ~= 'function' then T.argerror('empo.no_grad', 1, 'function', fn) end
  local prev = C.empo_grad_set_enabled(0)
  return finish_no_grad(prev, pcall(fn, ...))
end

-- ---- runtime ----

function empo.set_num_threads(n)
  if type(n) ~= 'number' or n < 1 then T.argerror('empo.set_num_threads', 1, 'positive number', n) end
  C.empo_set_num_threads(n)
end
function empo.get_num_threads() return C.empo_get_num_threads() end

function empo.set_reference_kernels(on) return C.empo_set_reference_kernels(on and 1 or 0) ~= 0 end
function empo.reference_kernels() return C.empo_reference_kernels() ~= 0 end
-- The name of the kernel table in use ('avx2', 'avx512' or 'ref';
-- kernels/kernels.h), a switch by name (an unknown name, or a table the
-- CPU cannot run, is an error saying which), and the best the CPU runs.
function empo.kernel_table() return ffi.string(C.empo_kernel_table_name()) end
function empo.set_kernel_table(name)
  if type(name) ~= 'string' then T.argerror('empo.set_kernel_table', 1, "'avx2', 'avx512' or 'ref'", name) end
  if C.empo_set_kernel_table(name) ~= 0 then error('empo.set_kernel_table: ' .. ffi.string(C.empo_last_error()), 2) end
end
function empo.best_kernel_table() return ffi.string(C.empo_best_kernel_table()) end

-- What this process runs on: version, kernel table (and the best the CPU
-- runs), thread count, and the CPU as /proc/cpuinfo names it (model,
-- cores, AVX2 / AVX-512 / AMX). info().line is all of it on one line, as
-- every benchmark prints it.
function empo.info()
  local f = io.open('/proc/cpuinfo', 'rb')
  local text = f and f:read('*a') or ''
  if f then f:close() end
  local model = text:match('model name%s*:%s*([^\n]+)') or 'unknown CPU'
  local flags = text:match('flags%s*:%s*([^\n]+)') or ''
  local isa = flags:find('avx512f', 1, true) and 'AVX-512' or (flags:find('avx2', 1, true) and 'AVX2' or 'no AVX2')
  if flags:find('amx_tile', 1, true) then isa = isa .. ' + AMX' end
  local cores = 0
  for _ in text:gmatch('\nprocessor%s*:') do cores = cores + 1 end
  if text:match('^processor') then cores = cores + 1 end
  local i = { version = ffi.string(C.empo_version()), kernels = empo.kernel_table(), best = empo.best_kernel_table(),
              threads = empo.get_num_threads(), cpu = string.format('%s (%d cores, %s)', model, cores, isa) }
  i.line = string.format('kernels %s (best here: %s), %d threads, %s', i.kernels, i.best, i.threads, i.cpu)
  return i
end

-- Bytes held by live tensors, parked in the allocator cache, and the peak
-- of live bytes; the number of live tensor handles.
-- With a CUDA device in use, .cuda holds its pool's figures too (allocs:
-- blocks ever asked of the device; steady once a step reuses its blocks).
function empo.memory()
  T.sweep_if_due()
  local m = {
    live = tonumber(C.empo_mem_live_bytes()),
    cached = tonumber(C.empo_mem_cached_bytes()),
    peak = tonumber(C.empo_mem_peak_bytes()),
    tensors = tonumber(C.empo_live_tensors()),
  }
  local d = ffi.new('empo_device_memory')
  if C.empo_mem_device(C.EMPO_CUDA, d) == 0 and d.allocs > 0 then
    m.cuda = { live = tonumber(d.live), cached = tonumber(d.cached), peak = tonumber(d.peak),
               allocs = tonumber(d.allocs) }
  end
  return m
end

-- Whether tensors can live on the GPU; false and the reason when not.
function empo.cuda_available()
  local why = ffi.new('char[512]')
  if C.empo_device_available(C.EMPO_CUDA, why, 512) ~= 0 then return true end
  return false, ffi.string(why)
end
-- CUDA matrix products in TF32 (true) or full f32 (false, the default);
-- returns the previous setting. Errors without a CUDA device.
function empo.cuda_allow_tf32(on)
  local prev = ffi.new('int[1]')
  if C.empo_cuda_allow_tf32(on and 1 or 0, prev) ~= 0 then
    error('empo.' .. ffi.string(C.empo_last_error()), 2)
  end
  return prev[0] == 1
end
-- "NVIDIA H100 80GB HBM3, 79.1 GiB, compute capability 9.0", or nil and why
function empo.cuda_device()
  local ok, why = empo.cuda_available()
  if not ok then return nil, why end
  local buf = ffi.new('char[256]')
  if C.empo_device_describe(C.EMPO_CUDA, buf, 256) ~= 0 then return nil, ffi.string(C.empo_last_error()) end
  return ffi.string(buf)
end
-- The GPU's memory in bytes, or nil and why.
function empo.cuda_memory_bytes()
  local ok, why = empo.cuda_available()
  if not ok then return nil, why end
  local b = ffi.new('int64_t[1]')
  if C.empo_device_total_bytes(C.EMPO_CUDA, b) ~= 0 then return nil, ffi.string(C.empo_last_error()) end
  return tonumber(b[0])
end
-- Collect garbage and release the tensors of dead boxes now (the GC alone
-- releases them at the next tensor creation); returns how many.
empo.collect = T.collect
-- gc_policy(factor, min_bytes): force a collection when the bytes held by
-- live tensors exceed factor x (at least min_bytes more than) what survived
-- the last one. Defaults 1.5, 64 MiB. Returns the previous values.
empo.gc_policy = T.gc_policy
function empo.reset_peak_memory() C.empo_mem_reset_peak() end
function empo.empty_cache() C.empo_mem_empty_cache() end
-- Bounds the allocator's host cache at bytes (what it holds past that is
-- freed now); returns the previous bound.
function empo.set_cache_limit(bytes) return tonumber(C.empo_mem_set_cache_limit(bytes)) end
-- Bounds live + cached bytes together (0: none): a request the cache cannot
-- serve first gives parked blocks back until both fit (block capacities,
-- so stricter than resident memory). Returns the previous bound.
function empo.set_total_limit(bytes) return tonumber(C.empo_mem_set_total_limit(bytes)) end

-- Escape hatches for other modules: the raw binding and handle wrapping.
empo.ffi = E
empo.wrap = T.wrap

-- empo.log(x) is the elementwise op; the run-logging module is
-- empo.logger (progress, metrics, clock). Its functions are still
-- reachable as empo.log.progress etc. for one release, with a line on
-- stderr saying the new name (once per name).
do
  local log_op, logger, said = empo.log, require 'empo.run.log', {}
  empo.logger = logger
  empo.log = setmetatable({}, {
    __call = function(_, x) return log_op(x) end,
    __index = function(_, k)
      if logger[k] == nil then return nil end
      if not said[k] then
        said[k] = true
        io.stderr:write(string.format('empo: empo.log.%s is now empo.logger.%s (empo.log is the elementwise op); ' ..
                                      'the old name goes in the next release\n', k, k))
      end
      return logger[k]
    end,
  })
end

-- Library modules that themselves require 'empo' load on first use.
local lazy = { nn = 'empo.nn', models = 'empo.nn.models', json = 'empo.io.json', fs = 'empo.io.fs',
               train = 'empo.train', config = 'empo.run.config', tokenizer = 'empo.text.tokenizer',
               prompt = 'empo.text.prompt', sample = 'empo.generate.sample',
               -- EMPO's group machinery: answers and clusters, the pipeline, its pieces
               cluster = 'empo.rl.cluster', rl = 'empo.rl', reward = 'empo.rl.reward', filter = 'empo.rl.filter',
               loss = 'empo.rl.loss', data = 'empo.train.data',
               advantage = 'empo.rl.advantage', stop = 'empo.run.stop', lora = 'empo.nn.lora', dist = 'empo.run.dist',
               rollouts = 'empo.rl.rollout_store' }
setmetatable(empo, { __index = function(t, k)
  local name = lazy[k]
  if name == nil then return nil end
  local mod = require(name)
  rawset(t, k, mod)
  return mod
end })

-- A recipe file ends with `return empo.recipe{ ... }`: the table, marked so
-- that `empo run FILE` trains it (empo.rl.trainer).
function empo.recipe(t) return require('empo.rl.recipe').recipe(t) end
-- Another recipe (a file or table) with some fields changed.
function empo.recipe_from(base, changes) return require('empo.rl.recipe').from(base, changes) end

return empo
