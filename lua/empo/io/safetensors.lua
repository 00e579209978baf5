-- empo.io.safetensors (empo.safetensors) — Hugging Face safetensors
-- checkpoints, over the C reader and writer (core/include/empo/safetensors.h).
-- Tensors by name only: which names a model has is empo.nn.models'.
--
--     local st = empo.safetensors
--     local w, meta = st.load('models/arith-base', { dtype = 'f32' })
--     print(w['model.norm.weight'], meta.format)
--     st.save('out/model.safetensors', w, { step = '100' }, { max_shard_bytes = 2^30 })
--     local f = st.open('out')                  -- lazy: nothing is read yet
--     local emb = f:get('model.embed_tokens.weight')
--     f:close()
--
-- A path may name a .safetensors file, a model.safetensors.index.json, or
-- a directory holding model.safetensors or model.safetensors.index.json
-- (tried in that order, as Hugging Face does); "x.safetensors" also finds
-- a sharded "x.safetensors.index.json". Tensors of the file's own dtype are
-- zero-copy views of the file's memory map (copy-on-write: changing them
-- never changes the file); they keep the mapping alive after close.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local fs = require 'empo.io.fs'
local C = E.C

local format, type, error, tostring = string.format, type, error, tostring
local ffi_string = ffi.string

local M = {}

local function raise(level) error(E.last_error(), level + 1) end

local exists, is_dir = fs.exists, fs.is_dir

-- (path, 'file' | 'index') for what `path` names; nil, message if nothing.
local function resolve(path)
  if path:match('%.json$') then return path, 'index' end
  local dir = path:gsub('/+$', '')
  if dir == '' then dir = '/' end
  if is_dir(dir) then
    if exists(dir .. '/model.safetensors') then return dir .. '/model.safetensors', 'file' end
    if exists(dir .. '/model.safetensors.index.json') then return dir .. '/model.safetensors.index.json', 'index' end
    return nil, format('%s: a directory without model.safetensors or model.safetensors.index.json', path)
  end
  if not exists(path) and exists(path .. '.index.json') then return path .. '.index.json', 'index' end
  return path, 'file'
end

local DTYPE_NAME = T.DNAME

local function dtype_arg(d, fname, argn)
  if d == nil then return -1 end
  return T.dtype_id(d, fname, argn)
end

-- ---- one file ----

local File = {}
File.__index = File

local function handle(f, fname)
  local h = f.h
  if h == nil then error(format('%s: %s was closed', fname, f.path), 3) end
  return h
end

local function open_file(path, level)
  local pp = ffi.new('empo_safetensors*[1]')
  if C.empo_safetensors_open(pp, path) ~= 0 then raise(level + 1) end
  return setmetatable({ h = ffi.gc(pp[0], C.empo_safetensors_close), path = path }, File)
end

-- The strings name(h, 0 .. count(h) - 1) as a Lua list.
local function c_list(h, count, name)
  local out = {}
  for i = 0, tonumber(count(h)) - 1 do out[i + 1] = ffi_string(name(h, i)) end
  return out
end

-- Tensor names, sorted.
function File:names()
  return c_list(handle(self, 'names'), C.empo_safetensors_count, C.empo_safetensors_name)
end

function File:has(name) return C.empo_safetensors_find(handle(self, 'has'), name) >= 0 end

-- { dtype = 'bf16' (nil when empo has none), file_dtype = 'BF16', shape = {..} }
function File:info(name)
  local h = handle(self, 'info')
  if type(name) ~= 'string' then T.argerror('info', 1, 'string', name) end
  local dt, nd = ffi.new('int[1]'), ffi.new('int[1]')
  local shape = ffi.new('int64_t[?]', C.EMPO_MAX_DIMS)
  if C.empo_safetensors_info(h, name, dt, nd, shape) ~= 0 then raise(2) end
  local s = {}
  for d = 0, nd[0] - 1 do s[d + 1] = tonumber(shape[d]) end
  return { dtype = DTYPE_NAME[dt[0]], file_dtype = ffi_string(C.empo_safetensors_file_dtype(h, name)), shape = s }
end

-- The tensor `name`; opts: a dtype name or { dtype = 'f32' } (converts
-- any tensor; without it, the file's dtype as a zero-copy view).
function File:get(name, opts)
  local h = handle(self, 'get')
  if type(name) ~= 'string' then T.argerror('get', 1, 'string', name) end
  local d = type(opts) == 'table' and opts.dtype or opts
  local dt = dtype_arg(d, 'get', 2)
  if C.empo_safetensors_get(T.outp, h, name, dt) ~= 0 then raise(2) end
  return T.wrap(T.outp[0])
end

-- The __metadata__ table (string -> string).
function File:metadata()
  local h = handle(self, 'metadata')
  local m = {}
  for i = 0, tonumber(C.empo_safetensors_metadata_count(h)) - 1 do
    local k = C.empo_safetensors_metadata_key(h, i)
    m[ffi_string(k)] = ffi_string(C.empo_safetensors_metadata(h, k))
  end
  return m
end

function File:close()
  if self.h ~= nil then
    C.empo_safetensors_close(ffi.gc(self.h, nil))
    self.h = nil
  end
end

-- ---- a sharded checkpoint (index.json); shards are opened on first use ----

local Sharded = {}
Sharded.__index = Sharded

local function open_index(path, level)
  local pp = ffi.new('empo_safetensors_index*[1]')
  if C.empo_safetensors_index_open(pp, path) ~= 0 then raise(level + 1) end
  return setmetatable({ ix = ffi.gc(pp[0], C.empo_safetensors_index_close), path = path, shards = {} }, Sharded)
end

local function ix_handle(f, fname)
  local ix = f.ix
  if ix == nil then error(format('%s: %s was closed', fname, f.path), 3) end
  return ix
end

-- The open shard holding name (a clear error when the index lacks it).
local function shard_of(f, name, fname)
  local ix = ix_handle(f, fname)
  if type(name) ~= 'string' then T.argerror(fname, 1, 'string', name) end
  local p = C.empo_safetensors_index_file_of(ix, name)
  if p == nil then
    error(format("%s: tensor '%s': not in the weight_map", f.path, name), 3)
  end
  p = ffi_string(p)
  local shard = f.shards[p]
  if not shard then
    shard = open_file(p, 3)
    if not shard:has(name) then
      error(format("%s: tensor '%s': the weight_map puts it in %s, which does not hold it", f.path, name, p), 3)
    end
    f.shards[p] = shard
  end
  return shard
end

function Sharded:names()
  return c_list(ix_handle(self, 'names'), C.empo_safetensors_index_count, C.empo_safetensors_index_name)
end

function Sharded:has(name) return C.empo_safetensors_index_find(ix_handle(self, 'has'), name) >= 0 end
function Sharded:info(name) return shard_of(self, name, 'info'):info(name) end
function Sharded:get(name, opts) return shard_of(self, name, 'get'):get(name, opts) end

-- The shards' __metadata__, merged (those empo writes are all equal).
function Sharded:metadata()
  local ix = ix_handle(self, 'metadata')
  local m = {}
  for i = 0, tonumber(C.empo_safetensors_index_shard_count(ix)) - 1 do
    local p = ffi_string(C.empo_safetensors_index_shard(ix, i))
    local shard = self.shards[p] or open_file(p, 2)
    self.shards[p] = shard
    for k, v in pairs(shard:metadata()) do
      if m[k] == nil then m[k] = v end
    end
  end
  return m
end

function Sharded:close()
  for _, shard in pairs(self.shards) do shard:close() end
  self.shards = {}
  if self.ix ~= nil then
    C.empo_safetensors_index_close(ffi.gc(self.ix, nil))
    self.ix = nil
  end
end

-- ---- the module functions ----

-- A lazy reader of a file, an index.json or a model directory: methods
-- names(), has(name), info(name), get(name[, dtype]), metadata(), close().
function M.open(path)
  if type(path) ~= 'string' then T.argerror('empo.safetensors.open', 1, 'path (string)', path) end
  local p, kind = resolve(path)
  if not p then error(kind, 2) end
  if kind == 'index' then return open_index(p, 2) end
  return open_file(p, 2)
end

local FLOAT = { f32 = true, f64 = true, bf16 = true, f16 = true }

-- Every tensor: returns { name = tensor }, metadata. opts.dtype converts the
-- floating-point tensors (f32/f64/bf16/f16) only, as Hugging Face's
-- torch_dtype does; integer tensors keep theirs, and integer dtypes empo
-- lacks (I8, I16, U16, U32, U64) become i64.
function M.load(path, opts)
  if opts ~= nil and type(opts) ~= 'table' then T.argerror('empo.safetensors.load', 2, 'options table', opts) end
  local want = opts and opts.dtype
  if want ~= nil then T.dtype_id(want, 'empo.safetensors.load', 2) end
  local f
  local ok, tensors, meta = pcall(function()
    f = M.open(path)
    local out = {}
    for _, name in ipairs(f:names()) do
      local info = f:info(name)
      local dt = info.dtype
      if dt == nil and info.file_dtype:match('^[IU]%d') then dt = 'i64'
      elseif want and FLOAT[dt] then dt = want end
      out[name] = f:get(name, dt ~= info.dtype and dt or nil)
    end
    return out, f:metadata()
  end)
  if f then f:close() end
  -- the message, without the position inside this file, at the caller's line
  if not ok then error((tostring(tensors):gsub('^[^\n]-safetensors%.lua:%d+: ', '', 1)), 2) end
  return tensors, meta
end

local function sorted_keys(t, fname, argn, what)
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= 'string' then
      error(format('%s: argument %d: %s names must be strings, got %s', fname, argn, what, type(k)), 3)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  return keys
end

-- Writes tensors ({ name = tensor }) and metadata ({ key = string }) to
-- path, atomically. metadata.format defaults to 'pt' (transformers checks
-- it). opts.max_shard_bytes: Hugging Face's sharded layout in path's
-- directory ("<dir>/<base>-00001-of-0000K.safetensors" + index.json, base
-- from path "<dir>/<base>.safetensors"; a path without .safetensors is the
-- directory itself and base is "model"), or one "<base>.safetensors" when
-- everything fits. Returns the path of the file or index written and the
-- number of shards.
function M.save(path, tensors, metadata, opts)
  local fname = 'empo.safetensors.save'
  if type(path) ~= 'string' then T.argerror(fname, 1, 'path (string)', path) end
  if type(tensors) ~= 'table' or T.is_tensor(tensors) then T.argerror(fname, 2, 'table of tensors', tensors) end
  if metadata ~= nil and type(metadata) ~= 'table' then T.argerror(fname, 3, 'table of strings or nil', metadata) end
  if opts ~= nil and type(opts) ~= 'table' then T.argerror(fname, 4, 'options table', opts) end
  local names = sorted_keys(tensors, fname, 2, 'tensor')
  local meta = {}
  for k, v in pairs(metadata or {}) do meta[k] = v end
  if meta.format == nil then meta.format = 'pt' end
  local keys = sorted_keys(meta, fname, 3, 'metadata')
  local n, nm = #names, #keys
  local cnames = ffi.new('const char*[?]', n + 1)
  local handles = ffi.new('empo_tensor*[?]', n + 1)
  for i, name in ipairs(names) do
    cnames[i - 1] = name                        -- `names` keeps the strings alive
    handles[i - 1] = T.handle(tensors[name], fname, 2)
  end
  local ckeys, cvals, vals = ffi.new('const char*[?]', nm + 1), ffi.new('const char*[?]', nm + 1), {}
  for i, k in ipairs(keys) do
    local v = meta[k]
    if type(v) == 'number' or type(v) == 'boolean' then v = tostring(v) end
    if type(v) ~= 'string' then
      error(format("%s: argument 3: metadata '%s' must be a string, got %s", fname, k, type(v)), 2)
    end
    vals[i] = v
    ckeys[i - 1], cvals[i - 1] = k, v
  end
  local max = opts and opts.max_shard_bytes
  if max == nil then
    if C.empo_safetensors_save(path, n, cnames, handles, nm, ckeys, cvals) ~= 0 then raise(2) end
    return path, 1
  end
  if type(max) ~= 'number' then T.argerror(fname, 4, 'options with a number max_shard_bytes', opts) end
  local dir, base = path:match('^(.*)/([^/]+)%.safetensors$')
  if not dir then
    base = path:match('^([^/]+)%.safetensors$')
    dir = base and '.' or path:gsub('/+$', '')
    base = base or 'model'
  end
  if dir == '' then dir = '/' end
  local shards = ffi.new('int[1]')
  if C.empo_safetensors_save_sharded(dir, base, n, cnames, handles, nm, ckeys, cvals, max, shards) ~= 0 then
    raise(2)
  end
  local k = shards[0]
  return dir .. '/' .. base .. (k > 1 and '.safetensors.index.json' or '.safetensors'), k
end

return M
