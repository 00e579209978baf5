-- empo.io.json (empo.json) — JSON for config files: decoding through cJSON
-- (the project's JSON parser, reached by the FFI), encoding in Lua with
-- sorted keys and two-space indentation, so files empo writes are stable
-- byte for byte; write_file is atomic (empo.io.fs). Not a streaming parser:
-- JSONL is one decode per line.
--
--     local cfg = json.decode(text, 'config.json')   -- errors name the source
--     local text = json.encode({ a = 1, b = { 2, 3 } })
--
-- JSON null decodes to json.null; arrays to sequences (json.array marks an
-- empty table as an array when encoding).
local ffi = require 'ffi'
local fs = require 'empo.io.fs'

pcall(ffi.cdef, [[
  typedef struct cJSON {
    struct cJSON *next, *prev, *child;
    int type;
    char *valuestring;
    int valueint;
    double valuedouble;
    char *string;
  } cJSON;
  cJSON *cJSON_ParseWithLength(const char *value, size_t buffer_length);
  const char *cJSON_GetErrorPtr(void);
  void cJSON_Delete(cJSON *item);
]])

-- libempo links cJSON, so inside the empo binary its symbols are global;
-- from a plain luajit load it by name.
local lib = ffi.C
if not pcall(function() return ffi.C.cJSON_ParseWithLength end) then
  lib = ffi.load('libcjson.so.1')
end

local M = {}
M.null = setmetatable({}, { __tostring = function() return 'json.null' end })
local array_mt = { __jsontype = 'array' }
function M.array(t) return setmetatable(t or {}, array_mt) end

local FALSE, TRUE, NULL, NUMBER, STRING, ARRAY, OBJECT = 1, 2, 4, 8, 16, 32, 64

local function convert(node)
  local ty = bit.band(node.type, 0xff)
  if ty == NUMBER then return node.valuedouble
  elseif ty == STRING then return ffi.string(node.valuestring)
  elseif ty == TRUE then return true
  elseif ty == FALSE then return false
  elseif ty == NULL then return M.null
  elseif ty == ARRAY then
    local t, i, c = M.array(), 0, node.child
    while c ~= nil do i = i + 1; t[i] = convert(c); c = c.next end
    return t
  elseif ty == OBJECT then
    local t, c = {}, node.child
    while c ~= nil do t[ffi.string(c.string)] = convert(c); c = c.next end
    return t
  end
  error('json: unsupported value type ' .. ty)
end

-- Decodes text; `source` (a file name) goes into error messages.
function M.decode(text, source)
  source = source or 'json'
  if type(text) ~= 'string' then error(source .. ': expected a JSON string, got ' .. type(text), 2) end
  local root = lib.cJSON_ParseWithLength(text, #text)
  if root == nil then
    local at = lib.cJSON_GetErrorPtr()
    local where = ''
    if at ~= nil then
      local ok, rest = pcall(ffi.string, at)
      if ok then
        local offset = #text - #rest
        local before = text:sub(1, offset)
        local line = select(2, before:gsub('\n', '')) + 1
        if text:find('\n', 1, true) then
          where = string.format(' at line %d near %q', line, rest:sub(1, 20))
        else                          -- one line (a JSONL record: source names its line)
          where = string.format(' at column %d near %q', offset + 1, rest:sub(1, 20))
        end
      end
    end
    error(string.format('%s: malformed JSON%s', source, where), 2)
  end
  local ok, value = pcall(convert, root)
  lib.cJSON_Delete(root)
  if not ok then error(source .. ': ' .. tostring(value), 2) end
  return value
end

function M.read_file(path)
  local text, err = fs.read_text(path)
  if not text then error(string.format('cannot read %s: %s', path, err), 2) end
  return M.decode(text, path)
end

local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
                  ['\r'] = '\\r', ['\t'] = '\\t' }
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return escapes[c] or string.format('\\u%04x', c:byte()) end) .. '"'
end

local function is_array(t)
  if getmetatable(t) == array_mt then return true end
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if type(k) ~= 'number' or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

local function encode(v, indent, out, path, compact)
  local tv = type(v)
  if v == M.null or v == nil then out[#out + 1] = 'null'
  elseif tv == 'boolean' then out[#out + 1] = tostring(v)
  elseif tv == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then error('json.encode: ' .. path .. ' is not a finite number', 0) end
    out[#out + 1] = (v % 1 == 0 and math.abs(v) < 2^53) and string.format('%d', v) or string.format('%.17g', v)
  elseif tv == 'string' then out[#out + 1] = quote(v)
  elseif tv == 'table' then
    local inner = compact and '' or indent .. '  '
    local nl, close = compact and '' or '\n', compact and '' or indent
    if is_array(v) then
      if #v == 0 then out[#out + 1] = '[]' return end
      out[#out + 1] = '[' .. nl
      for i = 1, #v do
        out[#out + 1] = inner
        encode(v[i], inner, out, path .. '[' .. i .. ']', compact)
        out[#out + 1] = i < #v and ',' .. nl or nl
      end
      out[#out + 1] = close .. ']'
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= 'string' then error('json.encode: ' .. path .. ' has a non-string key', 0) end
        keys[#keys + 1] = k
      end
      table.sort(keys)
      if #keys == 0 then out[#out + 1] = '{}' return end
      out[#out + 1] = '{' .. nl
      for i, k in ipairs(keys) do
        out[#out + 1] = inner .. quote(k) .. (compact and ':' or ': ')
        encode(v[k], inner, out, path .. '.' .. k, compact)
        out[#out + 1] = i < #keys and ',' .. nl or nl
      end
      out[#out + 1] = close .. '}'
    end
  else
    error('json.encode: ' .. path .. ' is a ' .. tv, 0)
  end
end

-- Pretty (two-space indent, trailing newline) or, with {compact = true},
-- one line without spaces (for JSONL).
function M.encode(v, opts)
  local out, compact = {}, opts and opts.compact
  encode(v, '', out, '$', compact)
  return table.concat(out) .. (compact and '' or '\n')
end

-- Writes v as JSON to path atomically (empo.io.fs.write_atomic).
function M.write_file(path, v)
  local ok, err = fs.write_atomic(path, M.encode(v))
  if not ok then error(err, 2) end
end

return M
