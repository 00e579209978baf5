-- empo.io.gzip — whole gzip files written and read through zlib (Debian's
-- zlib1g, libz.so.1, opened by the FFI on first use): what the rollout
-- store keeps (empo.rl.rollout_store). A file is written under a
-- temporary name and renamed into place, so a kill never leaves a torn
-- one; `zcat`, Python's gzip module and any gzip reader read them.
--
--     assert(gzip.write('runs/x/rollouts/step-000001.jsonl.gz', text))
--     local text = assert(gzip.read('runs/x/rollouts/step-000001.jsonl.gz'))
--
-- Failures are values (nil, message), as in empo.io.fs.
local ffi = require 'ffi'

local format = string.format
local M = {}

pcall(ffi.cdef, [[
typedef struct gzFile_s *gzFile;
gzFile gzopen(const char *path, const char *mode);
int gzwrite(gzFile file, const void *buf, unsigned len);
int gzread(gzFile file, void *buf, unsigned len);
int gzclose(gzFile file);
const char *gzerror(gzFile file, int *errnum);
]])

local zlib
local function lib()
  if zlib then return zlib end
  for _, name in ipairs({ 'libz.so.1', 'z' }) do
    local ok, l = pcall(ffi.load, name)
    if ok then zlib = l; return zlib end
  end
  error('empo.io.gzip: zlib (libz.so.1, Debian package zlib1g) could not be loaded', 0)
end

-- Writes text to path as one gzip member (level 1-9, default 6), through
-- path .. '.tmp' and a rename. Returns true, or nil and a message.
function M.write(path, text, level)
  local z = lib()
  local tmp = path .. '.tmp'
  local f = z.gzopen(tmp, 'wb' .. tostring(level or 6))
  if f == nil then return nil, format('cannot write %s', tmp) end
  local n = #text
  local wrote = n == 0 and 0 or z.gzwrite(f, text, n)
  local closed = z.gzclose(f)
  if wrote ~= n or closed ~= 0 then
    os.remove(tmp)
    return nil, format('cannot write %s (disk full?)', path)
  end
  local ok, err = os.rename(tmp, path)
  if not ok then os.remove(tmp); return nil, err end
  return true
end

-- The uncompressed contents of the gzip file at path, or nil and a message
-- (a file that is not gzip, or is cut short, is named as such).
function M.read(path)
  local z = lib()
  local probe = io.open(path, 'rb')
  if not probe then return nil, format('cannot read %s', path) end
  local magic = probe:read(2)
  probe:close()
  if magic ~= '\31\139' then return nil, format('%s is not a gzip file', path) end
  local f = z.gzopen(path, 'rb')
  if f == nil then return nil, format('cannot read %s', path) end
  local parts, size = {}, 65536
  local buf = ffi.new('uint8_t[?]', size)
  while true do
    local got = z.gzread(f, buf, size)
    if got < 0 then
      local errnum = ffi.new('int[1]')
      local msg = ffi.string(z.gzerror(f, errnum))
      z.gzclose(f)
      return nil, format('%s is damaged (%s)', path, msg)
    end
    if got == 0 then break end
    parts[#parts + 1] = ffi.string(buf, got)
  end
  local rc = z.gzclose(f)
  if rc ~= 0 then return nil, format('%s is cut short (a truncated gzip file)', path) end
  return table.concat(parts)
end

return M
