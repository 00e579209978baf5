-- tests/world/test_trips.lua — the trips world (free-form answers): its
-- equivalence rules (every surface form of every meaning reads back to
-- it, in any case and with a final period; no two meanings share a form;
-- each kind keeps forms out of the verifier's training), its problems
-- (the gold meaning recomputed from the legs), its corpus (computed
-- solutions end with the right meaning in some form, guesses in the share
-- asked, the phrase extraction reads every answer back), and its files
-- (no test problem in the train, valid or corpus files; a seed writes the
-- same files).
local check = require 'check'
local empo = require 'empo'
local trips = require 'empo.world.trips'
local c = check.new('test_trips')

-- ---- the equivalence rules ----
local forms, bad, held, free = 0, {}, { dir = 0, min = 0 }, { dir = 0, min = 0 }
local seen = {}
for _, m in ipairs(trips.meanings()) do
  local kind = m:match('^(%a+):')
  for _, f in ipairs(trips.forms(m)) do
    forms = forms + 1
    for _, variant in ipairs({ f.text, f.text:upper(), f.text:lower(), ' ' .. f.text .. '. ' }) do
      if trips.meaning(variant) ~= m then bad[#bad + 1] = variant .. ' -> ' .. tostring(trips.meaning(variant)) end
    end
    local k = f.text:lower():gsub('%.$', '')
    if seen[k] and seen[k] ~= m then bad[#bad + 1] = f.text .. ' is a form of ' .. seen[k] .. ' and ' .. m end
    seen[k] = m
    if f.held then held[kind] = held[kind] + 1 else free[kind] = free[kind] + 1 end
  end
end
c.eq(#bad, 0, 'every form of every meaning reads back to it, and no two meanings share one: ' .. table.concat(bad, '; '))
c.ok(forms > 150 and #trips.meanings() == 28, string.format('%d meanings, %d forms', #trips.meanings(), forms))
c.ok(held.dir > 0 and held.min > 0 and free.dir > held.dir and free.min > held.min,
     'each kind holds forms out of the verifier\'s training')
c.eq(trips.meaning('not an answer'), nil, 'a text that is no form has no meaning')
c.ok(trips.oracle('NE', 'to the north-east') and not trips.oracle('NE', 'north') and not trips.oracle('x', 'x'),
     'the oracle clusters by meaning (an answer without one is its own)')
c.eq(trips.direction_of(3, -1), 'SE', 'directions by the signs of the net distances')

-- ---- problems and solutions ----
local w = trips.new{ seed = 5 }
local wrong, guesses, computed_right, computed, unreadable = 0, 0, 0, 0, 0
for i = 1, 2000 do
  local p = w:problem()
  local want
  if p.kind == 'direction' then
    local dx, dy = 0, 0
    for _, l in ipairs(p.legs) do
      local k, d = tonumber(l:match('%d+')), l:match('%a$')
      if d == 'N' then dy = dy + k elseif d == 'S' then dy = dy - k elseif d == 'E' then dx = dx + k else dx = dx - k end
    end
    want = 'dir:' .. trips.direction_of(dx, dy)
  else
    local total = 0
    for _, m in ipairs(p.minutes) do total = total + m end
    want = 'min:' .. total
  end
  if p.meaning ~= want or trips.meaning(p.answer) ~= want then wrong = wrong + 1 end
  local text, answer = w:solution(p)
  local extracted = empo.cluster.extract(text, { fallback = 'phrase' })
  if trips.meaning(extracted) ~= trips.meaning(answer) or trips.meaning(answer) == nil then unreadable = unreadable + 1 end
  if text:find('^Roughly') then guesses = guesses + 1
  else
    computed = computed + 1
    if trips.meaning(answer) == p.meaning then computed_right = computed_right + 1 end
  end
  local clean_text, clean_answer = w:solution(p, true)
  if clean_text:find('^Roughly') or clean_answer ~= p.answer then wrong = wrong + 1 end
end
c.eq(wrong, 0, 'the gold meaning is the legs\' (and a clean solution computes it)')
c.eq(computed_right, computed, 'a computed solution always ends with the right meaning')
c.near(guesses / 2000, 0.45, 0.04, 'guesses in the share asked (0.45)')
c.eq(unreadable, 0, 'the phrase extraction reads every written answer back to its meaning')

-- ---- verifier pairs ----
local pw = trips.new{ seed = 9 }
local same, right, heldout, pairs_n = 0, 0, 0, 3000
for i = 1, pairs_n do
  local p = pw:problem()
  local held = i % 2 == 0
  local pair = pw:verifier_pair(p, held)
  if pair.same then same = same + 1 end
  local ma, mb = trips.meaning(pair.a), trips.meaning(pair.b)
  if ma and mb and (ma == mb) == pair.same and pair.a ~= pair.b then right = right + 1 end
  local uses_held = false
  for _, x in ipairs({ pair.a, pair.b }) do
    for _, f in ipairs(trips.forms(trips.meaning(x))) do if f.text == x and f.held then uses_held = true end end
  end
  if uses_held == held then heldout = heldout + 1 end
end
c.eq(right, pairs_n, 'every verifier pair\'s label is the rules\' verdict, the two answers distinct')
c.near(same / pairs_n, 0.5, 0.04, 'half the pairs mean the same')
c.eq(heldout, pairs_n, 'test pairs use a held-out form, training pairs never do')
c.ok(trips.held_pattern('5 h 30 min') == 'N h 30 min' and trips.held_pattern('due north') == 'due X' and
     trips.held_pattern('5 hours 30 minutes') == nil and trips.held_pattern('no such form') == nil,
     'held_pattern names a held-out form\'s template, nil for any other text')
-- validation and test pairs: every meaning in one split, both splits hold every held-out pattern's kind
local split_of, splits = {}, { valid = 0, test = 0 }
for _, m in ipairs(trips.meanings()) do split_of[m] = trips.split(m); splits[split_of[m]] = splits[split_of[m]] + 1 end
c.ok(splits.valid >= 10 and splits.test >= 10, 'both splits hold meanings of both kinds')
local crossed, seen_pairs = 0, { valid = {}, test = {} }
for _, split in ipairs({ 'valid', 'test' }) do
  for _ = 1, 500 do
    local p
    repeat p = pw:problem() until split_of[p.meaning] == split
    local pair = pw:verifier_pair(p, true, split)
    if split_of[trips.meaning(pair.a)] ~= split or split_of[trips.meaning(pair.b)] ~= split then crossed = crossed + 1 end
    seen_pairs[split][pair.a .. '|' .. pair.b] = true
  end
end
local shared = 0
for k in pairs(seen_pairs.valid) do if seen_pairs.test[k] then shared = shared + 1 end end
c.ok(crossed == 0 and shared == 0, 'a split\'s pairs use its meanings only: no validation pair is a test pair')
-- trips.verifier: asked as the model directory's verifier.json says
local vdir = check.tmpdir()
empo.json.write_file(vdir .. '/verifier.json', { template = 'A {a} B {b}', orders = 'either' })
local asked = {}
local fake = { yes_no = function(_, prompt) asked[#asked + 1] = prompt; return 0, 1 end }
local real_mv = empo.cluster.model_verifier
empo.cluster.model_verifier = function() return fake end
local by = trips.verifier(vdir)
empo.cluster.model_verifier = real_mv
c.ok(not by('N', 'S') and asked[1] == 'A N B S' and asked[2] == 'A S B N',
     'trips.verifier: the template and both orders from verifier.json')
assert(empo.fs.write_atomic(vdir .. '/verifier.json', '{ not json'))
c.raises(function() trips.verifier(vdir) end, 'verifier.json is not a JSON object')
empo.fs.remove_tree(vdir)

-- ---- files ----
local dir = check.tmpdir()
local n = trips.write_files{ out = dir, seed = 2, test = 200, train = 400, valid = 100, corpus = 2000 }
c.ok(n.test == 200 and n.train == 400 and n.valid == 100 and n.corpus == 2000, 'the counts asked for')
local function keys(path, field)
  local out = {}
  for line in io.lines(path) do
    local r = empo.json.decode(line)
    out[#out + 1] = r
  end
  return out
end
local test = keys(dir .. '/test.jsonl')
local held_q = {}
for _, r in ipairs(test) do held_q[r.question] = true; held_q[r.key] = true end
local leaked = 0
for _, name in ipairs({ 'train', 'valid' }) do
  for _, r in ipairs(keys(dir .. '/' .. name .. '.jsonl')) do
    if held_q[r.question] or held_q[r.key] then leaked = leaked + 1 end
  end
end
local read = 0
for _, r in ipairs(keys(dir .. '/corpus.jsonl')) do
  local q = r.text:match('<|im_start|>user\n(.-)<|im_end|>')
  if q then read = read + 1 end
  if (q and held_q[q]) or held_q[r.key] then leaked = leaked + 1 end
end
c.eq(read, 2000, 'every corpus document\'s question is found')
c.eq(leaked, 0, 'no test problem (its text or its legs) is in the train, valid or corpus files')
c.ok(test[1].meaning and trips.meaning(test[1].answer) == test[1].meaning, 'records carry the answer and its meaning')
local dir2 = check.tmpdir()
trips.write_files{ out = dir2, seed = 2, test = 200, train = 400, valid = 100, corpus = 2000 }
c.eq(empo.fs.read_text(dir2 .. '/corpus.jsonl'), empo.fs.read_text(dir .. '/corpus.jsonl'), 'a seed writes the same files')
empo.fs.remove_tree(dir)
empo.fs.remove_tree(dir2)
c.done()
