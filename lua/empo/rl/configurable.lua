-- empo.rl.configurable — the one protocol of EMPO's built-in pieces
-- (rewards, filters, advantages, losses): a value that computes when
-- called with data and returns a configured copy when called with an
-- options table (or with nothing), prints as its name, and refuses an
-- unknown option by name.
--
--     local r = configurable.new('my.reward', { scale = 1 }, function(opts, group) ... end)
--     r(group)                 -- computes, with opts = { scale = 1 }
--     r{ scale = 2 }(group)    -- a copy with other options; unknown keys are errors
--     r()                      -- a copy with the same options
--
-- Also NIL, the default of an option that is "not set", read with option().
-- (empo.rl.configurable is this module's new.) Data is told from options by
-- its shape: by default a group has ids or answers and rewards are an
-- array; a piece whose data looks otherwise says so (o.is_data).
local M = {}

local type, error, pairs, tostring = type, error, pairs, tostring

local Configurable = {}

-- A data call (group, rewards array) rather than an options table?
local function is_options(x)
  return type(x) == 'table' and getmetatable(x) == nil and x[1] == nil and x.ids == nil and x.answers == nil
end

-- A value named `name` computing fn(opts, ...) when called with data, and
-- returning a copy with changed options when called with an options table
-- (only the keys of `defaults` are accepted). o (optional):
--   is_data(x)        whether a call's first argument is data (default: not an options table)
--   check(name, opts) validates the merged options, returns them (raise naming the option)
--   kind              what the piece is ('loss', ...): the value's .kind
--   build(obj)        called on each new value (to attach what else it offers)
function M.new(name, defaults, fn, o)
  o = o or {}
  local options = o.check and o.check(name, defaults) or defaults
  local obj = { name = name, options = options, kind = o.kind }
  setmetatable(obj, {
    __index = Configurable,
    __tostring = function() return name end,
    __call = function(self, x, ...)
      local data
      if o.is_data then data = o.is_data(x) else data = not (select('#', ...) == 0 and is_options(x)) end
      if x == nil and select('#', ...) == 0 then data = false end
      if not data then
        local opts = {}
        for k, v in pairs(self.options) do opts[k] = v end
        for k, v in pairs(x or {}) do
          if defaults[k] == nil then
            local known = {}
            for key in pairs(defaults) do known[#known + 1] = key end
            table.sort(known)
            error(string.format("%s: unknown option '%s' (options: %s)", name, tostring(k), table.concat(known, ', ')), 2)
          end
          opts[k] = v
        end
        return M.new(name, o.check and o.check(name, opts) or opts, fn, o)
      end
      return fn(self.options, x, ...)
    end,
  })
  if o.build then o.build(obj) end
  return obj
end

-- Whether x is a configured piece (of kind `kind`, when given).
function M.is(x, kind)
  local mt = type(x) == 'table' and getmetatable(x)
  return mt and mt.__index == Configurable and (kind == nil or x.kind == kind) or false
end

-- An option whose default is "not set" (tables cannot hold nil): read it with option().
M.NIL = setmetatable({}, { __tostring = function() return 'nil' end })
function M.option(opts, key)
  local v = opts[key]
  if v == M.NIL then return nil end
  return v
end

-- A configured piece as plain data, { name = 'empo.filter.entropy',
-- options = { low = 0, high = 1.87 } }, for the run directory (a resume,
-- `empo rescore`); nil when x is not a piece or an option is not a plain
-- value (a function, a table).
function M.describe(x)
  if not M.is(x) then return nil end
  local opts = {}
  for k, v in pairs(x.options) do
    local tv = type(v)
    if v ~= M.NIL then
      if tv ~= 'number' and tv ~= 'string' and tv ~= 'boolean' then return nil end
      opts[k] = v
    end
  end
  return { name = x.name, options = opts }
end

-- A value as a person reads it: a piece as its name and the options that
-- differ from the library's defaults (empo.filter.confidence{low=0.4}), a
-- number in 6 digits.
function M.show(v)
  local function num(x) return type(x) == 'number' and string.format('%.6g', x) or tostring(x) end
  local piece = M.describe(v)
  if not piece then return num(v) end
  local ok, base = pcall(M.rebuild, { name = piece.name })
  local defaults = ok and base.options or {}
  local opts = {}
  for k, x in pairs(piece.options) do
    if defaults[k] ~= x then opts[#opts + 1] = k .. '=' .. num(x) end
  end
  table.sort(opts)
  return piece.name .. (#opts > 0 and '{' .. table.concat(opts, ', ') .. '}' or '')
end

-- The piece a description names, configured with its options: its name
-- is a path under the library ('empo.reward.majority'). Raises naming
-- what is missing.
function M.rebuild(desc)
  if type(desc) ~= 'table' or type(desc.name) ~= 'string' then error('a piece description needs a name', 2) end
  local v = nil
  for part in desc.name:gmatch('[^.]+') do
    if v == nil then v = part == 'empo' and require('empo') or nil
    else v = type(v) == 'table' and v[part] or nil end
    if v == nil then break end
  end
  if not M.is(v) then error(string.format("'%s' is not a piece of the library", desc.name), 0) end
  return v(desc.options or {})
end

return M
