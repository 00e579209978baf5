-- empo.world.arith — the arith world: seeded multi-step arithmetic word
-- problems in English with worked solutions ending in \boxed{answer}, and
-- the pretraining corpus a small base model learns them from. Everything
-- is drawn from Philox streams, so a seed names the same files on every
-- machine.
--
--     local arith = require 'empo.world.arith'
--     local w = arith.new{ seed = 1, mode = 'guess' }
--     local p = w:problem()        -- { question, answer, steps = { '4 * 6 = 24', ... }, level, key }
--     w:solution(p)                -- a worked solution as the corpus writes it (noisy, see below)
--     w:drill()                    -- '47+26=73. 8*7=56. ...'
--     (misses = {} as an option: every near miss and guess written, { wrong, right }, is appended to it)
--
-- A problem: a person starts with x objects, then 2-5 operations (the
-- level is the number of operations) from events: finds / loses some,
-- buys k bags of m each, earns m a day for k days, gives k friends m
-- each (the three multiplicative events take two operations, k*m then
-- x+p or x-p), doubles / triples, splits into k equal piles and keeps one.
-- `steps` lists the operations as "a op b = c" in order; the last c is the
-- answer. The key (the steps joined) identifies a problem whatever its
-- names and objects.
--
-- How the corpus's solutions are imperfect (why the base model's greedy
-- answer is often wrong while most of its samples agree on the right one):
--   guess mode (the default): on a multiplicative event, a share
--     `guess` (0.45) of solutions do not compute but write a guess, "about
--     G." / "roughly G." / "around G.", G = the true result plus a fresh
--     random offset (1..15, either sign), and carry it to the box; the
--     rest compute it in one of three forms ("k*m=p. x+p=y.", "m*k=p.
--     x+p=y.", "x+k*m=x+p=y."). The guess's first word is the single most
--     likely next token, so greedy decoding guesses; but the guesses
--     scatter, while the computed forms agree: the gold answer wins the
--     vote among samples.
--   shortcut mode (a failure case): on a multiplicative event, a share
--     `shortcut` (0.4) of solutions add k+m instead of multiplying, the
--     rest compute it in two forms. The wrong answer is as consistent as
--     the right one, so self-consistency cannot tell them apart.
--   in both: every computed step is off by 1-3 with probability
--     `step_error` (0.05), and the error is carried on.
local empo = require 'empo'
local common = require 'empo.world.common'

local format, floor, concat = string.format, math.floor, table.concat

local M = {}

M.SYSTEM = 'Please reason step by step, and put your final answer within \\boxed{}.'

local NAMES = {
  { 'Ava', 'she' }, { 'Liam', 'he' }, { 'Mia', 'she' }, { 'Noah', 'he' }, { 'Zoe', 'she' }, { 'Omar', 'he' },
  { 'Lena', 'she' }, { 'Ivan', 'he' }, { 'Nora', 'she' }, { 'Ravi', 'he' }, { 'Emma', 'she' }, { 'Leo', 'he' },
  { 'Sara', 'she' }, { 'Tom', 'he' }, { 'Yuki', 'she' }, { 'Ben', 'he' }, { 'Aisha', 'she' }, { 'Hugo', 'he' },
  { 'Ines', 'she' }, { 'Karl', 'he' },
}
local OBJECTS = { 'marbles', 'apples', 'stickers', 'coins', 'books', 'pencils', 'shells', 'cards', 'stamps', 'beads',
                  'cookies', 'toys', 'rocks', 'eggs', 'balloons', 'buttons' }
local CONTAINERS = { 'bags', 'boxes', 'packs', 'jars', 'crates' }
local GUESS_WORDS = { 'about', 'about', 'about', 'about', 'about', 'about', 'roughly', 'roughly', 'around' }

M.DEFAULTS = {
  seed = 1, mode = 'guess', guess = 0.45, shortcut = 0.4, step_error = 0.05,
  multiplicative = 0.8,                        -- share of problems with at least one multiplicative event
  levels = { 0.25, 0.35, 0.25, 0.15 },         -- share of problems with 2, 3, 4, 5 operations
}

local World = {}
World.__index = World

function M.new(o)
  local w = common.new(World, M.DEFAULTS, o, 'empo.world.arith', { misses = true })
  if w.mode ~= 'guess' and w.mode ~= 'shortcut' then
    error("empo.world.arith: mode must be 'guess' or 'shortcut', got " .. tostring(w.mode), 2)
  end
  local total = 0
  for _, p in ipairs(w.levels) do total = total + p end
  if #w.levels ~= 4 or math.abs(total - 1) > 1e-6 then
    error('empo.world.arith: levels must be 4 shares (2..5 operations) summing to 1', 2)
  end
  return w
end

-- ---- draws ----
common.draws(World)                  -- World:u(), :int(), :pick(), :chance()

local function cap(s) return s:sub(1, 1):upper() .. s:sub(2) end
local function step(a, op, b, c) return format('%d %s %d = %d', a, op, b, c) end
local POSSESSIVE = { she = 'her', he = 'his' }

-- ---- events: each returns { text, ops = { { a, op, b, c }, ... }, kind } or nil when x does not allow it ----
local EVENTS = {}

function EVENTS.gain(w, x, who, obj)
  local a = w:int(2, x < 50 and 30 or 45)
  local v = w:int(1, 3)
  local text = v == 1 and format('%s finds %d more.', cap(who), a)
            or v == 2 and format('%s gets %d more %s from a friend.', cap(who), a, obj)
            or format('Then %s buys %d more %s.', who, a, obj)
  return { text = text, ops = { { x, '+', a, x + a } } }
end

function EVENTS.lose(w, x, who, obj)
  if x < 4 then return nil end
  local a = w:int(2, math.min(x - 1, 30))
  local text = w:pick({ '%s loses %d.', '%s gives %d %s to a neighbor.', '%s sells %d of the %s.' })
  return { text = format(text, cap(who), a, obj), ops = { { x, '-', a, x - a } } }
end

function EVENTS.scale(w, x, who, obj)
  local f = x * 3 <= 300 and w:int(2, 3) or 2
  if x * f > 300 then return nil end
  local word = f == 2 and 'doubles' or 'triples'
  local text = w:chance(0.5) and format('%s %s %s %s.', cap(who), word, POSSESSIVE[who], obj)
                              or format('The number of %s %s.', obj, word)
  return { text = text, ops = { { x, '*', f, x * f } } }
end

function EVENTS.split(w, x, who, obj)
  local ks = {}
  for k = 2, 5 do if x % k == 0 and x / k >= 2 then ks[#ks + 1] = k end end
  if #ks == 0 then return nil end
  local k = w:pick(ks)
  local text = w:chance(0.5) and format('%s splits the %s into %d equal piles and keeps one pile.', cap(who), obj, k)
                              or format('%s puts the %s into %d equal boxes and keeps one box.', cap(who), obj, k)
  return { text = text, ops = { { x, '/', k, x / k } } }
end

-- the multiplicative events: k groups of m, added (bags, earn) or taken away (friends)
function EVENTS.bags(w, x, who, obj)
  local k, m = w:int(2, 6), w:int(2, 9)
  local text = w:chance(0.5) and format('%s buys %d %s of %d %s each.', cap(who), k, w:pick(CONTAINERS), m, obj)
                              or format('%s gets %d %s with %d %s in each.', cap(who), k, w:pick(CONTAINERS), m, obj)
  return { text = text, ops = { { k, '*', m, k * m }, { x, '+', k * m, x + k * m } }, kind = 'mul' }
end

function EVENTS.earn(w, x, who, obj)
  local k, m = w:int(2, 7), w:int(2, 9)
  local text = w:chance(0.5) and format('%s collects %d %s a day for %d days.', cap(who), m, obj, k)
                              or format('For %d days %s earns %d %s each day.', k, who, m, obj)
  return { text = text, ops = { { k, '*', m, k * m }, { x, '+', k * m, x + k * m } }, kind = 'mul' }
end

function EVENTS.friends(w, x, who, obj)
  local k, m = w:int(2, 5), w:int(2, 9)
  if k * m >= x then
    if x <= 4 then return nil end
    m = math.max(2, floor((x - 1) / k))
    if k * m >= x then return nil end
  end
  local text = w:chance(0.5) and format('%s gives %d friends %d %s each.', cap(who), k, m, obj)
                              or format('%s hands out %d %s to each of %d friends.', cap(who), m, obj, k)
  return { text = text, ops = { { k, '*', m, k * m }, { x, '-', k * m, x - k * m } }, kind = 'mul' }
end

local SINGLE = { 'gain', 'gain', 'lose', 'lose', 'scale', 'split' }
local MULTIPLICATIVE = { 'bags', 'earn', 'friends' }

local function try(w, names, x, who, obj)
  for _ = 1, 8 do
    local e = EVENTS[w:pick(names)](w, x, who, obj)
    if e then return e end
  end
  return EVENTS.gain(w, x, who, obj)                   -- always possible
end

-- ---- problems ----

-- A problem of `level` operations (2..5; drawn from the levels mix when nil).
function World:problem(level)
  if level == nil then
    local u, acc = self:u(), 0
    level = 5
    for i, p in ipairs(self.levels) do
      acc = acc + p
      if u < acc then level = i + 1; break end
    end
  end
  local person = self:pick(NAMES)
  local name, who = person[1], person[2]
  local obj = self:pick(OBJECTS)
  local x = self:int(level <= 3 and 8 or 10, level <= 3 and 60 or 80)
  local start = x
  local want_mul = self:chance(self.multiplicative)
  local mul_at = want_mul and self:int(1, level - 1) or -1    -- the operation a multiplicative event starts at
  local sentences = { format(self:chance(0.5) and '%s has %d %s.' or '%s starts with %d %s.', name, x, obj) }
  local events, ops = {}, 0
  while ops < level do
    local e
    if ops + 1 == mul_at then
      e = try(self, MULTIPLICATIVE, x, who, obj)
    else
      e = try(self, SINGLE, x, who, obj)
    end
    if ops + #e.ops > level then e = try(self, SINGLE, x, who, obj) end
    events[#events + 1] = e
    sentences[#sentences + 1] = e.text
    ops = ops + #e.ops
    x = e.ops[#e.ops][4]
  end
  sentences[#sentences + 1] = self:chance(0.5) and format('How many %s does %s have now?', obj, name)
                                               or format('How many %s does %s have at the end?', obj, who)
  local steps = {}
  for _, e in ipairs(events) do
    for _, o in ipairs(e.ops) do steps[#steps + 1] = step(o[1], o[2], o[3], o[4]) end
  end
  return { question = concat(sentences, ' '), answer = tostring(x), steps = steps, level = level,
           key = concat(steps, '; '), events = events, start = start }
end

-- ---- solutions, as the corpus writes them ----

local function apply(op, a, b)
  if op == '+' then return a + b elseif op == '-' then return a - b
  elseif op == '*' then return a * b else return a / b end
end

-- c, or (with probability step_error) a near miss 1-3 away (never negative)
function World:noisy(c)
  if not self:chance(self.step_error) then return c end
  local d = self:int(1, 3)
  local wrong = (c - d < 0 or self:chance(0.5)) and c + d or c - d
  if self.misses then self.misses[#self.misses + 1] = { wrong, c } end   -- for tests: every near miss made
  return wrong
end

-- A worked solution of problem p, with the corpus's imperfections (see
-- the header); `clean = true` writes the correct computation only.
function World:solution(p, clean)
  local lines, x = {}, p.start
  local function compute(a, op, b)
    local c = apply(op, a, b)
    if op == '/' and c % 1 ~= 0 then c = floor(c) end   -- a carried error can make a split inexact
    return clean and c or self:noisy(c)
  end
  for _, e in ipairs(p.events) do
    local o = e.ops
    if e.kind == 'mul' then
      local k, m, sign = o[1][1], o[1][3], o[2][2]
      local u = clean and 1 or self:u()
      if self.mode == 'guess' and u < self.guess then
        local true_y = apply(sign, x, k * m)
        local g
        repeat
          local off = self:int(1, 15) * (self:chance(0.5) and 1 or -1)
          g = true_y + off
        until g >= 1
        lines[#lines + 1] = format('%s %d.', self:pick(GUESS_WORDS), g)
        if self.misses then self.misses[#self.misses + 1] = { g, true_y } end
        x = g
      elseif self.mode == 'shortcut' and u < self.shortcut then
        local s = compute(k, '+', m)
        local y = compute(x, sign, s)
        lines[#lines + 1] = format('%d+%d=%d. %d%s%d=%d.', k, m, s, x, sign, s, y)
        x = y
      else
        local forms = self.mode == 'guess' and 3 or 2
        local f = clean and 1 or self:int(1, forms)
        local prod = compute(k, '*', m)
        local y = compute(x, sign, prod)
        if f == 1 then
          lines[#lines + 1] = format('%d*%d=%d. %d%s%d=%d.', k, m, prod, x, sign, prod, y)
        elseif f == 2 then
          lines[#lines + 1] = format('%d*%d=%d. %d%s%d=%d.', m, k, prod, x, sign, prod, y)
        else
          lines[#lines + 1] = format('%d%s%d*%d=%d%s%d=%d.', x, sign, k, m, x, sign, prod, y)
        end
        x = y
      end
    else
      local op, b = o[1][2], o[1][3]
      local y = compute(x, op, b)
      lines[#lines + 1] = format('%d%s%d=%d.', x, op, b, y)
      x = y
    end
  end
  lines[#lines + 1] = format('\\boxed{%d}', x)
  return concat(lines, '\n'), tostring(x)
end

-- ---- drills: bare equations, what lets a small model learn to compute ----
function World:equation()
  local u = self:u()
  if u < 0.35 then
    local a, b = self:int(1, self:chance(0.5) and 99 or 400), self:int(1, self:chance(0.6) and 60 or 200)
    return format('%d+%d=%d.', a, b, a + b)
  elseif u < 0.65 then
    local a = self:int(2, 450)
    local b = self:int(1, math.min(a, self:chance(0.6) and 60 or 200))
    return format('%d-%d=%d.', a, b, a - b)
  elseif u < 0.9 then
    local a, b
    if self:chance(0.7) then a, b = self:int(2, 9), self:int(2, 9) else a, b = self:int(2, 200), self:int(2, 3) end
    return format('%d*%d=%d.', a, b, a * b)
  else
    local b, q = self:int(2, 5), self:int(2, 80)
    return format('%d/%d=%d.', q * b, b, q)
  end
end

function World:drill(n)
  local eqs = {}
  for i = 1, n or 14 do eqs[i] = self:equation() end
  return concat(eqs, ' ')
end

-- The text of a pretraining document: the prompt the trainer will use,
-- the worked solution, the end of the turn.
function M.prompt()
  return empo.prompt.chatml{ system = M.SYSTEM }
end

function M.document(tpl, question, solution)
  return tpl(question) .. solution .. '<|im_end|>'
end

-- Every step of p evaluates to its result and the last result is the answer.
function M.check_steps(steps, answer)
  local last
  for i, s in ipairs(steps) do
    local a, op, b, c = s:match('^(%d+) ([%+%-%*/]) (%d+) = (%d+)$')
    if not a then return false, format('step %d "%s" is not "a op b = c"', i, s) end
    a, b, c = tonumber(a), tonumber(b), tonumber(c)
    if apply(op, a, b) ~= c then return false, format('step %d "%s" is wrong', i, s) end
    last = c
  end
  if tostring(last) ~= tostring(answer) then return false, format('the last step gives %s, not %s', last, answer) end
  return true
end

-- ---- the world's files ----

M.FILE_DEFAULTS = { out = 'data/arith', seed = 1, mode = 'guess', train = 4000, test = 500, valid = 500, corpus = 120000,
                    drills = 0.5, guess = M.DEFAULTS.guess, shortcut = M.DEFAULTS.shortcut,
                    step_error = M.DEFAULTS.step_error }

local write_jsonl = common.write_jsonl

local function record(p) return { question = p.question, answer = p.answer, steps = p.steps, level = p.level } end

-- Writes o.out/test.jsonl (o.test problems), train.jsonl (o.train),
-- valid.jsonl (o.valid, for choosing settings) and corpus.jsonl (o.corpus documents, a share o.drills of them drills),
-- each from its own Philox stream of o.seed; no test problem's key is
-- in the other two. Returns counts.
function M.write_files(o)
  local c = {}
  for k, v in pairs(M.FILE_DEFAULTS) do c[k] = v end
  for k, v in pairs(o or {}) do c[k] = v end
  assert(empo.fs.make_dirs(c.out))
  local function world(stream)
    return M.new{ seed = c.seed, stream = stream, mode = c.mode, guess = c.guess, shortcut = c.shortcut,
                  step_error = c.step_error }
  end
  local test, held = {}, {}
  local w = world(1)
  while #test < c.test do
    local p = w:problem()
    if not held[p.key] then held[p.key] = true; test[#test + 1] = record(p) end
  end
  local train = {}
  w = world(2)
  while #train < c.train do
    local p = w:problem()
    if not held[p.key] then train[#train + 1] = record(p) end
  end
  local valid = {}                             -- for choosing settings without looking at the test set
  w = world(4)
  while #valid < c.valid do
    local p = w:problem()
    if not held[p.key] then valid[#valid + 1] = record(p) end
  end
  local docs, skipped, tpl = {}, 0, M.prompt()
  w = world(3)
  while #docs < c.corpus do
    if w:chance(c.drills) then
      docs[#docs + 1] = { text = w:drill() }
    else
      local p = w:problem()
      if held[p.key] then
        skipped = skipped + 1
      else
        docs[#docs + 1] = { text = M.document(tpl, p.question, (w:solution(p))), key = p.key }
      end
    end
  end
  write_jsonl(c.out .. '/test.jsonl', test)
  write_jsonl(c.out .. '/train.jsonl', train)
  write_jsonl(c.out .. '/valid.jsonl', valid)
  write_jsonl(c.out .. '/corpus.jsonl', docs)
  return { test = #test, train = #train, valid = #valid, corpus = #docs, skipped = skipped, out = c.out }
end

return M
