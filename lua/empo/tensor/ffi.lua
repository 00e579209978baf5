-- empo.tensor.ffi (empo.ffi) — the LuaJIT FFI binding of libempo, the layer
-- every other module stands on.
--
-- Declares core/include/empo/empo.h (the declarations are generated into empo/cdef.lua by
-- the build, never written by hand), finds the library and checks its ABI
-- version. Inside the `empo` executable the symbols are already loaded and
-- come from ffi.C; from a plain luajit the library is ffi.load'ed from
-- $EMPO_LIB, the system paths, or the build tree beside the generated cdef.
--
--     local E = require 'empo.tensor.ffi'
--     E.check(E.C.empo_tensor_zeros(out, 2, shape, E.C.EMPO_F32))
--
-- This module does no tensor work; see empo.tensor.
local ffi = require 'ffi'

local M = {}

local cdef = require 'empo.cdef'
-- Declaring twice fails; a second load (package.loaded cleared) reuses them.
if not pcall(ffi.typeof, 'empo_tensor') then
  ffi.cdef(cdef)
end
M.cdef = cdef

local function has_empo(lib)
  return pcall(function() return lib.empo_abi_version end)
end

local function load_library()
  if has_empo(ffi.C) then return ffi.C, 'the empo executable' end
  local tried = {}
  local env = os.getenv('EMPO_LIB')
  local candidates = {}
  if env and env ~= '' then
    candidates[1] = env
  else
    candidates[1] = 'empo'
    -- The build tree: <build>/lua/empo/cdef.lua sits two levels under libempo.so.
    local cpath = package.searchpath and package.searchpath('empo.cdef', package.path)
    if cpath then
      candidates[2] = cpath:gsub('[^/]*$', '') .. '../../libempo.so'
    end
  end
  for _, name in ipairs(candidates) do
    local ok, lib = pcall(ffi.load, name)
    if ok and has_empo(lib) then return lib, name end
    tried[#tried + 1] = name .. ' (' .. tostring(ok and 'no empo symbols' or lib) .. ')'
  end
  error('empo: cannot load libempo; tried ' .. table.concat(tried, ', ') ..
        '. Set EMPO_LIB to the path of libempo.so.', 0)
end

local C, origin = load_library()
M.C = C
M.origin = origin

local want = C.EMPO_ABI_VERSION
local have = C.empo_abi_version()
if have ~= want then
  error(string.format('empo: ABI version mismatch: the Lua binding was generated for ' ..
    'ABI %d but %s provides ABI %d (libempo %s). Rebuild, or point EMPO_LIB / ' ..
    'EMPO_LUA_PATH at matching files.', want, origin, have, ffi.string(C.empo_version())), 0)
end
M.abi_version = have

local ffi_string = ffi.string

-- The message of the last failed call on this thread.
function M.last_error()
  return ffi_string(C.empo_last_error())
end

-- Raise the C error for a nonzero status, at the caller's caller by default.
function M.check(status, level)
  if status ~= 0 then
    error(ffi_string(C.empo_last_error()), (level or 1) + 1)
  end
  return status
end

-- Every function name declared in the cdef, for tests and tools.
function M.function_names()
  local names, seen = {}, {}
  -- strip comments, then find "name(" after a return type on each declaration
  local src = cdef:gsub('/%*.-%*/', ''):gsub('//[^\n]*', '')
  for decl in src:gmatch('[^;]+;') do
    if not decl:find('typedef', 1, true) and not decl:find('^%s*enum') then
      local name = decl:match('([%a_][%w_]*)%s*%(')
      if name and not seen[name] then
        seen[name] = true
        names[#names + 1] = name
      end
    end
  end
  return names
end

return M
