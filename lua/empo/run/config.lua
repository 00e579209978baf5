-- empo.run.config (empo.config) — settings: what each field may hold, and
-- `key=value` overrides checked against it. One mechanism for recipes,
-- pretraining and the commands, so a typo is refused by name wherever it
-- is written, and every value is checked before any work starts.
--
--     local S = config.spec
--     local schema = S.fields{ steps = S.integer{ min = 0 }, lr = S.number{ min = 0 },
--                              sample = S.fields{ n = S.integer{ min = 1 } } }
--     config.check(cfg, schema, 'recipe')        -- "recipe: sample.n must be an integer >= 1, got 0"
--     config.apply(cfg, { 'sample.n=16' }, 'recipe', schema)
--     config.apply({ steps = 100, lr = 1e-3 }, arg)   -- no schema: each default's type is the rule
--
-- A spec says what a value may be (`describe`, in the words of the
-- messages), whether a value is one (`accepts`), and how text from the
-- command line becomes one (`parse`, nil when it cannot). Messages name the
-- field as the user wrote it (dotted) and never an internal function.
local M = {}

local type, tostring, pairs, ipairs, format = type, tostring, pairs, ipairs, string.format

local Spec = {}
Spec.__index = Spec
local function spec(t) return setmetatable(t, Spec) end
M.spec = {}
local S = M.spec

function M.is_spec(x) return getmetatable(x) == Spec end

-- a value as a message shows it
local function shown(v)
  if type(v) == 'string' then return format('%q', v) end
  if type(v) == 'number' or type(v) == 'boolean' or v == nil then return tostring(v) end
  local mt = getmetatable(v)
  if mt and mt.__tostring then return tostring(v) end
  return 'a ' .. type(v)
end
M.shown = shown

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

local function parse_number(text)
  local t = text:lower()
  if t == 'inf' or t == '+inf' then return math.huge end
  if t == '-inf' then return -math.huge end
  if t == 'nan' then return 0 / 0 end     -- parsed so that the range check refuses it by name
  return tonumber(text)
end

-- range words: ">= 1", "in (0, 1]"
local function range_words(o)
  local lo, hi = o.min or o.above, o.max or o.below
  if lo and hi then
    return format(' in %s%s, %s%s', o.above and '(' or '[', tostring(lo), tostring(hi), o.below and ')' or ']')
  end
  if o.above then return ' > ' .. tostring(o.above) end
  if o.min then return ' >= ' .. tostring(o.min) end
  if o.below then return ' < ' .. tostring(o.below) end
  if o.max then return ' <= ' .. tostring(o.max) end
  return ''
end

local function in_range(o, x)
  return (o.min == nil or x >= o.min) and (o.above == nil or x > o.above) and
         (o.max == nil or x <= o.max) and (o.below == nil or x < o.below)
end

-- A finite number (or whole number with integer = true) in a range:
-- min/max inclusive, above/below exclusive.
function S.number(o)
  o = o or {}
  return spec{ kind = 'number',
    describe = (o.integer and 'an integer' or 'a finite number') .. range_words(o),
    accepts = function(x) return type(x) == 'number' and finite(x) and (not o.integer or x % 1 == 0) and in_range(o, x) end,
    parse = parse_number }
end
function S.integer(o)
  local c = {}
  for k, v in pairs(o or {}) do c[k] = v end
  c.integer = true
  return S.number(c)
end

function S.boolean()
  return spec{ kind = 'boolean', describe = 'true or false',
    accepts = function(x) return type(x) == 'boolean' end,
    parse = function(t) if t == 'true' or t == '1' then return true elseif t == 'false' or t == '0' then return false end end }
end

-- A string; o.one_of lists the allowed ones, o.pattern a Lua pattern it must match (o.what says it in words).
function S.string(o)
  o = o or {}
  local words = 'a string'
  if o.one_of then
    local q = {}
    for i, s in ipairs(o.one_of) do q[i] = format("'%s'", s) end
    words = 'one of ' .. table.concat(q, ', ')
  elseif o.what then
    words = o.what
  end
  local allowed = {}
  for _, s in ipairs(o.one_of or {}) do allowed[s] = true end
  return spec{ kind = 'string', describe = words,
    accepts = function(x)
      return type(x) == 'string' and (not o.one_of or allowed[x] == true) and (not o.pattern or x:find(o.pattern) ~= nil)
    end,
    parse = function(t) return t end }
end

-- Exactly one of the listed values (booleans, numbers, strings).
function S.literal(...)
  local values = { ... }
  local words = {}
  for i, v in ipairs(values) do words[i] = type(v) == 'string' and format("'%s'", v) or tostring(v) end
  local describe = #words > 1 and table.concat(words, ', ', 1, #words - 1) .. ' or ' .. words[#words] or words[1]
  return spec{ kind = 'literal', describe = describe,
    accepts = function(x) for _, v in ipairs(values) do if x == v then return true end end return false end,
    parse = function(t)
      for _, v in ipairs(values) do if tostring(v) == t then return v end end
    end }
end

local function callable(x)
  if type(x) == 'function' then return true end
  local mt = type(x) == 'table' and getmetatable(x)
  return mt and mt.__call ~= nil or false
end
M.callable = callable

-- A function, or a callable table (a configured piece); what = its role in words.
function S.callable(what)
  return spec{ kind = 'callable', describe = what or 'a function', accepts = callable }
end

-- A value that satisfies pred (a Lua value no command line can write).
function S.value(what, pred)
  return spec{ kind = 'value', describe = what, accepts = pred }
end

-- Any of the specs; command-line text is tried on each in turn.
function S.either(...)
  local specs = { ... }
  local words = {}
  for i, s in ipairs(specs) do words[i] = s.describe end
  return spec{ kind = 'either', specs = specs, describe = table.concat(words, ', or '),
    accepts = function(x) for _, s in ipairs(specs) do if s.accepts(x) then return true end end return false end,
    parse = function(t)
      -- a string takes any text, so the other specs go first: eval=false is the literal, not a file named false
      for pass = 1, 2 do
        for _, s in ipairs(specs) do
          if (s.kind == 'string') == (pass == 2) and s.parse then
            local v = s.parse(t)
            if v ~= nil and s.accepts(v) then return v end
          end
        end
      end
      for _, s in ipairs(specs) do            -- text of the right type out of range: its own message names it
        local v = s.parse and s.parse(t)
        if v ~= nil then return v end
      end
    end }
end

-- Nothing, or a value of spec s.
function S.optional(s)
  return spec{ kind = 'optional', inner = s, describe = s.describe .. ' (or nothing)', optional = true,
    accepts = function(x) return x == nil or s.accepts(x) end, parse = s.parse, fields = s.fields }
end

-- A table of named fields, each with its spec; keys not in fields are
-- refused by name. A plain table with other keys, or o.open = true, lets
-- unknown keys through (a table whose contents are the user's).
function S.fields(fields, o)
  o = o or {}
  return spec{ kind = 'fields', fields = fields, open = o.open, describe = o.what or 'a table of settings',
    accepts = function(x) return type(x) == 'table' end }
end

-- ---- checking ----

-- The closest known name to a misspelt one (edit distance <= 2), for "did you mean".
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

local function known_names(fields)
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  return names
end

local function suggestion(name, fields)
  local best, bd = nil, 3
  for _, k in ipairs(known_names(fields)) do
    local d = distance(name:lower(), k:lower())
    if d < bd then best, bd = k, d end
  end
  return best
end

local function unknown(source, path, name, fields)
  local full = path .. name
  local near = suggestion(name, fields)
  local hint = near and format(" (did you mean '%s%s'?)", path, near) or
               format(' (known: %s)', table.concat(known_names(fields), ', '))
  return format("%s: unknown setting '%s'%s", source, full, hint)
end

-- The value at a dotted key's place: the table that holds it, its last
-- name and its spec; or nil and the message for an unknown key.
local function place(cfg, schema, key, source)
  local t, s, path = cfg, schema, ''
  local parts = {}
  for part in key:gmatch('[^%.]+') do parts[#parts + 1] = part end
  for i, part in ipairs(parts) do
    local fields = s and s.fields
    local child = fields and fields[part]
    if not child and not (s and s.open) then return nil, unknown(source, path, part, fields or {}) end
    if i == #parts then return t, part, child end
    if type(t[part]) ~= 'table' then   -- (a boolean table-or-switch, like a recipe's lora, becomes a table)
      if (t[part] ~= nil and type(t[part]) ~= 'boolean') or not (child and child.fields) then
        return nil, format("%s: setting '%s' is not a table (no '%s' under it)", source, path .. part, parts[i + 1])
      end
      t[part] = {}
    end
    t, s, path = t[part], child, path .. part .. '.'
  end
  return nil, format('%s: an empty setting name', source)
end

-- Sets a Lua value at a dotted key of cfg ('sample.n'), its name checked
-- against schema (its value is check's, with the whole table).
function M.set(cfg, key, value, source, schema)
  local t, last = place(cfg, schema, key, source or 'config')
  if not t then error(last, 0) end
  t[last] = value
  return cfg
end

-- Checks cfg against schema (a S.fields spec): every key known, every
-- value accepted. Raises one message naming the first problem: the
-- field as a dotted name, what it must be, and what it holds. With
-- names_only, only the names are checked (values come later, whole).
function M.check(cfg, schema, source, path, names_only)
  source, path = source or 'config', path or ''
  local names = {}
  for k in pairs(cfg) do
    if type(k) ~= 'string' then error(format('%s: %s holds a list item (%s) where named settings belong', source,
                                             path == '' and 'the table' or path:sub(1, -2), shown(cfg[k])), 0) end
    names[#names + 1] = k
  end
  table.sort(names)
  for _, k in ipairs(names) do
    local v, s = cfg[k], schema.fields[k]
    if not s then
      if not schema.open then error(unknown(source, path, k, schema.fields), 0) end
    elseif s.fields and type(v) == 'table' and getmetatable(v) == nil then
      M.check(v, s, source, path .. k .. '.', names_only)
    elseif not names_only and not s.accepts(v) then
      error(format('%s: %s must be %s, got %s', source, path .. k, s.describe, shown(v)), 0)
    end
  end
  if names_only then return cfg end
  for k, s in pairs(schema.fields) do            -- fields that must have a value
    if cfg[k] == nil and not s.optional then
      error(format('%s: %s is required (%s)', source, path .. k, s.describe), 0)
    end
  end
  return cfg
end

-- The spec a default value implies (no schema given): its type.
local function spec_of_default(v)
  local tv = type(v)
  if tv == 'number' then return spec{ kind = 'number', describe = 'a number', parse = parse_number,
                                      accepts = function(x) return type(x) == 'number' end } end
  if tv == 'boolean' then return S.boolean() end
  if tv == 'string' then return S.string() end
  if tv == 'table' and not getmetatable(v) then
    local f = {}
    for k, x in pairs(v) do f[k] = spec_of_default(x) end
    return S.fields(f)
  end
  return spec{ kind = 'value', describe = 'a ' .. tv, accepts = function(x) return type(x) == tv end }
end
M.schema_of = spec_of_default

-- Applies `key=value` strings (a list, e.g. the script's `arg`) to cfg in
-- place and returns it. Without a schema each default's type is the rule
-- and only keys cfg already has are known. Errors name source and key.
function M.apply(cfg, args, source, schema)
  source = source or 'config'
  schema = schema or spec_of_default(cfg)
  for _, a in ipairs(args or {}) do
    local key, text = tostring(a):match('^([%w_%.]+)=(.*)$')
    if not key then error(format('%s: argument "%s" is not key=value', source, tostring(a)), 0) end
    local t, last, s = place(cfg, schema, key, source)
    if not t then error(last, 0) end
    if s == nil then                                  -- a key of an open table: text as it is
      t[last] = text
    else
      local v = s.parse and s.parse(text)
      if v == nil then
        error(format('%s: %s must be %s%s, got "%s"', source, key, s.describe,
                     s.parse and '' or ' (it cannot be set from the command line)', text), 0)
      end
      if not s.accepts(v) then error(format('%s: %s must be %s, got %s', source, key, s.describe, shown(v)), 0) end
      t[last] = v
    end
  end
  return cfg
end

-- Whether an argument looks like a setting (`key=value`, key a name).
function M.is_setting(a) return type(a) == 'string' and a:match('^[%a_][%w_%.]*=') ~= nil end

return M
