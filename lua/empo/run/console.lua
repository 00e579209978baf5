-- empo.run.console — what an interactive prompt needs, shared by `empo
-- repl` (lua/cli/repl.lua) and the sessions of `empo attach`
-- (empo.rl.attach_session): values shown as a person reads them, and tab
-- completion of Lua names (globals, fields and methods reachable from a
-- root table, _G by default). A value whose metatable has __complete (a
-- function returning its key names) completes through it: the views
-- `empo attach` gives of a running trainer do.
--
--     console.show({ 1, 2, a = 'x' })       --> {1, 2, a = "x"}
--     console.candidates('empo.cl')          --> { 'empo.clip_grad_norm', 'empo.cluster', ... }
local M = {}

local function is_ident(s) return type(s) == 'string' and s:match('^[%a_][%w_]*$') ~= nil end

-- v as text: strings as they are at the top (quoted inside tables),
-- tables to depth 2 and 20 items, anything with __tostring through it.
local function show(v, depth, seen)
  depth, seen = depth or 0, seen or {}
  local tv = type(v)
  if tv == 'string' then return depth == 0 and v or string.format('%q', v) end
  if tv ~= 'table' then return tostring(v) end
  local meta = getmetatable(v)
  if meta and meta.__tostring then return tostring(v) end
  if seen[v] or depth > 2 then return tostring(v) end
  seen[v] = true
  local parts, n = {}, #v
  for i = 1, math.min(n, 20) do parts[#parts + 1] = show(v[i], depth + 1, seen) end
  if n > 20 then parts[#parts + 1] = '...' end
  local keys = {}
  for k in pairs(v) do
    if not (type(k) == 'number' and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do
    if i > 20 then parts[#parts + 1] = '...'; break end
    local ks = is_ident(k) and k or ('[' .. show(k, depth + 1, seen) .. ']')
    parts[#parts + 1] = ks .. ' = ' .. show(v[k], depth + 1, seen)
  end
  seen[v] = nil
  return '{' .. table.concat(parts, ', ') .. '}'
end
M.show = show

-- The completions of text (a dotted or colon path and a partial name).
function M.candidates(text, root)
  root = root or _G
  local path, sep, part = text:match('^(.-)([.:])([%w_]*)$')
  local scope
  if path then
    scope = root
    for name in path:gmatch('[^.:]+') do
      local ok, v = pcall(function() return scope[name] end)
      if not ok or v == nil then return {} end
      scope = v
    end
  else
    scope, part, path, sep = root, text, '', ''
  end
  local out, seen = {}, {}
  local function add(k)
    if is_ident(k) and not seen[k] and k:sub(1, #part) == part then
      seen[k] = true
      out[#out + 1] = path .. sep .. k
    end
  end
  local function add_keys(tbl)
    if type(tbl) ~= 'table' then return end
    for k in pairs(tbl) do add(k) end
  end
  local meta = (type(scope) == 'table' or type(scope) == 'userdata') and getmetatable(scope) or nil
  local tensor = package.loaded['empo.tensor']
  if type(meta) == 'table' and type(meta.__complete) == 'function' then
    local ok, keys = pcall(meta.__complete, scope)
    if ok then for _, k in ipairs(keys) do add(k) end end
  elseif type(scope) == 'table' then
    add_keys(scope)
    if type(meta) == 'table' and type(meta.__index) == 'table' then add_keys(meta.__index) end
  elseif tensor and tensor.is_tensor(scope) then
    add_keys(tensor.methods)
    if sep == '.' then add_keys(tensor.props) end
  elseif type(scope) == 'string' then
    add_keys(string)
  end
  table.sort(out)
  return out
end

return M
