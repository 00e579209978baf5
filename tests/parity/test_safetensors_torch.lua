-- tests/parity/test_safetensors_torch.lua — safetensors files cross-checked
-- with an independent, strict reader and writer in Python + torch
-- (tests/parity/safetensors_ref.py):
--   * a file Python writes (every dtype, ±inf, -0, rounding cases, random
--     bit patterns with NaN payloads, BOOL, I16, in Hugging Face's data
--     order) loads in empo with the expected values;
--   * empo re-saves it and Python finds the same bits in every tensor;
--   * a file empo writes passes the strict reader and holds what torch
--     computes for the same values (bf16/f16 rounding included);
--   * sharded checkpoints both ways (index.json + shards).
local source = os.getenv('EMPO_SOURCE_DIR') or '.'
package.path = source .. '/tests/lua/?.lua;' .. package.path
local empo = require 'empo'
local check = require 'check'
local c = check.new('test_safetensors_torch')
local st = empo.safetensors
local python = os.getenv('EMPO_PYTHON') or '/usr/bin/python3'
local ref = source .. '/tests/parity/safetensors_ref.py'

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function py(...)
  local cmd = { python, ref, ... }
  for i = 1, #cmd do cmd[i] = "'" .. cmd[i] .. "'" end
  return os.execute(table.concat(cmd, ' ')) == 0
end

-- the tensors of safetensors_ref.expected_tensors, built in empo
local NEG_ZERO = -1 / math.huge
local SPECIAL = { math.huge, -math.huge, NEG_ZERO, 1 / 3, 2 / 3, 1e-3, 65519, 1e-8, 3.0e38 }

local function formula(n, dt)
  local v = {}
  for i = 0, n - 1 do
    local k = (i * 37) % 101 - 50
    if dt == 'u8' then v[i + 1] = i % 2
    elseif dt == 'f32' or dt == 'f64' or dt == 'bf16' or dt == 'f16' then v[i + 1] = k / 8
    else v[i + 1] = k end
  end
  return v
end

local function expected()
  local shapes = { f32 = { 3, 4, 5 }, f64 = { 7 }, bf16 = { 2, 3 }, f16 = { 4, 2 }, i32 = { 5 }, i64 = { 2, 2 },
                   u8 = { 6 } }
  local out = {}
  for dt, shape in pairs(shapes) do
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    -- floats go through f32, as in the Python oracle
    local src = empo.tensor(formula(n, dt), (dt == 'i32' or dt == 'i64' or dt == 'u8') and dt or 'f32')
    out['t.' .. dt] = src:to(dt):view(shape)
  end
  for _, dt in ipairs({ 'f32', 'f64', 'bf16', 'f16' }) do
    out['special.' .. dt] = empo.tensor(SPECIAL, 'f32'):to(dt)
  end
  out.scalar = empo.tensor(2.5)
  out.empty = empo.zeros(0, 3)
  return out
end

local function flat(t) return t:numel() == 0 and {} or t:reshape(-1):tolist() end

-- same dtype, shape and values (-0 told from +0)
local function same(got, want)
  if got == nil then return false, 'missing' end
  if got:dtype() ~= want:dtype() or not check.same(got:size(), want:size()) then
    return false, got:dtype() .. ' ' .. check.show(got:size()) .. ' vs ' .. want:dtype() .. ' ' .. check.show(want:size())
  end
  local a, b = flat(got), flat(want)
  for i = 1, #b do
    if a[i] ~= b[i] or (b[i] == 0 and 1 / a[i] ~= 1 / b[i]) then
      return false, string.format('element %d: %s vs %s', i, tostring(a[i]), tostring(b[i]))
    end
  end
  return true
end

local function check_all(got, what)
  for name, want in pairs(expected()) do
    local ok, why = same(got[name], want)
    c.ok(ok, what .. ': ' .. name .. (why and (': ' .. why) or ''))
  end
end

local UTF8_NOTE = 'written by empo \195\188'

-- ---- Python writes, empo reads ----
local A = tmp .. '/python.safetensors'
c.ok(py('write', A), 'python wrote ' .. A)
local tensors, meta = st.load(A)
check_all(tensors, 'python -> empo')
c.eq(meta, { format = 'pt', source = 'python' }, 'metadata from python')
c.eq(tensors.i16:dtype(), 'i64', 'I16 loads as i64')
c.eq(tensors.i16:tolist(), { -2, 300, 7, -32768 }, 'I16 values')
c.eq(tensors.mask:dtype(), 'u8', 'BOOL loads as u8')
c.eq(tensors.mask:tolist(), { 1, 0, 1, 1 }, 'BOOL values')
local as_f32 = st.load(A, { dtype = 'f32' })
c.eq(as_f32['t.bf16']:dtype(), 'f32', 'bf16 converted to f32 on load')
c.ok(same(as_f32['t.bf16'], tensors['t.bf16']:to('f32')), 'bf16 -> f32 values')
c.ok(same(as_f32['special.bf16'], tensors['special.bf16']:to('f32')), 'bf16 -> f32 special values')
c.ok(same(as_f32['special.f16'], tensors['special.f16']:to('f32')), 'f16 -> f32 special values')
c.eq(as_f32['t.i64']:dtype(), 'i64', 'integers keep their dtype under dtype=f32')

-- ---- empo re-saves it: the same bits, random patterns and NaNs included ----
local B = tmp .. '/resaved.safetensors'
st.save(B, tensors, meta)
c.ok(py('same_bits', A, B), 'empo re-save keeps every bit')

-- ---- empo writes, Python reads ----
local C = tmp .. '/empo.safetensors'
st.save(C, expected(), { note = UTF8_NOTE })
c.ok(py('check', C), 'python reads what empo wrote')

-- ---- sharded, both ways ----
local D = tmp .. '/empo_sharded'
local index, shards = st.save(D .. '/model.safetensors', expected(), { note = UTF8_NOTE }, { max_shard_bytes = 200 })
c.eq(index, D .. '/model.safetensors.index.json', 'sharded save returns the index')
c.ok(shards > 1, 'several shards: ' .. shards)
c.ok(py('check_sharded', D), 'python reads empo shards')
local E = tmp .. '/python_sharded'
c.ok(py('write_sharded', E), 'python wrote shards')
check_all(st.load(E), 'python shards -> empo')
local f = st.open(E)
c.eq(#f:names(), 22, 'index lists every tensor')
c.eq(f:get('t.i32'):tolist(), formula(5, 'i32'), 'lazy get through the index')
f:close()

os.execute("rm -rf '" .. tmp .. "'")
c.done()
