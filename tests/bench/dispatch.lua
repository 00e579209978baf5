-- tests/bench/dispatch.lua — the cost of one small op called from Lua.
--
--     empo run tests/bench/dispatch.lua [iterations]
--
-- Times a + b and a:exp() on 4-element f32 tensors (so the arithmetic is
-- nothing and what remains is Lua dispatch, the C op's checks, allocation,
-- and releasing the result through the GC), next to a bare FFI call into
-- libempo for scale. Prints the best of 5 runs in ns per call; the target
-- is <= 1000 ns.
local empo = require 'empo'
local ffi = require 'ffi'
local C = empo.ffi.C

local N = tonumber(arg and arg[1]) or 1e6
local clock = os.clock

-- Best of REPEATS runs of N calls: other processes only ever add time.
local REPEATS = 5
local function bench(name, fn)
  fn(math.floor(N / 10))   -- warm up (and compile)
  local best = math.huge
  for _ = 1, REPEATS do
    collectgarbage()
    local t0 = clock()
    fn(N)
    local ns = (clock() - t0) / N * 1e9
    if ns < best then best = ns end
  end
  print(string.format('%-26s %8.1f ns/call', name, best))
  return best
end

local a = empo.tensor({ 1, 2, 3, 4 })
local b = empo.tensor({ 5, 6, 7, 8 })
local h = a.h

print(string.format('dispatch: %d iterations, libempo %s, %s', N, empo.version, jit.version))
print(empo.info().line)
bench('ffi empo_tensor_numel', function(n)
  local s = 0
  for _ = 1, n do s = s + C.empo_tensor_numel(h) end
  return s
end)
local outp = ffi.new('empo_tensor*[1]')
local hb = b.h
bench('raw C add + release', function(n)
  for _ = 1, n do C.empo_add(outp, h, hb); C.empo_tensor_release(outp[0]) end
end)
local add_ns = bench('a + b', function(n)
  local c
  for _ = 1, n do c = a + b end
  return c
end)
bench('a + 1', function(n)
  local c
  for _ = 1, n do c = a + 1 end
  return c
end)
local exp_ns = bench('a:exp()', function(n)
  local c
  for _ = 1, n do c = a:exp() end
  return c
end)
bench('a + b, then c:free()', function(n)
  for _ = 1, n do local c = a + b; c:free() end
end)
bench('a * w (w requires grad)', function(n)
  local w = empo.tensor({ 1, 1, 1, 1 }, { requires_grad = true })
  local c
  for _ = 1, n do c = a * w end
  return c
end)
print(string.format('summary: add %.0f ns/call, exp %.0f ns/call (target <= 1000)', add_ns, exp_ns))
