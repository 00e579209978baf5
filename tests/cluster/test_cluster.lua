-- tests/cluster/test_cluster.lua — empo.cluster from Lua: extract, normalize,
-- equivalent, the built-in clusterers (exact, normalized, math, math{rtol}),
-- clustering with any Lua function (called with the question, never with an
-- empty answer, never twice for a pair already joined), and the
-- model-backed clusterers by_model and by_embedding driven by tiny fakes
-- (real models are tested once empo.models can load a verifier).
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_cluster')
local cluster = empo.cluster

-- ---- extract ----
c.eq({ cluster.extract('so $\\boxed{\\frac{1}{2}}$.') }, { '\\frac{1}{2}', 'boxed' })
-- every box, as one set answer (the reference's reading), or the last one
c.eq({ cluster.extract('\\boxed{1} then \\fbox{2}') }, { '1, 2', 'boxed' })
c.eq({ cluster.extract('\\boxed{1} then \\fbox{2}', { boxes = 'last' }) }, { '2', 'boxed' })
c.eq({ cluster.extract('\\boxed{5}, so finally \\boxed{ 5 }.') }, { '5', 'boxed' }, 'the same box twice is one answer')
c.eq({ cluster.extract('\\boxed{\\boxed{5}} and \\boxed{7}') }, { '\\boxed{5}, 7', 'boxed' }, 'outer boxes only')
c.eq({ cluster.extract('\\boxed{3} \\boxed{4') }, { '3', 'boxed' }, 'an unclosed box does not count')
c.ok(cluster.equivalent(cluster.extract('\\boxed{1} and \\boxed{2}'), '\\{2, 1\\}'), 'two boxes are a set')
c.eq({ cluster.extract('Answer: $9$', { fallback = 'phrase' }) }, { '9', 'phrase' }, 'an unboxed answer')
c.raises(function() return cluster.extract('x', { boxes = 'first' }) end, "boxes must be 'all' or 'last'")
-- the math rule's options
c.ok(cluster.math('x = 5+5+1 = 7 = 11', '11'), 'a chain is its last side')
c.ok(not cluster.math{ chains = 'text' }('x = 5+5+1 = 7 = 11', '11'), "chains = 'text'")
c.ok(cluster.math('\\frac{NO}{BO}=\\frac{1}{\\sqrt6}', '\\frac{1}{\\sqrt6}'), 'a label before = is dropped')
c.ok(not cluster.math{ label = 'keep' }('\\frac{NO}{BO}=\\frac{1}{\\sqrt6}', '\\frac{1}{\\sqrt6}'), "label = 'keep'")
c.ok(cluster.math{ label = 'keep' }('x = 3', '3'), "label = 'keep' still reads x = 3 as 3")
c.raises(function() return cluster.math{ chains = 'first' } end, "chains must be 'last' or 'text'")
c.raises(function() return cluster.math{ bogus = 1 } end, "unknown option 'bogus'")
c.raises(function() return cluster.exact{ label = 'keep' } end, 'empo.cluster.exact')
c.eq({ cluster.extract('The answer is 5.') }, { '' }, 'no fallback by default')
c.eq({ cluster.extract('The answer is 5.', { fallback = 'phrase' }) }, { '5', 'phrase' })
c.eq({ cluster.extract('it is 7 or 8', { fallback = 'number' }) }, { '8', 'number' })
c.eq({ cluster.extract('it is 7 or 8', { fallback = true }) }, { '8', 'number' })
c.eq({ cluster.extract('answer: x', { fallback = 'both' }) }, { 'x', 'phrase' })
c.eq({ cluster.extract('') }, { '' })
c.eq({ cluster.extract('\\boxed{a\0b}') }, { 'a\0b', 'boxed' }, 'NUL bytes pass through')
c.raises(function() return cluster.extract(5) end, 'empo.cluster.extract', 'string')
c.raises(function() return cluster.extract('x', { fallback = 'last' }) end, "fallback must be 'phrase'")

-- the phrases live in Lua (cluster.PHRASES): the case file's fallback rows
-- (which the C extraction passes too) give the same answers through them
do
  local src = os.getenv('EMPO_SOURCE_DIR') or '.'
  local n, same = 0, 0
  for line in io.lines(src .. '/tests/cluster/extraction.tsv') do
    local flags, text, want = line:match('^[^#\t][^\t]*\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
    if flags and flags ~= '-' then
      text = text:gsub('<NL>', '\n'):gsub('<EMPTY>', ''):gsub('\\x(%x%x)', function(h) return string.char(tonumber(h, 16)) end)
      local fb = flags == 'P' and 'phrase' or flags == 'N' and 'number' or 'both'
      n = n + 1
      if cluster.extract(text, { fallback = fb, boxes = 'last' }) == (want == '<NONE>' and '' or want) then same = same + 1 end
    end
  end
  c.ok(n >= 40 and same == n, string.format('the case file\'s fallback rows through the Lua phrases: %d of %d', same, n))
end
-- the fallback order: a box, then the last phrase, then the last number
local function phrase(t) return { cluster.extract(t, { fallback = 'phrase' }) } end
c.eq(phrase('so the answer is 34'), { '34', 'phrase' }, '"so the answer is 34"')
c.eq(phrase('Checking each case, the largest n is 34.'), { '34', 'phrase' }, '"The largest n is 34." (the last sentence)')
c.eq(phrase('The sum is 5. Then we add 2 to get 7.'), { '' }, 'a "the ... is" before the last sentence is not the answer')
c.eq({ cluster.extract('The sum is 5. Then we add 2 to get 7.', { fallback = 'both' }) }, { '7', 'number' },
     'then the last number, when asked')
c.eq(phrase('I think the answer is 3. Wait, the answer is 4.'), { '4', 'phrase' }, 'the last phrase wins')
c.eq(phrase('x = \\boxed{5}. The answer is 6'), { '5', 'boxed' }, 'a box wins over any phrase')
c.eq(phrase('The final answer is: $\\frac{1}{2}$.'), { '\\frac{1}{2}', 'phrase' }, '$ and the final period trimmed')
c.eq(phrase('Reanswer is 5'), { '' }, 'a phrase starts after a non-letter')
c.eq({ cluster.extract('ergo 12', { fallback = 'phrase', phrases = { { lead = 'ergo' } } }) }, { '12', 'phrase' },
     "a recipe's own phrases")
c.raises(function() return cluster.extract('x', { fallback = 'phrase', phrases = { 'ergo' } }) end,
         'phrases[1] must be { lead = pattern')

-- ---- normalize / equivalent ----
c.eq(cluster.normalize('$\\left( \\dfrac{1}{2}, 3 \\right]$.'), '(\\frac{1}{2},3]')
c.eq(cluster.normalize('5\\text{ cm}'), '5')
c.eq(cluster.normalize('1,000,000'), '1000000')
c.eq(cluster.normalize(''), '')
c.ok(cluster.equivalent('\\frac12', '0.5'))
c.ok(not cluster.equivalent('3.14', '\\pi'))
c.ok(cluster.equivalent('3.14', '\\pi', 1e-3), 'rtol')
c.ok(cluster.equivalent('x = \\{1, 2\\}', '\\{2,1\\}'))
c.raises(function() return cluster.equivalent('1', nil) end, 'empo.cluster.equivalent', 'argument 2')

-- ---- built-in clusterers ----
local answers = { '1/2', '0.5', '', '\\frac{1}{2}', '3', '  ', ' 1/2 ' }
c.eq({ cluster.cluster(answers) }, { { 1, 1, 0, 1, 2, 0, 1 }, 2 }, 'math by default')
c.eq({ cluster.cluster(answers, cluster.exact) }, { { 1, 2, 0, 3, 4, 0, 1 }, 4 }, 'exact')
c.eq({ cluster.cluster({ '\\frac12', '\\dfrac12', '0.5' }, cluster.normalized) }, { { 1, 1, 2 }, 2 }, 'normalized')
c.eq({ empo.cluster(answers, cluster.math) }, { { 1, 1, 0, 1, 2, 0, 1 }, 2 }, 'the module is callable')
c.eq({ cluster.cluster({}) }, { {}, 0 }, 'empty group')
c.ok(cluster.math('\\frac12', '0.5'), 'a clusterer is a pairwise function too')
c.ok(not cluster.exact('\\frac12', '0.5'))
c.ok(not cluster.math('', ''), 'empty answers are never in a cluster')
local loose = cluster.math{ rtol = 1e-3 }
c.ok(loose('3.14', '\\pi') and not cluster.math('3.14', '\\pi'), 'math{ rtol } is a new clusterer')
c.eq({ cluster.cluster({ '3.14', '\\pi', '3.1416' }, loose) }, { { 1, 1, 1 }, 1 })
c.eq(tostring(cluster.math), 'empo.cluster.math')
c.ok(cluster.is_clusterer(cluster.math) and cluster.is_clusterer(loose) and not cluster.is_clusterer(print))
c.raises(function() return cluster.cluster({ 'a', 5 }) end, 'answer 2 must be a string')
c.raises(function() return cluster.cluster({ 'a' }, 42) end, 'a clusterer or a function')

-- ---- any Lua function (a, b, question) -> bool ----
local calls, seen_question, saw_empty = 0, nil, false
local function same_initial(a, b, q)
  calls = calls + 1
  seen_question = q
  if a == '' or b == '' then saw_empty = true end
  return a:sub(1, 1):lower() == b:sub(1, 1):lower()
end
local ids, k = cluster.cluster({ 'apple', 'Avocado', '', 'banana', 'apricot', 'Berry' }, same_initial, 'fruit?')
c.eq({ ids, k }, { { 1, 1, 0, 2, 1, 2 }, 2 })
c.eq(seen_question, 'fruit?', 'the question reaches the function')
c.ok(not saw_empty, 'empty answers are never compared')
-- pairs: (1,2) joins; (1,4) no; (1,5) joins; (1,6) no; (2,4) no; (2,6) no; (4,6) joins; 2-5 and 5-x skipped or asked
c.ok(calls <= 10 and calls >= 7, 'pairs already joined are not asked again (' .. calls .. ' calls)')
c.raises(function() cluster.cluster({ 'a', 'b' }, function() error('boom') end) end, 'boom')

-- ---- by_model: a verifier language model (here a fake) ----
local prompts = {}
local fake = { calls = 0 }
function fake:yes_no(prompt)
  self.calls = self.calls + 1
  prompts[#prompts + 1] = prompt
  local a = prompt:match('Reference answer: (.-)\n')
  local b = prompt:match('Candidate answer: (.-)\n')
  return (a:lower() == b:lower()) and 2.5 or -1.0, 0.0    -- logits of " Yes" and " No"
end
local v = cluster.by_model(fake)
c.ok(v('Paris', 'paris', 'Capital of France?'))
c.ok(prompts[1]:find('Question: Capital of France?', 1, true) and prompts[1]:find('Decision:$'), 'the default template')
c.ok(not v('Paris', 'Lyon'))
c.ok(v('x', 'x') and fake.calls == 2, 'identical answers need no model call')
fake.calls = 0
c.eq({ cluster.cluster({ 'Paris', 'paris', 'Lyon', 'PARIS', '' }, v, 'q') }, { { 1, 1, 2, 1, 0 }, 2 })
-- asked: (1,2) joins, (1,3), (1,4) joins, (2,3), (3,4); (2,4) is already joined, '' never asked
c.eq(fake.calls, 5, 'union-find skips joined pairs')
local custom = cluster.by_model(function(prompt) return prompt == 'A|B|q' and 0.9 or 0.1, 0.5 end, '{a}|{b}|{question}')
c.ok(custom('A', 'B', 'q') and not custom('A', 'C', 'q'), 'a plain function and a custom template')
c.eq(cluster.fill('{a} and {b} for {question}, {unknown}', { a = '%1', b = 'x', question = 'q' }), '%1 and x for q, {unknown}')
c.raises(function() cluster.by_model(function() return 'yes' end)('a', 'b') end, 'two numbers (yes, no)')
c.raises(function() cluster.by_model(42) end, "a function or an object with a 'yes_no' method")
-- a batched verifier judges a group in one call
local batched = { batches = 0 }
function batched:yes_no(prompt) error('the group path must use yes_no_batch') end
function batched:yes_no_batch(ps)
  self.batches = self.batches + 1
  local yes, no = {}, {}
  for i, p in ipairs(ps) do
    local a, b = p:match('Reference answer: (.-)\n'), p:match('Candidate answer: (.-)\n')
    yes[i], no[i] = (tonumber(a) and tonumber(b) and tonumber(a) == tonumber(b)) and 1 or 0, 0.5
  end
  return yes, no
end
c.eq({ cluster.cluster({ '1', '1.0', '2', '1', '', '2.00' }, cluster.by_model(batched)) }, { { 1, 1, 2, 1, 0, 2 }, 2 })
c.eq(batched.batches, 1, 'one batched call per group')
-- orders: a verifier that says yes to (x, y) (margin +2) and no to (y, x) (margin -1)
local function one_way(prompt)
  local a, b = prompt:match('^(.-)|(.-)$')
  return a < b and 2 or -1, 0
end
local one_way_batch = { yes_no = function(_, p) return one_way(p) end, calls = 0 }
function one_way_batch:yes_no_batch(ps)
  self.calls = self.calls + 1
  local yes, no = {}, {}
  for i, p in ipairs(ps) do yes[i], no[i] = one_way(p) end
  return yes, no
end
for _, verifier in ipairs({ one_way, one_way_batch }) do
  local how = type(verifier) == 'function' and 'pair by pair' or 'batched'
  local function ids(order, answers) return (cluster.cluster(answers, cluster.by_model(verifier, '{a}|{b}', { orders = order }))) end
  c.eq(ids('one', { 'x', 'y' }), { 1, 1 }, how .. ": orders 'one' asks (x, y): yes")
  c.eq(ids('one', { 'y', 'x' }), { 1, 2 }, how .. ": orders 'one' asks (y, x): no")
  c.eq(ids(nil, { 'y', 'x' }), { 1, 2 }, how .. ": 'one' is the default")
  c.eq(ids('either', { 'y', 'x' }), { 1, 1 }, how .. ": orders 'either': one yes merges")
  c.eq(ids('both', { 'x', 'y' }), { 1, 2 }, how .. ": orders 'both': one no keeps apart")
  c.eq(ids('mean', { 'y', 'x' }), { 1, 1 }, how .. ": orders 'mean': (2 - 1) / 2 > 0 merges")
end
one_way_batch.calls = 0
local either = cluster.by_model(one_way_batch, '{a}|{b}', { orders = 'either' })
cluster.prepare(either, { { answers = { 'y', 'x' } }, { answers = { 'x', 'z', 'y' } } })
c.eq(one_way_batch.calls, 1, 'prepare asks both orders of every pair in one call')
c.eq((cluster.cluster({ 'z', 'y' }, either)), { 1, 1 }, 'and the groups read them')
c.eq(one_way_batch.calls, 1, 'without another call')
c.raises(function() cluster.by_model(one_way, '{a}|{b}', { orders = 'some' }) end, "orders must be 'one', 'either', 'both' or 'mean'")

-- ---- by_embedding: cosine similarity of embeddings (here a fake embedder) ----
local vectors = { cat = { 1, 0, 0 }, kitten = { 0.95, 0.1, 0 }, dog = { 0, 1, 0 }, puppy = { 0.1, 0.96, 0.05 }, car = { 0, 0, 1 } }
local embedder = { embedded = 0 }
function embedder:embed(text) self.embedded = self.embedded + 1; return vectors[text] end
local e = cluster.by_embedding(embedder, 0.9)
c.ok(e('cat', 'kitten') and not e('cat', 'dog'))
embedder.embedded = 0
c.eq({ cluster.cluster({ 'cat', 'dog', 'kitten', 'car', 'puppy', 'cat', '' }, e) }, { { 1, 2, 1, 3, 2, 1, 0 }, 3 })
c.eq(embedder.embedded, 5, 'each distinct answer is embedded once per group')
c.eq({ cluster.cluster({ 'cat', 'kitten' }, cluster.by_embedding(embedder, 0.999)) }, { { 1, 2 }, 2 }, 'threshold')
local tensor_embed = cluster.by_embedding(function(text) return empo.tensor(vectors[text]) end)
c.ok(tensor_embed('dog', 'puppy') and not tensor_embed('dog', 'car'), 'tensor embeddings, default threshold 0.9')
c.near(cluster.cosine({ 1, 0 }, { 1, 1 }), math.sqrt(0.5), 1e-12)
c.raises(function() cluster.by_embedding(function() return 'v' end)('a', 'b') end, 'non-empty array of numbers')
c.raises(function() cluster.by_embedding(function(t) return t == 'a' and { 1, 0 } or { 1 } end)('a', 'b') end,
         'embeddings of sizes 2 and 1')

-- ---- every function of core/include/empo/cluster.h is in the FFI binding ----
local src = os.getenv('EMPO_SOURCE_DIR')
if src then
  local f = io.open(src .. '/core/include/empo/cluster.h')
  local text = f and f:read('*a'):gsub('/%*.-%*/', '')
  if f then f:close() end
  local n = 0
  for name in (text or ''):gmatch('(empo_cluster_[%w_]+)%s*%(') do
    n = n + 1
    c.ok(pcall(function() return empo.ffi.C[name] end), name .. ' resolves')
  end
  c.eq(n, 7, 'functions declared in empo/cluster.h')
end

c.done()
