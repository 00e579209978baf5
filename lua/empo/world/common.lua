-- empo.world.common — what every world shares: its draws (one Philox
-- stream, so a seed names the same problems on every machine) and its
-- JSONL files.
--
--     local w = common.new(World, DEFAULTS, opts, 'empo.world.x')   -- defaults, options checked, w.g
--     common.draws(World)          -- World:u(), :int(lo, hi), :pick(list), :chance(p) over self.g
--     common.write_jsonl('data/x/test.jsonl', records)
local empo = require 'empo'

local floor = math.floor
local M = {}

-- A world of metatable World: the defaults with the options o set (an
-- option that is not a default, nor named in `extra`, is refused naming
-- the module), and its generator self.g = Philox(seed, o.stream).
function M.new(World, defaults, o, module, extra)
  o = o or {}
  local w = setmetatable({}, World)
  for k, v in pairs(defaults) do w[k] = v end
  for k, v in pairs(o) do
    if defaults[k] == nil and k ~= 'stream' and not (extra and extra[k]) then
      error(string.format("%s: unknown option '%s'", module, tostring(k)), 3)
    end
    w[k] = v
  end
  w.g = empo.Generator(w.seed, o.stream or 0)
  return w
end

-- Adds the draw methods to a world's metatable; each world holds its
-- generator as self.g (empo.Generator(seed, stream)).
function M.draws(World)
  function World:u() return self.g:uniform() end
  function World:int(lo, hi) return lo + floor(self:u() * (hi - lo + 1)) end
  function World:pick(list) return list[self:int(1, #list)] end
  function World:chance(p) return self:u() < p end
  return World
end

-- Writes records as JSONL (one compact object a line), atomically.
function M.write_jsonl(path, records)
  local lines = {}
  for i, r in ipairs(records) do lines[i] = empo.json.encode(r, { compact = true }) end
  assert(empo.fs.write_atomic(path, table.concat(lines, '\n') .. '\n'))
end

return M
