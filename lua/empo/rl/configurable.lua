-- empo.rl.configurable — the protocol of EMPO's built-in pieces (rewards,
-- filters, advantages): a value that computes when called with data and
-- returns a configured copy when called with an options table.
--
--     local r = configurable.new('my.reward', { scale = 1 }, function(opts, group) ... end)
--     r(group)                 -- computes, with opts = { scale = 1 }
--     r{ scale = 2 }(group)    -- a copy with other options; unknown keys are errors
--
-- Also NIL, the default of an option that is "not set", read with option().
-- (empo.rl.configurable is this module's new.) Data is told from options by
-- its shape only (a group has ids or answers, rewards are an array); what a
-- group holds is empo.rl's.
local M = {}

local type, error, pairs, tostring = type, error, pairs, tostring

local Configurable = {}

-- A data call (group, rewards array) rather than an options table?
local function is_options(x)
  return type(x) == 'table' and getmetatable(x) == nil and x[1] == nil and x.ids == nil and x.answers == nil
end

-- A value named `name` computing fn(opts, ...) when called with data, and
-- returning a copy with changed options when called with an options table
-- (only the keys of `defaults` are accepted).
function M.new(name, defaults, fn)
  local obj = { name = name, options = defaults }
  return setmetatable(obj, {
    __index = Configurable,
    __tostring = function() return name end,
    __call = function(self, x, ...)
      if select('#', ...) == 0 and is_options(x) then
        local opts = {}
        for k, v in pairs(self.options) do opts[k] = v end
        for k, v in pairs(x) do
          if defaults[k] == nil then
            local known = {}
            for key in pairs(defaults) do known[#known + 1] = key end
            table.sort(known)
            error(string.format("%s: unknown option '%s' (options: %s)", name, tostring(k), table.concat(known, ', ')), 2)
          end
          opts[k] = v
        end
        return M.new(name, opts, fn)
      end
      return fn(self.options, x, ...)
    end,
  })
end

-- An option whose default is "not set" (tables cannot hold nil): read it with option().
M.NIL = setmetatable({}, { __tostring = function() return 'nil' end })
function M.option(opts, key)
  local v = opts[key]
  if v == M.NIL then return nil end
  return v
end

return M
