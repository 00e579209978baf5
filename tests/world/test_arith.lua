-- tests/world/test_arith.lua — the arith world's generator: every steps
-- list evaluates to its answer, no test problem is in the train set or the
-- corpus, the difficulty mix is the one asked for, the same seed writes the
-- same files, every near miss the corpus writes is judged unequal to the
-- right result by the clustering, and the two corpus modes write what
-- they say.
local check = require 'check'
local empo = require 'empo'
local arith = require 'empo.world.arith'
local c = check.new('test_arith')

local dir = check.tmpdir()
local function read_jsonl(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = empo.json.decode(line) end
  return out
end

local n = arith.write_files{ out = dir, seed = 3, test = 300, train = 600, corpus = 3000 }
c.eq({ n.test, n.train, n.corpus }, { 300, 600, 3000 }, 'the counts asked for')
local test, train, corpus = read_jsonl(dir .. '/test.jsonl'), read_jsonl(dir .. '/train.jsonl'),
                            read_jsonl(dir .. '/corpus.jsonl')

-- gold answers any grader can check: the steps, evaluated, give the answer
local bad = 0
for _, set in ipairs({ test, train }) do
  for _, r in ipairs(set) do
    local ok, why = arith.check_steps(r.steps, r.answer)
    if not ok then bad = bad + 1; if bad < 4 then print('  ' .. why .. ': ' .. r.question) end end
    if #r.steps ~= r.level or r.level < 2 or r.level > 5 then bad = bad + 1 end
  end
end
c.eq(bad, 0, 'every steps list evaluates to its answer and has level operations')
c.eq(arith.check_steps({ '2 * 3 = 6', '6 + 1 = 8' }, '8'), false, 'check_steps catches a wrong step')
c.eq(arith.check_steps({ '2 * 3 = 6' }, '7'), false, 'and an answer that is not the last result')

-- held out: the same operations on the same numbers in the same order, whatever the names
local key = function(r) return table.concat(r.steps, '; ') end
local held, seen_test = {}, 0
for _, r in ipairs(test) do
  if held[key(r)] then seen_test = seen_test + 1 end
  held[key(r)] = true
end
c.eq(seen_test, 0, 'the test set has no duplicates')
local leaks, problems = 0, 0
for _, r in ipairs(train) do if held[key(r)] then leaks = leaks + 1 end end
for _, r in ipairs(read_jsonl(dir .. '/valid.jsonl')) do if held[key(r)] then leaks = leaks + 1 end end
for _, d in ipairs(corpus) do
  if d.key then
    problems = problems + 1
    if held[d.key] then leaks = leaks + 1 end
  end
end
c.eq(leaks, 0, 'no test problem in the train or validation set or the corpus')
c.ok(problems > 1200 and problems < 1800, 'about half the corpus is worked problems: ' .. problems)
-- the key a corpus document carries is its question's: the question's numbers appear in it
local mismatched = 0
for _, d in ipairs(corpus) do
  if d.key then
    local q = d.text:match('<|im_start|>user\n(.-)<|im_end|>')
    local first = q:match('(%d+)')
    if not d.key:find(first, 1, true) then mismatched = mismatched + 1 end
  end
end
c.eq(mismatched, 0, "each document's key names its question's numbers")

-- the difficulty mix
local count = { 0, 0, 0, 0 }
for _, r in ipairs(train) do count[r.level - 1] = count[r.level - 1] + 1 end
local ok_mix = true
for i, p in ipairs(arith.DEFAULTS.levels) do
  if math.abs(count[i] / #train - p) > 0.05 then ok_mix = false end
end
c.ok(ok_mix, 'levels follow the default mix: ' .. table.concat(count, ' '))
local w = arith.new{ seed = 1, levels = { 0, 0, 1, 0 } }
local all4 = true
for _ = 1, 200 do if w:problem().level ~= 4 then all4 = false end end
c.ok(all4, 'a mix of only level 4 gives only 4-operation problems')

-- the same seed writes the same files; another seed others
local again = dir .. '/again'
arith.write_files{ out = again, seed = 3, test = 300, train = 600, corpus = 3000 }
for _, f in ipairs({ 'test.jsonl', 'train.jsonl', 'corpus.jsonl' }) do
  c.eq(empo.fs.read_text(again .. '/' .. f) == empo.fs.read_text(dir .. '/' .. f), true, f .. ' is deterministic')
end
arith.write_files{ out = again, seed = 4, test = 300, train = 10, corpus = 10 }
c.ok(empo.fs.read_text(again .. '/test.jsonl') ~= empo.fs.read_text(dir .. '/test.jsonl'), 'another seed, other problems')

-- near misses: every corrupted step result and every guess the corpus writes is
-- judged unequal to the right value by the clustering that rewards EMPO
local misses = {}
w = arith.new{ seed = 5, misses = misses, step_error = 0.2 }
for _ = 1, 2000 do w:solution(w:problem()) end
local judged_equal = 0
for _, m in ipairs(misses) do
  if m[1] == m[2] or empo.cluster.math(tostring(m[1]), tostring(m[2])) then judged_equal = judged_equal + 1 end
end
c.ok(#misses > 1000, 'the corpus makes near misses: ' .. #misses)
c.eq(judged_equal, 0, 'each is unequal to the right result')
c.eq(empo.cluster.math('38', '38'), true, 'and the right result equals itself')

-- what the two modes write on a multiplicative event
local function share(mode, pattern)
  local v = arith.new{ seed = 6, mode = mode, levels = { 1, 0, 0, 0 }, multiplicative = 1, step_error = 0 }
  local hits, total = 0, 0
  for _ = 1, 600 do
    local p = v:problem()
    local text = v:solution(p)
    total = total + 1
    if text:find(pattern(p)) then hits = hits + 1 end
  end
  return hits / total
end
local guess = share('guess', function() return '^%a+ %d+%.' end)
c.ok(math.abs(guess - arith.DEFAULTS.guess) < 0.06, 'guess mode: about 45% of the events are guessed: ' .. guess)
local shortcut = share('shortcut', function(p)
  local k, m = p.steps[1]:match('^(%d+) %* (%d+)')
  return '^' .. k .. '%+' .. m .. '='
end)
c.ok(math.abs(shortcut - arith.DEFAULTS.shortcut) < 0.06, 'shortcut mode: about 40% add k+m: ' .. shortcut)
local clean = arith.new{ seed = 7 }
local p = clean:problem()
local _, answer = clean:solution(p, true)
c.eq(answer, p.answer, 'the clean solution reaches the gold answer')

c.raises(function() arith.new{ mode = 'other' } end, "mode must be 'guess' or 'shortcut'")
c.raises(function() arith.new{ levels = { 1, 1 } } end, 'levels must be 4 shares')
c.raises(function() arith.new{ colour = 1 } end, "unknown option 'colour'")
-- the committed data/arith files are what the generator writes today (a change to the
-- generator that moves them must regenerate them, and remake the base model)
local src = os.getenv('EMPO_SOURCE_DIR')
if src and empo.fs.exists(src .. '/data/arith/test.jsonl') then
  local fresh = dir .. '/fresh'
  arith.write_files{ out = fresh, corpus = 0 }
  for _, f in ipairs({ 'test.jsonl', 'train.jsonl', 'valid.jsonl' }) do
    c.ok(empo.fs.read_text(fresh .. '/' .. f) == empo.fs.read_text(src .. '/data/arith/' .. f),
         'data/arith/' .. f .. ' is the generator\'s output')
  end
end
os.execute("rm -rf '" .. dir .. "'")
c.done()
