-- tests/rl/fuzz_settings.lua — the Lua side of fuzz_settings.c: returns
-- the function that checks one fuzz input. A user error is fine (that is
-- what malformed input should give); the function raises only when an
-- invariant breaks: a resolved recipe that fails its own schema, a record
-- whose question is not a non-empty UTF-8 string, or a refusal that is a
-- Lua runtime error or names a library file instead of the user's field.
local empo = require 'empo'
local config = require 'empo.run.config'
local recipe = require 'empo.rl.recipe'
local data = require 'empo.train.data'

local BASE = { model = 'model-dir', data = 'train.jsonl', reward = empo.reward.random, sample = { n = 2 } }

-- A refusal is a user message: it starts with the name of what was wrong
-- (prefix: 'command line: ', 'fuzz: ', 'f.jsonl:1') — a Lua runtime error
-- starts with the library file and line that raised it instead. (The
-- message may echo the input, so nothing inside it is looked at.)
local function user_error(err, what, prefixes)
  err = tostring(err)
  for _, p in ipairs(prefixes) do
    if err:sub(1, #p) == p then return end
  end
  error(string.format('%s: not a user message: %s', what, err), 0)
end

-- Under libFuzzer (fuzz_coverage_hit defined by the harness): each line
-- run, by file and line, is a coverage counter.
if fuzz_coverage_hit then
  local getinfo, hit, ids = debug.getinfo, fuzz_coverage_hit, {}
  debug.sethook(function(_, line)
    local src = getinfo(2, 'S').source
    local id = ids[src]
    if not id then id = #src * 7919 + src:byte(-5) * 131; ids[src] = id end
    hit(id * 977 + line)
  end, 'l')
end

local calls = 0
return function(bytes)
  calls = calls + 1
  if calls % 256 == 0 then collectgarbage() end
  if #bytes == 0 then return end
  local body = bytes:sub(2)
  if bytes:byte(1) % 2 == 0 then
    local args = {}
    for line in (body .. '\n'):gmatch('([^\n]*)\n') do
      if #args < 8 then args[#args + 1] = line end
    end
    local ok, r = pcall(recipe.resolve, BASE, args, 'fuzz')
    if not ok then return user_error(r, 'recipe overrides', { 'command line: ', 'fuzz: ' }) end
    local fine, err = pcall(config.check, r, recipe.SCHEMA, 'fuzz')
    if not fine then error('a resolved recipe fails its schema: ' .. tostring(err), 0) end
    if r.keep < 1 or r.sample.n < 1 or r.prompts_per_step < 1 or r.optim.lr ~= r.optim.lr then
      error('a resolved recipe holds a value its checks refuse', 0)
    end
  else
    local golds = { 'answer', 'boxed', 'gsm8k' }
    local rec, err = data.record(body, 'f.jsonl:1', { gold = golds[math.floor(bytes:byte(1) / 4) % 3 + 1],
                                                     answers = bytes:byte(1) % 4 == 1 })
    if not rec then return user_error(err, 'data line', { 'f.jsonl:1: ', 'f.jsonl:1 ' }) end
    if type(rec.question) ~= 'string' or not rec.question:find('%S') or data.utf8_invalid_at(rec.question) then
      error('a record whose question is not non-empty UTF-8 text', 0)
    end
    if rec.answer ~= nil and (type(rec.answer) ~= 'string' or data.utf8_invalid_at(rec.answer)) then
      error('a record whose answer is not UTF-8 text', 0)
    end
  end
end
