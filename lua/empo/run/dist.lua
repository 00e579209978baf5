-- empo.run.dist (empo.dist) — more than one process (core/dist, empo/dist.h):
-- process's rank, collectives over every rank, the gradients' reduction.
--
--     local dist = require 'empo.run.dist'    -- or empo.dist
--     dist.init()                    -- joins the job: mpirun/srun's, or one process alone
--     dist.rank(), dist.size()       -- 0-based rank, count of ranks
--     dist.gather(value)             -- every rank's value (plain Lua data), in rank order, on every rank
--     dist.sum({ a, b })             -- element-wise sums over the ranks (f64)
--     dist.reduce_grads(params, exact) / dist.fold_grads(params)
--     dist.check_lockstep(params, step)   -- an error when the ranks' weights differ
--
-- Every rank calls the collectives in the same order. Under mpirun each
-- rank runs the kernels on its share of the machine's cores (unless
-- OMP_NUM_THREADS says otherwise), sees the GPU of its local rank (unless
-- CUDA_VISIBLE_DEVICES says otherwise), and os.exit leaves the job cleanly.
local ffi = require 'ffi'
local empo = require 'empo'
local C = empo.ffi.C

local format, type, pairs, ipairs, tostring = string.format, type, pairs, ipairs, tostring
local M = {}

local function check(rc)
  if rc ~= 0 then error(empo.ffi.last_error(), 3) end
end

local joined = false
function M.init()
  if joined then return M end
  check(C.empo_dist_init())
  joined = true
  local local_size = C.empo_dist_local_size()
  if C.empo_dist_size() > 1 then
    if local_size > 1 and not os.getenv('OMP_NUM_THREADS') then
      empo.set_num_threads(math.max(1, math.floor(empo.get_num_threads() / local_size)))
    end
    if local_size > 1 and not os.getenv('CUDA_VISIBLE_DEVICES') then   -- one GPU a rank, before CUDA starts
      pcall(ffi.cdef, 'int setenv(const char *name, const char *value, int overwrite);')
      ffi.C.setenv('CUDA_VISIBLE_DEVICES', tostring(C.empo_dist_local_rank()), 0)
    end
    local exit = os.exit
    os.exit = function(code, close)      -- (a rank that leaves must say how: empo_dist_end)
      local status = code == nil and 0 or code == true and 0 or code == false and 1 or code
      C.empo_dist_end(status)
      return exit(code, close)
    end
  end
  return M
end

function M.rank() M.init(); return C.empo_dist_rank() end
function M.size() M.init(); return C.empo_dist_size() end
function M.is_main() return M.rank() == 0 end
function M.backend() M.init(); return ffi.string(C.empo_dist_backend()) end
function M.barrier() M.init(); check(C.empo_dist_barrier()) end

-- ---- plain Lua data as text that reads back exactly (hex floats) ----
local function encode(v, out)
  local tv = type(v)
  if tv == 'number' then
    if v ~= v then out[#out + 1] = '0/0'
    elseif v == math.huge then out[#out + 1] = '1/0'
    elseif v == -math.huge then out[#out + 1] = '-1/0'
    elseif v == math.floor(v) and math.abs(v) < 2 ^ 53 then out[#out + 1] = format('%d', v)
    else out[#out + 1] = format('%a', v) end
  elseif tv == 'string' then out[#out + 1] = format('%q', v)
  elseif tv == 'boolean' or tv == 'nil' then out[#out + 1] = tostring(v)
  elseif tv == 'table' then
    out[#out + 1] = '{'
    local n = #v
    for i = 1, n do encode(v[i], out); out[#out + 1] = ',' end
    for k, x in pairs(v) do
      if not (type(k) == 'number' and k >= 1 and k <= n and k % 1 == 0) then
        out[#out + 1] = '['; encode(k, out); out[#out + 1] = ']='; encode(x, out); out[#out + 1] = ','
      end
    end
    out[#out + 1] = '}'
  else
    error('dist: cannot send a ' .. tv, 3)
  end
  return out
end
local function decode(text)
  local f = assert(loadstring('return ' .. text, '=dist'))
  setfenv(f, {})
  return f()
end
M.encode = function(v) return table.concat(encode(v, {})) end
M.decode = decode

-- Every rank's value, in rank order, on every rank.
function M.gather(value)
  M.init()
  local size = C.empo_dist_size()
  if size == 1 then return { value } end
  local text = M.encode(value)
  local lens = ffi.new('int64_t[?]', size)
  check(C.empo_dist_allgather_lengths(#text, lens))
  local total = 0
  for r = 0, size - 1 do total = total + tonumber(lens[r]) end
  local out = ffi.new('char[?]', math.max(total, 1))
  check(C.empo_dist_allgatherv(text, #text, lens, out))
  local all, at = {}, 0
  for r = 0, size - 1 do
    local n = tonumber(lens[r])
    all[r + 1] = decode(ffi.string(out + at, n))
    at = at + n
  end
  return all
end

-- Rank root's value on every rank.
function M.broadcast(value, root)
  M.init()
  root = root or 0
  if type(root) ~= 'number' or root < 0 or root >= C.empo_dist_size() or root % 1 ~= 0 then
    error(format('dist.broadcast: from rank %s of %d', tostring(root), C.empo_dist_size()), 2)
  end
  if C.empo_dist_size() == 1 then return value end
  local text = C.empo_dist_rank() == root and M.encode(value) or ''
  local n = ffi.new('int64_t[1]', #text)
  check(C.empo_dist_broadcast(n, 8, root))
  local buf = ffi.new('char[?]', math.max(tonumber(n[0]), 1))
  if C.empo_dist_rank() == root then ffi.copy(buf, text, #text) end
  check(C.empo_dist_broadcast(buf, n[0], root))
  return decode(ffi.string(buf, n[0]))
end

-- Element-wise sums of a list of numbers over the ranks.
function M.sum(xs)
  M.init()
  if C.empo_dist_size() == 1 then return xs end
  local buf = ffi.new('double[?]', math.max(#xs, 1))
  for i, x in ipairs(xs) do buf[i - 1] = x end
  check(C.empo_dist_allreduce_f64(buf, #xs))
  local out = {}
  for i = 1, #xs do out[i] = buf[i - 1] end
  return out
end

local grad = require 'empo.optim.grad'
local function handles(params, what)
  return grad.handles(ffi.new('empo_tensor *[?]', math.max(#params, 1)), params, what)
end

-- The parameters' gradients summed over the ranks (empo_dist_reduce_grads).
function M.reduce_grads(params, exact)
  M.init()
  check(C.empo_dist_reduce_grads(#params, handles(params, 'dist.reduce_grads'), exact and 1 or 0))
end

-- 'nccl', 'host' or '': how the last reduction of a GPU's gradients went.
function M.device_path() return ffi.string(C.empo_dist_device_path()) end

-- Exact mode: this micro-batch's gradients into the fixed-point accumulator.
function M.fold_grads(params) check(C.empo_dist_fold_grads(#params, handles(params, 'dist.fold_grads'))) end

function M.checksum(params)
  local out = ffi.new('uint64_t[1]')
  check(C.empo_dist_checksum(#params, handles(params, 'dist.checksum'), out))
  return format('%016x', out[0])
end

-- An error naming the ranks whose weights differ from rank 0's.
function M.check_lockstep(params, step)
  local all = M.gather(M.checksum(params))
  local off = {}
  for r = 2, #all do if all[r] ~= all[1] then off[#off + 1] = format('rank %d (%s)', r - 1, all[r]) end end
  if #off > 0 then
    error(format('dist: after step %s the ranks\' weights differ: rank 0 has checksum %s, %s. The ranks must apply ' ..
                 'the same updates; a rank that loaded other weights or ran other code is the usual cause',
                 tostring(step), all[1], table.concat(off, ', ')), 0)
  end
  return all[1]
end

return M
