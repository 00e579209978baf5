-- tests/io/test_safetensors.lua — empo.safetensors from Lua: save/load
-- round trips (every dtype, 0-d, empty, non-contiguous), dtype conversion
-- on load, metadata, lazy open (names, info, get, close), zero-copy views
-- outliving the file handle, path resolution (file, directory, index),
-- sharded checkpoints, and clear errors at the caller's line for bad
-- arguments and bad files. The PyTorch cross-check is
-- tests/parity/test_safetensors_torch.lua.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_safetensors')
local st = empo.safetensors

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p '" .. tmp .. "'")

local function read_bytes(p)
  local f = io.open(p, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

local function write_bytes(p, s)
  local f = io.open(p, 'wb')
  f:write(s)
  f:close()
end

local function exists(p) return read_bytes(p) ~= nil end

local base = empo.arange(12, { dtype = 'f32' }):view(3, 4) * 0.5 - 1
local tensors = {
  ['model.w'] = base,
  ['model.wt'] = base:transpose(1, 2),                                   -- not contiguous
  ['h.bf16'] = base:to('bf16'),
  ['h.f16'] = base:to('f16'),
  ['d.f64'] = base:to('f64'),
  ids = empo.tensor({ 5, -3, 7 }, 'i64'),
  i32 = empo.tensor({ { 1, 2 } }, 'i32'),
  mask = empo.tensor({ 1, 0, 1 }, 'u8'),
  scalar = empo.tensor(3.25),
  empty = empo.zeros(0, 4),
}

-- ---- save / load ----
local path = tmp .. '/all.safetensors'
c.eq({ st.save(path, tensors, { step = 7, note = 'hi' }) }, { path, 1 }, 'save returns the path and 1 shard')
local got, meta = st.load(path)
c.eq(meta, { step = '7', note = 'hi', format = 'pt' }, 'metadata: numbers as strings, format defaults to pt')
local n = 0
for name, t in pairs(tensors) do
  n = n + 1
  local g = got[name]
  c.ok(g ~= nil, name .. ' loaded')
  if g then
    c.eq(g:dtype(), t:dtype(), name .. ' dtype')
    c.eq(g:size(), t:size(), name .. ' shape')
    c.eq(g:tolist(), t:tolist(), name .. ' values')
  end
end
local m = 0
for _ in pairs(got) do m = m + 1 end
c.eq(m, n, 'nothing more is loaded')
c.eq(got.scalar:dim(), 0, '0-d stays 0-d')
local f32 = st.load(path, { dtype = 'f32' })
c.eq(f32['h.bf16']:dtype(), 'f32', 'bf16 converted on load')
c.eq(f32['h.bf16']:tolist(), base:tolist(), 'bf16 values exact')
c.eq(f32['d.f64']:dtype(), 'f32', 'f64 converted')
c.eq(f32.ids:dtype(), 'i64', 'integers keep their dtype')
c.eq(f32.mask:dtype(), 'u8', 'masks keep their dtype')
c.eq(st.load(path, { dtype = 'bf16' })['model.w']:dtype(), 'bf16', 'f32 -> bf16 on load')

-- the same input gives the same bytes
st.save(tmp .. '/again.safetensors', tensors, { note = 'hi', step = '7' })
c.ok(read_bytes(path) == read_bytes(tmp .. '/again.safetensors'), 'byte-identical re-save')
st.save(tmp .. '/raw.safetensors', { x = base }, { format = 'np' })
c.eq(select(2, st.load(tmp .. '/raw.safetensors')), { format = 'np' }, 'an explicit format is kept')

-- ---- lazy open ----
local f = st.open(path)
c.eq(f:names(), { 'd.f64', 'empty', 'h.bf16', 'h.f16', 'i32', 'ids', 'mask', 'model.w', 'model.wt', 'scalar' },
     'names, sorted')
c.ok(f:has('ids') and not f:has('nope'), 'has')
c.eq(f:info('h.bf16'), { dtype = 'bf16', file_dtype = 'BF16', shape = { 3, 4 } }, 'info')
c.eq(f:info('scalar').shape, {}, 'info of 0-d')
c.eq(f:get('h.bf16', 'f32'):tolist(), base:tolist(), 'get with a dtype')
c.eq(f:get('h.f16', { dtype = 'f64' }):dtype(), 'f64', 'get with options')
local view = f:get('model.w')
c.eq(f:metadata().note, 'hi', 'metadata')
f:close()
f:close()                                                   -- twice is fine
c.eq(view:tolist(), base:tolist(), 'a view outlives the closed file')
view:fill_(0)
c.eq(st.load(path)['model.w']:tolist(), base:tolist(), 'writing into a view never reaches the file')
c.raises(function() return f:get('ids') end, 'was closed')
c.raises(function() return f:names() end, 'was closed')

-- ---- directories and sharding ----
local dir = tmp .. '/ckpt'
local written, k = st.save(dir .. '/model.safetensors', tensors, nil, { max_shard_bytes = 64 })
c.eq(written, dir .. '/model.safetensors.index.json', 'sharded save returns the index path')
c.ok(k > 2, 'several shards')
c.ok(exists(string.format('%s/model-00001-of-%05d.safetensors', dir, k)), 'Hugging Face shard names')
local sh = st.load(dir)
c.eq(sh['model.wt']:tolist(), base:transpose(1, 2):tolist(), 'load(dir) finds the index')
c.eq(st.load(dir .. '/model.safetensors')['ids']:tolist(), { 5, -3, 7 }, 'x.safetensors finds x.safetensors.index.json')
c.eq(st.load(written)['scalar']:item(), 3.25, 'load(index.json)')
local lazy = st.open(dir)
c.eq(#lazy:names(), n, 'index names')
c.eq(lazy:info('h.f16').file_dtype, 'F16', 'info through the index')
c.eq(lazy:metadata(), { format = 'pt' }, 'shards carry the metadata')
c.raises(function() return lazy:get('nope') end, "tensor 'nope': not in the weight_map")
lazy:close()
c.raises(function() return lazy:get('ids') end, 'was closed')
-- back to one file: the index and shards go
c.eq({ st.save(dir, tensors, nil, { max_shard_bytes = 1e9 }) }, { dir .. '/model.safetensors', 1 }, 'one shard')
c.ok(not exists(dir .. '/model.safetensors.index.json'), 'stale index removed')
c.ok(not exists(string.format('%s/model-00001-of-%05d.safetensors', dir, k)), 'stale shards removed')
c.eq(st.load(dir).ids:tolist(), { 5, -3, 7 }, 'load(dir) finds model.safetensors')

-- ---- errors name the file and the tensor, at the caller's line ----
local err = c.raises(function() st.load(tmp .. '/missing.safetensors') end, 'missing.safetensors: cannot open')
c.ok(err and err:find('test_safetensors.lua:%d+:') ~= nil, 'error at the caller: ' .. tostring(err))
c.raises(function() st.open(tmp) end, 'a directory without model.safetensors')
local bytes = read_bytes(path)
write_bytes(tmp .. '/cut.safetensors', bytes:sub(1, #bytes - 10))
c.raises(function() st.load(tmp .. '/cut.safetensors') end, 'cut.safetensors: tensor', 'truncated')
c.raises(function() st.open(path):get('nope') end, "all.safetensors: tensor 'nope': no such tensor")
c.raises(function() st.open(path):get('ids', 'f99') end, "unknown dtype 'f99'")
c.raises(function() st.load(path, { dtype = 'nope' }) end, "unknown dtype 'nope'")
c.raises(function() st.save(tmp .. '/x.safetensors', { a = 1 }) end, 'empo.safetensors.save', 'expected tensor')
c.raises(function() st.save(tmp .. '/x.safetensors', { base }) end, 'tensor names must be strings')
c.raises(function() st.save(tmp .. '/x.safetensors', { a = base }, { k = {} }) end, "metadata 'k' must be a string")
c.raises(function() st.save(tmp .. '/no/such/dir/x.safetensors', { a = base }) end, 'cannot write', 'no/such/dir/x.safetensors')
c.raises(function() st.save(42, {}) end, 'argument 1')
-- an index whose shard is missing or lacks a tensor
write_bytes(tmp .. '/bad.index.json', '{"weight_map": {"ids": "nowhere.safetensors", "x": "all.safetensors"}}')
c.raises(function() st.load(tmp .. '/bad.index.json') end, 'nowhere.safetensors: cannot open')
write_bytes(tmp .. '/bad.index.json', '{"weight_map": {"x": "all.safetensors"}}')
c.raises(function() st.load(tmp .. '/bad.index.json') end, "tensor 'x': the weight_map puts it in", 'does not hold it')

-- nothing leaks
got, f32, sh, view, lazy, f = nil, nil, nil, nil, nil, nil
tensors, base = nil, nil
empo.collect()
c.eq(empo.memory().tensors, 0, 'every tensor released')

os.execute("rm -rf '" .. tmp .. "'")
c.done()
