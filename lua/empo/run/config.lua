-- empo.run.config (empo.config) — command-line overrides for a recipe's config table:
-- `key=value` and dotted `sample.n=16`. A value takes the type of the
-- default it replaces (number, boolean, string); unknown keys are errors
-- that list the known ones, so a typo never silently does nothing.
--
--     local cfg = config.apply({ steps = 100, lr = 1e-3, sample = { n = 8 } }, arg)
local M = {}

local function keys_of(t, prefix, out)
  for k, v in pairs(t) do
    if type(v) == 'table' and not getmetatable(v) and next(v) ~= nil and type(next(v)) == 'string' then
      keys_of(v, prefix .. k .. '.', out)
    else
      out[#out + 1] = prefix .. k
    end
  end
  return out
end

local function coerce(old, text, key)
  local to = type(old)
  if to == 'number' then
    local n = tonumber(text)
    if not n then error(string.format('%s: expected a number, got "%s"', key, text), 0) end
    return n
  elseif to == 'boolean' then
    if text == 'true' or text == '1' then return true end
    if text == 'false' or text == '0' then return false end
    error(string.format('%s: expected true or false, got "%s"', key, text), 0)
  elseif old == nil or to == 'string' then
    return text
  end
  error(string.format('%s: cannot be set from the command line (it is a %s)', key, to), 0)
end

-- Applies `key=value` strings (a list, e.g. the script's `arg`) to cfg in
-- place and returns it. `source` prefixes error messages.
function M.apply(cfg, args, source)
  source = source or 'config'
  for _, a in ipairs(args or {}) do
    local key, text = tostring(a):match('^([%w_%.]+)=(.*)$')
    if not key then error(string.format('%s: argument "%s" is not key=value', source, tostring(a)), 2) end
    local t, last = cfg, nil
    for part in key:gmatch('[^%.]+') do
      if last then
        if type(t[last]) ~= 'table' then t = nil break end
        t = t[last]
      end
      last = part
    end
    if t == nil or t[last] == nil then
      local known = keys_of(cfg, '', {})
      table.sort(known)
      error(string.format('%s: unknown setting "%s" (known: %s)', source, key, table.concat(known, ', ')), 2)
    end
    local ok, v = pcall(coerce, t[last], text, key)
    if not ok then error(source .. ': ' .. v, 2) end
    t[last] = v
  end
  return cfg
end

return M
