-- empo.rl.attach_session — one attached client's Lua session inside a
-- running trainer (`empo attach`, empo.rl.attach_server): its own
-- globals, the trainer as `t`, printing sent back to the client, and each
-- chunk run under a time limit so that a loop that never ends stops the
-- chunk, not the run.
--
-- `t` is a view of the trainer: reading passes through (t.last,
-- t.history, t.step_count, t:eval()); t.recipe's fields are changed
-- through Trainer:change (empo.rl.live: checked as a recipe field is,
-- recorded, replayed by a resume); t:pause(), t:resume(), t:save(),
-- t:stop() control the run. The same session, in replay mode, rebuilds a
-- Lua value that a recorded change made: the chunks run again with
-- printing off, the controls inert, and recipe assignments captured
-- instead of applied.
local shown = require('empo.run.config').shown
local clock = require('empo.run.log').clock

local type, error, format, pairs, ipairs, tostring, select = type, error, string.format, pairs, ipairs, tostring, select

local M = {}

-- What a chunk may not call: the loop's own steps.
local LOOP_ONLY = { step = true, run = true, close = true, open_run = true }

-- The recipe's tables of settings, reached through t.recipe.<name>.<field>
local SECTIONS = { sample = true, optim = true, guard = true, dist = true, rollouts = true, attach = true }

local function sorted_keys(t, extra)
  local out, seen = {}, {}
  for k in pairs(t) do if type(k) == 'string' and not seen[k] then seen[k] = true; out[#out + 1] = k end end
  for _, k in ipairs(extra or {}) do if not seen[k] then seen[k] = true; out[#out + 1] = k end end
  table.sort(out)
  return out
end

-- t.recipe (prefix '') or t.recipe.<section> (prefix 'optim.'): reads
-- pass through, assignments go to set(field, value).
local function recipe_view(recipe, prefix, set)
  return setmetatable({}, {
    __index = function(_, k)
      local v = recipe[k]
      if prefix == '' and SECTIONS[k] and type(v) == 'table' then return recipe_view(v, k .. '.', set) end
      return v
    end,
    __newindex = function(_, k, v)
      if prefix == '' and SECTIONS[k] and type(v) == 'table' and getmetatable(v) == nil then
        for key, x in pairs(v) do set(k .. '.' .. tostring(key), x) end   -- t.recipe.optim = { lr = ... }
      else
        set(prefix .. tostring(k), v)
      end
    end,
    __pairs = function() return pairs(recipe) end,
    __tostring = function() return format('the recipe%s (t.recipe%s)', prefix == '' and '' or ("'s " .. prefix:sub(1, -2)),
                                          prefix == '' and '' or '.' .. prefix:sub(1, -2)) end,
    __complete = function() return sorted_keys(recipe) end,
  })
end

local Session = {}
Session.__index = Session

-- A session on trainer. o: print(text) (where printed text goes),
-- replay (true: the replay mode above), limit (seconds a chunk may run,
-- default 10).
function M.new(trainer, o)
  o = o or {}
  local self = setmetatable({ trainer = trainer, replay = o.replay, limit = o.limit or 10, defining = {},
                              captured = {}, out = o.print or function() end }, Session)
  local function set(field, value)
    self.changed = true
    if self.replay then self.captured[field] = value; return end
    trainer:change(field, value, { chunks = self:program() })
  end
  local controls = {
    pause = function() if not self.replay then trainer.paused = true end; return 'paused after step ' .. trainer.step_count end,
    resume = function() trainer.paused = false; return 'running' end,
    save = function() if self.replay then return nil end; return trainer:checkpoint() end,
    stop = function()
      if not self.replay then trainer.stop_asked, trainer.paused = true, false end
      return 'the run stops: a checkpoint, then the process ends'
    end,
  }
  local recipe = recipe_view(trainer.recipe, '', set)
  self.t = setmetatable({}, {
    __index = function(_, k)
      if controls[k] then return function(_, ...) return controls[k](...) end end
      if k == 'recipe' then return recipe end
      if LOOP_ONLY[k] then
        return function() error(format('t:%s() belongs to the run itself: a chunk runs between its steps', k), 2) end
      end
      local v = trainer[k]
      if type(v) == 'function' then return function(_, ...) return v(trainer, ...) end end
      return v
    end,
    __newindex = function(_, k)
      error(format("t.%s cannot be set: change the recipe's fields (t.recipe.filter = ..., t.recipe.optim.lr = ...)",
                   tostring(k)), 2)
    end,
    __tostring = function() return format('the trainer (step %d of %d)', trainer.step_count, trainer.recipe.steps) end,
    __complete = function()
      local keys = { 'recipe', 'last', 'history', 'step_count', 'pause', 'resume', 'save', 'stop' }
      for k in pairs(getmetatable(trainer).__index) do if not LOOP_ONLY[k] then keys[#keys + 1] = k end end
      return sorted_keys({}, keys)
    end,
  })
  local function say(...)
    local n, parts = select('#', ...), {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    self.out(table.concat(parts, '\t') .. '\n')
  end
  -- the session's globals: its own, over the real ones (read only through)
  self.env = setmetatable({ t = self.t, print = say, empo = require('empo') }, {
    __index = _G,
    __newindex = function(env, k, v) self.assigned = true; rawset(env, k, v) end,
  })
  return self
end

-- The chunks that built this session's state so far: those that set a
-- global or changed the recipe (a recorded change replays them).
function Session:program()
  local out = {}
  for i, src in ipairs(self.defining) do out[i] = src end
  if self.current then out[#out + 1] = self.current end
  return out
end

-- Compiles src as an expression, else as statements; nil, message (or
-- 'incomplete') when neither compiles.
function M.compile(src, env)
  local f, err1 = load('return ' .. src, '=attach', 't', env)
  if f then return f end
  local f2, err = load(src, '=attach', 't', env)
  if f2 then return f2 end
  if err:find("<eof>'?$") or err1:find("<eof>'?$") then return nil, 'incomplete' end
  return nil, err
end

-- The chunk's error and the traceback of its own frames.
local function handler(e)
  local msg = type(e) == 'string' and e or shown(e)
  local keep = {}
  for line in debug.traceback('', 2):gmatch('[^\n]+') do
    if line:find("in function 'xpcall'", 1, true) then break end
    if line:find('attach:', 1, true) then keep[#keep + 1] = line end
  end
  return #keep > 1 and msg .. '\nstack traceback:\n' .. table.concat(keep, '\n') or msg   -- (one frame: the line says it)
end

-- Runs chunk src. Returns true and the values, or false and the message.
-- A chunk past the time limit is stopped by a hook (its loops run
-- interpreted, so the hook sees them).
function Session:run(src)
  local f, err = M.compile(src, self.env)
  if not f then return false, err == 'incomplete' and 'the chunk is incomplete (unexpected end)' or err end
  jit.off(f, true)
  self.current, self.assigned, self.changed = src, false, false
  local deadline, limit = clock() + self.limit, self.limit
  debug.sethook(function()
    if clock() > deadline then
      debug.sethook()
      error(format('the chunk was stopped after %g s (the attach time limit: recipe field attach.seconds)', limit), 2)
    end
  end, '', 1000)
  local function finish(...)
    debug.sethook()
    self.current = nil
    if self.assigned or self.changed then self.defining[#self.defining + 1] = src end
    return ...
  end
  return finish(xpcall(f, handler))
end

-- The value that the recorded chunks gave `field` (replay mode).
function M.replay(trainer, chunks, field, limit)
  local s = M.new(trainer, { replay = true, limit = limit })
  for _, src in ipairs(chunks) do s:run(src) end    -- (an error after the assignment happened live too)
  return s.captured[field]
end

-- Completions of text in the session (names, fields, methods).
function Session:complete(text)
  return require('empo.run.console').candidates(text, self.env)
end

return M
