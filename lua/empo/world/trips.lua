-- empo.world.trips — a free-form world: seeded word problems about trips
-- whose answers are short phrases with several correct surface forms
-- (issue 30: the paper's natural-reasoning half, where answers are
-- clustered by meaning, not by string). Two kinds of question:
--
--   direction: a walk of 2-4 legs along the four cardinal directions;
--     where the walker ends up, seen from the start, is one of 8 compass
--     directions (by the signs of the net north and east distances):
--     "north-east", "northeast", "NE", "to the north-east", ...
--   duration: a trip of 2-4 legs, each a whole number of half hours; how
--     long the whole trip takes: "150 minutes", "2.5 hours",
--     "two and a half hours", "2 hours 30 minutes", ...
--
-- A meaning is a canonical string ('dir:NE', 'min:150'); every surface
-- form of every meaning is listed by M.forms(meaning), and M.meaning(text)
-- reads any of them back (the world's equivalence rules: what the oracle
-- clustering and the grading use). No two meanings share a form.
--
--     local trips = require 'empo.world.trips'
--     local w = trips.new{ seed = 1 }
--     local p = w:problem()      -- { kind, question, answer, meaning, steps, key }
--     w:solution(p)              -- a worked solution as the corpus writes it (see below), and its answer
--     trips.meaning('to the North-East')   --> 'dir:NE'
--
-- How the corpus is imperfect (why label-free RL has something to find):
-- a share `guess` (0.45) of solutions skip the reasoning and name a random
-- answer ("Roughly west. The answer is W."), in one phrasing, so that its
-- first word is the most likely next token and greedy decoding guesses;
-- the rest compute it in one of three phrasings, each rarer than the
-- guess. Every answer, guessed or computed, is written in a surface form
-- drawn uniformly from its meaning's forms: among a question's samples
-- the right meaning is the plurality, while no one surface form is.
local empo = require 'empo'
local common = require 'empo.world.common'

local format, floor, concat = string.format, math.floor, table.concat

local M = {}

M.SYSTEM = 'Answer the question. End with "The answer is X."'

-- ---- meanings and their surface forms ----

local WORDS = { N = 'north', S = 'south', E = 'east', W = 'west' }
M.DIRECTIONS = { 'N', 'NE', 'E', 'SE', 'S', 'SW', 'W', 'NW' }
local NUMBER_WORDS = { 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten' }

local function cap(s) return s:sub(1, 1):upper() .. s:sub(2) end

-- The forms of each kind, as templates over a meaning: held = true marks
-- the forms held out of the verifier's training pairs (its accuracy is
-- measured on pairs that use them); a held-out form's pattern names its
-- template ('N h 30 min'), for counting a verifier's errors by form.
local function direction_forms(d)
  local out = {}
  local function add(s, pattern) out[#out + 1] = { text = s, held = pattern ~= nil, pattern = pattern } end
  if #d == 1 then
    local w = WORDS[d]
    add(w); add(cap(w)); add(d); add('to the ' .. w); add('due ' .. w, 'due X'); add(w .. 'ward', 'Xward')
  else
    local a, b = WORDS[d:sub(1, 1)], WORDS[d:sub(2, 2)]
    add(a .. '-' .. b); add(a .. b); add(a .. ' ' .. b); add(d); add('to the ' .. a .. '-' .. b)
    add(cap(a) .. '-' .. cap(b)); add(cap(a .. b)); add(d:sub(1, 1) .. '.' .. d:sub(2, 2) .. '.', 'X.Y.')
    add('toward the ' .. a .. b, 'toward the XY')
  end
  return out
end

local function duration_forms(m)
  local out = {}
  local function add(s, pattern) out[#out + 1] = { text = s, held = pattern ~= nil, pattern = pattern } end
  local h, half = floor(m / 60), m % 60 == 30
  add(format('%d minutes', m)); add(format('%d min', m))
  if m == 30 then
    add('half an hour'); add('0.5 hours'); add('30 mins', '30 mins')
  elseif not half then
    add(format('%d hour%s', h, h == 1 and '' or 's')); add(format('%s hour%s', NUMBER_WORDS[h], h == 1 and '' or 's'))
    add(format('%d h', h)); add(format('%d hr%s', h, h == 1 and '' or 's'), 'N hr(s)')
  else
    add(format('%d.5 hours', h)); add(format('%s and a half hours', NUMBER_WORDS[h]))
    add(format('%d hour%s 30 minutes', h, h == 1 and '' or 's')); add(format('%d h 30 min', h), 'N h 30 min')
  end
  return out
end

M.MAX_MINUTES = 600

-- Every meaning of the world.
function M.meanings()
  local out = {}
  for _, d in ipairs(M.DIRECTIONS) do out[#out + 1] = 'dir:' .. d end
  for m = 30, M.MAX_MINUTES, 30 do out[#out + 1] = 'min:' .. m end
  return out
end

-- The surface forms of a meaning: { { text, held, pattern }, ... } (held:
-- kept out of the verifier's training pairs; pattern: a held-out form's
-- template, e.g. 'N h 30 min').

-- The pattern of a held-out form's text, or nil (a training form, or no form).
function M.held_pattern(text)
  local m = M.meaning(text)
  if not m then return nil end
  for _, f in ipairs(M.forms(m)) do if f.text == text then return f.pattern end end
  return nil
end
function M.forms(meaning)
  local kind, v = meaning:match('^(%a+):(%w+)$')
  if kind == 'dir' then return direction_forms(v) end
  if kind == 'min' then return duration_forms(tonumber(v)) end
  error('empo.world.trips: not a meaning: ' .. tostring(meaning), 2)
end

-- How a surface form is looked up: case, surrounding spaces and a final
-- period do not matter ("North-East." is "north-east").
local function key_of(text)
  return (text:lower():gsub('^%s+', ''):gsub('[%s.]+$', ''):gsub('%s+', ' '))
end

local by_form
local function index()
  if by_form then return by_form end
  by_form = {}
  for _, meaning in ipairs(M.meanings()) do
    for _, f in ipairs(M.forms(meaning)) do
      local k = key_of(f.text)
      if by_form[k] and by_form[k] ~= meaning then
        error(format('empo.world.trips: "%s" is a form of both %s and %s', f.text, by_form[k], meaning))
      end
      by_form[k] = meaning
    end
  end
  return by_form
end

-- The meaning of an answer in any of its surface forms, or nil.
function M.meaning(text)
  if type(text) ~= 'string' then return nil end
  return index()[key_of(text)]
end

-- The oracle clustering: two answers are equal when they have one meaning
-- (an answer with none is its own).
M.oracle = empo.cluster.clusterer('trips.meaning', function(a, b)
  local ma = M.meaning(a)
  return ma ~= nil and ma == M.meaning(b)
end)

-- ---- the world ----

M.DEFAULTS = { seed = 1, guess = 0.45, direction = 0.5 }

local World = {}
World.__index = World

function M.new(o) return common.new(World, M.DEFAULTS, o, 'empo.world.trips') end

common.draws(World)                  -- World:u(), :int(), :pick(), :chance()

local NAMES = { 'Ava', 'Liam', 'Mia', 'Noah', 'Zoe', 'Omar', 'Lena', 'Ivan', 'Nora', 'Ravi', 'Emma', 'Leo', 'Sara',
                'Tom', 'Yuki', 'Ben', 'Aisha', 'Hugo', 'Ines', 'Karl' }
local MOVES = { 'walks', 'rides', 'runs', 'drives' }
local UNITS = { 'blocks', 'miles', 'steps', 'kilometres' }
local MEANS = { 'by bus', 'by train', 'by ferry', 'by bike', 'by taxi', 'on foot' }

-- The compass direction of a net displacement (east dx, north dy).
function M.direction_of(dx, dy)
  local ns = dy > 0 and 'N' or (dy < 0 and 'S' or '')
  local ew = dx > 0 and 'E' or (dx < 0 and 'W' or '')
  return ns .. ew
end

local function minutes_text(m)
  local h, r = floor(m / 60), m % 60
  if h == 0 then return format('%d minutes', r) end
  if r == 0 then return format('%d hour%s', h, h == 1 and '' or 's') end
  return format('%d hour%s %d minutes', h, h == 1 and '' or 's', r)
end

function World:direction_problem()
  local who, unit = self:pick(NAMES), self:pick(UNITS)
  local legs, dx, dy, parts, key = self:int(2, 4), 0, 0, {}, {}
  repeat
    dx, dy, parts, key = 0, 0, {}, {}
    for i = 1, legs do
      local d, k = self:pick({ 'N', 'E', 'S', 'W' }), self:int(1, 9)
      if d == 'N' then dy = dy + k elseif d == 'S' then dy = dy - k elseif d == 'E' then dx = dx + k else dx = dx - k end
      parts[i] = format('%d %s %s', k, k == 1 and unit:sub(1, -2) or unit, WORDS[d])
      key[i] = k .. d
    end
  until dx ~= 0 or dy ~= 0
  local d = M.direction_of(dx, dy)
  local list = #parts == 2 and parts[1] .. ', then ' .. parts[2]
               or concat(parts, ', ', 1, #parts - 1) .. ', then ' .. parts[#parts]
  return { kind = 'direction', meaning = 'dir:' .. d, answer = M.forms('dir:' .. d)[1].text, dx = dx, dy = dy,
           question = format('%s %s %s. In which direction from the start does %s end up?', who, self:pick(MOVES),
                             list, who),
           key = 'dir:' .. concat(key, ','), legs = key }
end

function World:duration_problem()
  local who, legs = self:pick(NAMES), self:int(2, 4)
  local total, parts, mins
  repeat
    total, parts, mins = 0, {}, {}
    for i = 1, legs do
      local m = 30 * self:int(1, 8)
      mins[i], total = m, total + m
      parts[i] = format('%s %s', minutes_text(m), self:pick(MEANS))
    end
  until total <= M.MAX_MINUTES
  local list = concat(parts, ', ', 1, legs - 1) .. ' and ' .. parts[legs]
  return { kind = 'duration', meaning = 'min:' .. total, answer = M.forms('min:' .. total)[1].text, minutes = mins,
           question = format('%s\'s trip has %d legs: %s. How long does the whole trip take?', who, legs, list),
           key = 'min:' .. concat(mins, ',') }
end

function World:problem()
  if self:chance(self.direction) then return self:direction_problem() end
  return self:duration_problem()
end

-- A surface form of meaning, drawn uniformly.
function World:form(meaning) return self:pick(M.forms(meaning)).text end

-- A random meaning of p's kind other than... any (a guess may be right).
function World:guess_meaning(p)
  if p.kind == 'direction' then return 'dir:' .. self:pick(M.DIRECTIONS) end
  local m = tonumber(p.meaning:match('%d+'))
  local g
  repeat g = m + 30 * self:int(-3, 3) until g >= 30 and g <= M.MAX_MINUTES
  return 'min:' .. g
end

local function signed_sum(legs, plus, minus)
  local terms, total = {}, 0
  for _, l in ipairs(legs) do
    local k, d = tonumber(l:match('%d+')), l:match('%a$')
    if d == plus then terms[#terms + 1] = '+' .. k; total = total + k
    elseif d == minus then terms[#terms + 1] = '-' .. k; total = total - k end
  end
  if #terms == 0 then return '0', 0 end
  return (concat(terms):gsub('^%+', '')) .. '=' .. total, total
end

-- A worked solution as the corpus writes it (clean: always computed, the
-- first phrasing, the first form), and the answer text it ends with.
function World:solution(p, clean)
  local lines, meaning = {}, p.meaning
  if not clean and self:chance(self.guess) then
    meaning = self:guess_meaning(p)
    lines[1] = format('Roughly %s.', self:form(meaning))
  else
    local phrasing = clean and 1 or self:int(1, 3)
    if p.kind == 'direction' then
      local ns = signed_sum(p.legs, 'N', 'S')
      local ew = signed_sum(p.legs, 'E', 'W')
      local d = M.direction_of(p.dx, p.dy)
      local where = d == '' and 'at the start' or WORDS[d:sub(1, 1)] .. (#d == 2 and '-' .. WORDS[d:sub(2, 2)] or '')
      if phrasing == 1 then lines[1] = format('North: %s. East: %s. So %s of the start.', ns, ew, where)
      elseif phrasing == 2 then lines[1] = format('Net north %s, net east %s: %s.', ns, ew, where)
      else lines[1] = format('Adding the legs: north %s, east %s. That is %s.', ns, ew, where) end
    else
      local sum = concat(p.minutes, '+') .. '=' .. p.meaning:match('%d+')
      if phrasing == 1 then lines[1] = format('In minutes: %s.', sum)
      elseif phrasing == 2 then lines[1] = format('Total minutes %s.', sum)
      else lines[1] = format('Adding the legs: %s minutes.', sum) end
    end
  end
  local answer = clean and M.forms(meaning)[1].text or self:form(meaning)
  lines[#lines + 1] = 'The answer is ' .. answer .. (answer:sub(-1) == '.' and '' or '.')
  return concat(lines, '\n'), answer
end

-- ---- pairs for a verifier (empo.cluster.by_model) ----

-- How the world's verifier is asked (empo.cluster.by_model's template: its
-- next token is " Yes" or " No").
M.VERIFIER_TEMPLATE = 'Answer A: {a}\nAnswer B: {b}\nSame meaning?'

-- Another meaning of the same kind: a neighbour (the next direction round
-- the compass, 30 minutes more or less) half the time, else any.
function World:other_meaning(meaning)
  local kind, v = meaning:match('^(%a+):(%w+)$')
  local pool = {}
  if self:chance(0.5) then
    if kind == 'dir' then
      for i, d in ipairs(M.DIRECTIONS) do
        if d == v then pool = { M.DIRECTIONS[(i % 8) + 1], M.DIRECTIONS[((i - 2) % 8) + 1] } end
      end
    else
      local m = tonumber(v)
      if m > 30 then pool[#pool + 1] = 'min:' .. (m - 30) end
      if m < M.MAX_MINUTES then pool[#pool + 1] = 'min:' .. (m + 30) end
      for i, x in ipairs(pool) do pool[i] = x:match(':(%w+)$') end
    end
  end
  if #pool == 0 then
    for _, x in ipairs(M.meanings()) do
      local k2, v2 = x:match('^(%a+):(%w+)$')
      if k2 == kind and v2 ~= v then pool[#pool + 1] = v2 end
    end
  end
  return kind .. ':' .. self:pick(pool)
end

-- Which pairs of held-out forms a meaning's go to: 'valid' (the pairs a
-- verifier's decision rule is chosen on) or 'test' (the pairs it is
-- measured on), so that no validation pair is a test pair. The meanings
-- of a kind alternate two by two (N, NE valid; E, SE test; ...; 30 and 60
-- minutes valid, 90 and 120 test, ...): each split spans the compass and
-- every size of number. (Cutting at 5 hours instead put only small
-- numbers in validation, which then was easier than the test.)
function M.split(meaning)
  local kind, v = meaning:match('^(%a+):(%w+)$')
  local k
  if kind == 'dir' then
    for i, d in ipairs(M.DIRECTIONS) do if d == v then k = i end end
  elseif kind == 'min' then
    k = tonumber(v) / 30
  end
  if not k or k % 1 ~= 0 then error('empo.world.trips: not a meaning: ' .. tostring(meaning), 2) end
  return math.floor((k - 1) / 2) % 2 == 0 and 'valid' or 'test'
end

-- A form of meaning: from the training forms (held = false), or, with
-- held = true, from the held-out ones.
function World:form_from(meaning, held)
  local list = {}
  for _, f in ipairs(M.forms(meaning)) do if f.held == held then list[#list + 1] = f.text end end
  return self:pick(list)
end

-- A pair of answers to problem p for a verifier: { question, a, b, same }.
-- Half say the same meaning in two different forms, half two meanings of
-- the kind (half of those neighbours). held: b is a held-out form, else
-- both are training forms. split ('valid' or 'test', with held): b's
-- meaning is of that split (M.split; p's should be too, for the same pairs).
function World:verifier_pair(p, held, split)
  local a = self:form_from(p.meaning, false)
  local same = self:chance(0.5)
  local m = same and p.meaning or self:other_meaning(p.meaning)
  if split and not same then
    local tries = 0
    while M.split(m) ~= split do
      tries = tries + 1
      if tries > 1000 then error('empo.world.trips: no other meaning of ' .. p.meaning .. ' in split ' .. split, 2) end
      m = self:other_meaning(p.meaning)
    end
  end
  local b
  repeat b = self:form_from(m, held or false) until b ~= a
  if self:chance(0.5) then a, b = b, a end
  return { question = p.question, a = a, b = b, same = same }
end

-- The world's verifier as a clusterer: empo.cluster.by_model over the
-- model directory dir, asked as its verifier.json says (written by
-- recipes/trips/verifier.lua: the template and the orders rule chosen on
-- validation pairs), else with M.VERIFIER_TEMPLATE and one order.
-- opts: model_verifier's options (cache, batch_tokens), and orders to
-- override the file's.
function M.verifier(dir, opts)
  opts = opts or {}
  local how = { template = M.VERIFIER_TEMPLATE, orders = 'one' }
  local path = dir .. '/verifier.json'
  if empo.fs.exists(path) then
    local ok, saved = pcall(empo.json.read_file, path)
    if not ok or type(saved) ~= 'table' then error('empo.world.trips: ' .. path .. ' is not a JSON object', 2) end
    how.template, how.orders = saved.template or how.template, saved.orders or how.orders
  end
  return empo.cluster.by_model(empo.cluster.model_verifier(dir, opts), how.template,
                               { orders = opts.orders or how.orders })
end

-- ---- the world's files ----

function M.prompt() return empo.prompt.chatml{ system = M.SYSTEM } end
function M.document(tpl, question, solution) return tpl(question) .. solution .. '<|im_end|>' end

M.FILE_DEFAULTS = { out = 'data/trips', seed = 1, train = 4000, test = 500, valid = 500, corpus = 60000,
                    guess = M.DEFAULTS.guess }

local write_jsonl = common.write_jsonl

local function record(p) return { question = p.question, answer = p.answer, meaning = p.meaning, kind = p.kind, key = p.key } end

-- Writes o.out/test.jsonl, train.jsonl, valid.jsonl and corpus.jsonl, each
-- from its own Philox stream of o.seed; no test problem (same legs in the
-- same order) is in the other three. Returns counts.
function M.write_files(o)
  local c = {}
  for k, v in pairs(M.FILE_DEFAULTS) do c[k] = v end
  for k, v in pairs(o or {}) do c[k] = v end
  assert(empo.fs.make_dirs(c.out))
  local function world(stream) return M.new{ seed = c.seed, stream = stream, guess = c.guess } end
  local held, sets = {}, {}
  local w = world(1)
  sets.test = {}
  while #sets.test < c.test do
    local p = w:problem()
    if not held[p.key] then held[p.key] = true; sets.test[#sets.test + 1] = record(p) end
  end
  for _, s in ipairs({ { 'train', 2 }, { 'valid', 4 } }) do
    local name, list = s[1], {}
    w = world(s[2])
    while #list < c[name] do
      local p = w:problem()
      if not held[p.key] then list[#list + 1] = record(p) end
    end
    sets[name] = list
  end
  local docs, skipped, tpl = {}, 0, M.prompt()
  w = world(3)
  while #docs < c.corpus do
    local p = w:problem()
    if held[p.key] then skipped = skipped + 1
    else docs[#docs + 1] = { text = M.document(tpl, p.question, (w:solution(p))), key = p.key } end
  end
  for name, list in pairs(sets) do write_jsonl(c.out .. '/' .. name .. '.jsonl', list) end
  write_jsonl(c.out .. '/corpus.jsonl', docs)
  return { test = #sets.test, train = #sets.train, valid = #sets.valid, corpus = #docs, skipped = skipped, out = c.out }
end

return M
