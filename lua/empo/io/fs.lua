-- empo.io.fs — the few file-system operations the library needs, each in
-- one place: a whole-file write that is atomic (a temporary file renamed
-- over the target, so a kill leaves the old file or the new one, never a
-- torn one), `mkdir -p`, reading a file, existence tests, listing and
-- removing a directory the library made.
--
--     local fs = require 'empo.io.fs'                  -- also empo.fs
--     assert(fs.make_dirs('runs/x/checkpoint-10'))
--     assert(fs.write_atomic('runs/x/latest', 'checkpoint-10\n'))
--     local text = fs.read_text('runs/x/latest')       -- nil, message when unreadable
--
-- Failures are values (nil, message), so each caller raises them under its
-- own name. Not a general file library: no globbing, permissions or
-- durability across power loss (no fsync).
local ffi = require 'ffi'

pcall(ffi.cdef, 'int mkdir(const char *path, unsigned int mode);')

local format = string.format
local M = {}

-- True when path can be opened for reading (a file, or a directory with a
-- trailing '/').
function M.exists(path)
  local f = io.open(path, 'rb')
  if f then f:close() return true end
  return false
end

function M.is_dir(path) return M.exists(path .. '/') end

-- The contents of path, or nil and a message.
function M.read_text(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local text = f:read('*a')
  f:close()
  return text
end

-- Writes text to path through path .. '.tmp' and a rename. Returns true,
-- or nil and a message.
function M.write_atomic(path, text)
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'wb')
  if not f then return nil, format('cannot write %s: %s', tmp, err) end
  local ok, werr = f:write(text)
  f:close()
  if not ok then
    os.remove(tmp)
    return nil, format('cannot write %s: %s', tmp, tostring(werr))
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then return nil, format('cannot rename %s to %s: %s', tmp, path, rerr) end
  return true
end

-- mkdir -p: path and its parents (mode 755). Returns true once path is a
-- directory this process can write into, else nil and a message.
function M.make_dirs(path)
  local sofar = path:sub(1, 1) == '/' and '/' or ''
  for part in path:gmatch('[^/]+') do
    sofar = sofar .. part .. '/'
    ffi.C.mkdir(sofar, tonumber('755', 8))   -- an existing directory fails harmlessly
  end
  local probe = path .. '/.empo_write_test'
  local f = io.open(probe, 'wb')
  if not f then return nil, format('cannot create or write directory %s', path) end
  f:close()
  os.remove(probe)
  return true
end

local function quoted(path) return "'" .. path:gsub("'", "'\\''") .. "'" end

-- rm -rf path. Only for directories the library itself made (names it chose).
function M.remove_tree(path)
  os.execute('rm -rf ' .. quoted(path))
end

-- The names in directory dir (none when it does not exist), in ls order.
function M.list(dir)
  local names = {}
  local p = io.popen('ls -1 ' .. quoted(dir) .. ' 2>/dev/null')
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

return M
