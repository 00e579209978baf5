-- empo.rl.contract — the pieces a researcher plugs in (cluster rules,
-- filters, rewards, advantages) held to what they promise: a rule and a
-- filter return a boolean, a reward and an advantage one finite number per
-- completion. A piece that breaks its promise stops the run with a message
-- naming the piece by where it was written (file:line of the function's
-- definition, or a built-in's name) and the value it returned — never a
-- silent "truthy" verdict (a rule returning 0 would put every answer in
-- one cluster, and grade every answer right).
local format, type, tostring = string.format, type, tostring

local M = {}

-- A piece as a message names it.
function M.describe(fn)
  if type(fn) == 'function' then
    local info = debug.getinfo(fn, 'S')
    if info and info.what == 'Lua' then
      local src = info.source:sub(1, 1) == '@' and info.source:sub(2) or info.short_src
      return format('the function defined at %s:%d', src, info.linedefined)
    end
    return 'a built-in function'
  end
  local mt = type(fn) == 'table' and getmetatable(fn)
  if mt and mt.__tostring then return tostring(fn) end
  if type(fn) == 'table' and type(fn.equal) == 'function' then return M.describe(fn.equal) end
  return 'a ' .. type(fn)
end

local function shown(v)
  if type(v) == 'string' then return format('the string %q', v) end
  if v == nil then return 'nothing' end
  if type(v) == 'table' then return 'a table' end
  return tostring(v)
end

-- value, checked to be a boolean: role says what the piece is ('cluster rule').
function M.boolean(role, fn, value)
  if value ~= true and value ~= false then
    error(format('%s %s returned %s; it must return true or false', role, M.describe(fn), shown(value)), 0)
  end
  return value
end

-- fn(...) wrapped so that every result is checked to be a boolean.
function M.boolean_fn(role, fn)
  return function(...) return M.boolean(role, fn, fn(...)) end
end

-- x, checked to be n finite numbers (a reward's or advantage's result).
function M.numbers(role, fn, x, n)
  if type(x) ~= 'table' or #x ~= n then
    error(format('%s %s must return %d numbers (one per completion), got %s', role, M.describe(fn), n,
                 type(x) == 'table' and (#x .. ' values') or shown(x)), 0)
  end
  for i = 1, n do
    local v = x[i]
    if type(v) ~= 'number' or v ~= v or v == math.huge or v == -math.huge then
      error(format('%s %s returned %s for completion %d; it must be a finite number', role, M.describe(fn),
                   shown(v), i), 0)
    end
  end
  return x
end

return M
