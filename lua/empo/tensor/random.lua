-- empo.tensor.random — Philox generators and random tensors.
--
--     local g = empo.Generator(1234, 0)     -- (seed, stream)
--     local x = g:randn(2, 3)                -- or empo.randn(2, 3, {generator = g})
--     empo.manual_seed(7)                    -- reseeds the default generator
--
-- A generator's state is (seed, stream, counter): draws depend only on it,
-- never on thread count or the clock. The default generator starts at
-- seed 0, stream 0. Integer draws (randint, multinomial) are i64 values,
-- 0-based for multinomial.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
require 'empo.tensor.ops'   -- t:to
local C = E.C

if not pcall(ffi.typeof, 'struct empo_rng_box') then
  ffi.cdef 'struct empo_rng_box { empo_rng *r; };'
end

local format = string.format
local new_box, outp, shape_buf = T.new_box, T.outp, T.shape_buf
local result, H, check, argerror = T.result, T.handle, T.check, T.argerror

local M = {}
local G = {}    -- generator methods
local gen_t

local function R(g, fname)
  if not ffi.istype(gen_t, g) then argerror(fname, 1, 'Generator', g) end
  if g.r == nil then error(fname .. ': generator was freed', 3) end
  return g.r
end

local function seed_arg(s, fname, argn)
  if s == nil then return 0 end
  if type(s) == 'number' then
    if s < 0 or s % 1 ~= 0 then
      error(format('%s: argument %d: a seed is a non-negative integer, got %s', fname, argn, tostring(s)), 3)
    end
    return s
  end
  if type(s) == 'cdata' then return ffi.cast('uint64_t', s) end
  argerror(fname, argn, 'integer', s)
end

function M.Generator(seed, stream)
  local rp = ffi.new('empo_rng*[1]')
  check(C.empo_rng_new(rp, seed_arg(seed, 'empo.Generator', 1), seed_arg(stream, 'empo.Generator', 2)))
  return gen_t(rp[0])
end

local u64 = ffi.new('uint64_t[3]')
-- seed, stream, counter (numbers)
function G.get_state(g)
  C.empo_rng_get_state(R(g, 'Generator:get_state'), u64, u64 + 1, u64 + 2)
  return tonumber(u64[0]), tonumber(u64[1]), tonumber(u64[2])
end
function G.set_state(g, seed, stream, counter)
  local r = R(g, 'Generator:set_state')
  C.empo_rng_set_state(r, seed_arg(seed, 'Generator:set_state', 2), seed_arg(stream, 'Generator:set_state', 3),
                       seed_arg(counter, 'Generator:set_state', 4))
  return g
end
-- Restart at (seed, the same stream, counter 0).
function G.manual_seed(g, seed)
  local r = R(g, 'Generator:manual_seed')
  C.empo_rng_get_state(r, u64, u64 + 1, u64 + 2)
  C.empo_rng_set_state(r, seed_arg(seed, 'Generator:manual_seed', 2), u64[1], 0)
  return g
end
function G.uniform(g) return C.empo_rng_uniform(R(g, 'Generator:uniform')) end
function G.free(g)
  local r = g.r
  if r ~= nil then g.r = nil; C.empo_rng_free(r) end
end

-- Apply the options shared with creation functions (dtype, requires_grad).
local function finish(t, opts, fname)
  if opts and opts.dtype then
    local dt = T.dtype_id(opts.dtype, fname, 2)
    if dt ~= C.EMPO_F32 then
      local c = t:to(dt)
      t:free()
      t = c
    end
  end
  return T.finish(t, opts)
end

-- randn(size...) and rand(size...): a draw of a shape from the C function draw
local function shaped_draw(name, draw)
  return function(g, ...)
    local r = R(g, name)
    local nd, opts = T.read_shape(name, shape_buf, ...)
    check(draw(outp, r, nd, shape_buf))
    return finish(new_box(outp[0]), opts, name)
  end
end
G.randn = shaped_draw('empo.randn', C.empo_randn)
G.rand = shaped_draw('empo.rand', C.empo_rand)
-- randint(low, high, size...) in [low, high); randint(high, {size}) from 0
function G.randint(g, low, high, ...)
  if type(high) == 'table' and not T.is_tensor(high) then
    return G.randint(g, 0, low, high, ...)           -- randint(high, {size}, opts)
  end
  local r = R(g, 'empo.randint')
  if type(low) ~= 'number' then argerror('empo.randint', 1, 'number (low)', low) end
  if type(high) ~= 'number' then argerror('empo.randint', 2, 'number (high)', high) end
  local nd, opts = T.read_shape('empo.randint', shape_buf, ...)
  check(C.empo_randint(outp, r, low, high, nd, shape_buf))
  local t = new_box(outp[0])
  if opts and opts.dtype then
    local dt = T.dtype_id(opts.dtype, 'empo.randint', 4)
    if dt ~= C.EMPO_I64 then local c = t:to(dt); t:free(); t = c end
  end
  return t
end
-- probs [N, V] or [V] -> i64 [N, n] / [n] (0-based draws)
function G.multinomial(g, probs, n, replacement)
  local r = R(g, 'empo.multinomial')
  local hp = H(probs, 'empo.multinomial', 2)
  if type(n) ~= 'number' then argerror('empo.multinomial', 3, 'number of draws', n) end
  return result(C.empo_multinomial(outp, r, hp, n, replacement and 1 or 0))
end

gen_t = ffi.metatype('struct empo_rng_box', {
  __index = G,
  __gc = G.free,
  __tostring = function(g)
    if g.r == nil then return 'empo.Generator (freed)' end
    local s, st, c = G.get_state(g)
    return format('empo.Generator(seed=%.0f, stream=%.0f, counter=%.0f)', s, st, c)
  end,
})
M.Generator_type = gen_t

function M.is_generator(x) return ffi.istype(gen_t, x) end

-- ---- the default generator ----

local default = M.Generator(0, 0)
M.default_generator = function() return default end

function M.manual_seed(seed)
  C.empo_rng_set_state(default.r, seed_arg(seed, 'empo.manual_seed', 1), 0, 0)
  return default
end

-- The generator named in a trailing options table, else the default.
local function gen_of(...)
  local n = select('#', ...)
  if n > 0 then
    local last = select(n, ...)
    if type(last) == 'table' and not T.is_tensor(last) and last.generator ~= nil then
      return last.generator
    end
  end
  return default
end

function M.randn(...) return G.randn(gen_of(...), ...) end
function M.rand(...) return G.rand(gen_of(...), ...) end
function M.randint(low, high, ...) return G.randint(gen_of(...), low, high, ...) end
function M.multinomial(probs, n, replacement, opts)
  return G.multinomial((opts and opts.generator) or default, probs, n, replacement)
end

return M
