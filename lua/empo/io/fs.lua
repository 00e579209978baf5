-- empo.io.fs — the few file-system operations the library needs, each in
-- one place: a whole-file write that is atomic and durable (a temporary
-- file, fsync, renamed over the target, the directory fsynced: a kill or
-- a power cut leaves the old file or the new one, never a torn one),
-- `mkdir -p`, reading a file, existence tests, listing and removing a
-- directory the library made. The writer and mkdir are the C runtime's
-- (empo/files.h), shared with the safetensors writer and the tokenizer
-- trainer.
--
--     local fs = require 'empo.io.fs'                  -- also empo.fs
--     assert(fs.make_dirs('runs/x/checkpoint-10'))
--     assert(fs.write_atomic('runs/x/latest', 'checkpoint-10\n'))
--     local text = fs.read_text('runs/x/latest')       -- nil, message when unreadable
--
-- Failures are values (nil, message), so each caller raises them under its
-- own name. Not a general file library: no globbing or permissions.
local E = require 'empo.tensor.ffi'
local C = E.C

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

-- Writes text to path atomically (empo_write_file_atomic). Returns true,
-- or nil and a message.
function M.write_atomic(path, text)
  if C.empo_write_file_atomic(path, text, #text) ~= 0 then return nil, E.last_error() end
  return true
end

-- Copies the file src into directory dir under its own name (atomically).
-- Returns true, or nil and a message.
function M.copy_into(dir, src)
  local text, err = M.read_text(src)
  if not text then return nil, format('cannot read %s: %s', src, tostring(err)) end
  return M.write_atomic(dir .. '/' .. src:match('[^/]+$'), text)
end

-- mkdir -p: path and its parents. Returns true once path is a directory
-- this process can write into, else nil and a message.
function M.make_dirs(path)
  if C.empo_make_dirs(path) ~= 0 then return nil, E.last_error() end
  return true
end

local function quoted(path) return "'" .. path:gsub("'", "'\\''") .. "'" end

-- rm -rf path. Only for directories the library itself made (names it chose).
function M.remove_tree(path)
  os.execute('rm -rf ' .. quoted(path))
end

-- The names in directory dir (none when it does not exist), in ls order;
-- opts.hidden: dot files too.
function M.list(dir, opts)
  local names = {}
  local p = io.popen('ls -1' .. (opts and opts.hidden and 'A ' or ' ') .. quoted(dir) .. ' 2>/dev/null')
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  return names
end

return M
