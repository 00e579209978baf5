-- recipes/trips/diagnose.lua — what a base model of the trips world does
-- before any RL, on the held-out test set, graded by meaning (the world's
-- equivalence rules): greedy, avg@k, maj@k, pass@k; then, on the questions
-- greedy gets wrong, how often each clustering's largest cluster is the
-- right answer — exact strings, normalised strings, the oracle (meaning):
-- a strict plurality that is right, one that is wrong, or a tie (no
-- strict plurality: the cluster-share reward then gives the tied answers
-- the same reward; all singletons gives every sample the same). EMPO can only lift
-- greedy where its clustering's vote is right: the world is built so that
-- the vote by meaning is, while the vote by string mostly is not.
--
--     empo run recipes/trips/diagnose.lua [model=models/trips-base] [eval=data/trips/test.jsonl] [k=8] [n=0]
local empo = require 'empo'
local eval = require 'empo.rl.eval'
local rl = require 'empo.rl'
local trips = require 'empo.world.trips'

local cfg = empo.config.apply({ model = 'models/trips-base', eval = 'data/trips/test.jsonl', k = 8, n = 0 },
                              arg, 'trips/diagnose')
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.'
local t = empo.rl.trainer(here .. '/../natural.lua', { model = cfg.model, eval = cfg.eval, data = cfg.eval,
                                                       ['sample.n'] = cfg.k, cluster = trips.oracle, name = '' })
local set = t.recipe.eval:list(cfg.n > 0 and cfg.n or nil)     -- (the records, in file order)
local r = t:eval(set, { details = true })
print(eval.table(r))

local rules = { { 'exact strings', empo.cluster.exact }, { 'normalised strings', empo.cluster.normalized },
                { 'meaning (oracle)', trips.oracle } }
local wrong, guess_greedy, guess_samples = 0, 0, 0
local votes = {}
for i in ipairs(rules) do votes[i] = { right = 0, wrong = 0, tie = 0, singletons = 0 } end
local function answer_of(text) return (empo.cluster.extract(text, { fallback = 'phrase' })) end
for q, d in ipairs(r.details) do
  local gold, question = trips.meaning(set[q].answer), set[q].question
  if d.greedy:find('^Roughly') then guess_greedy = guess_greedy + 1 end
  local answers = {}
  for j, s in ipairs(d.samples) do
    answers[j] = answer_of(s)
    if s:find('^Roughly') then guess_samples = guess_samples + 1 end
  end
  if trips.meaning(answer_of(d.greedy)) ~= gold then
    wrong = wrong + 1
    for i, rule in ipairs(rules) do
      local ids = rl.cluster.cluster(answers, rule[2], question)
      local st, v = rl.stats(ids), votes[i]
      local top, ties = nil, 0
      for _, size in pairs(st.sizes) do if size == st.sizes[st.largest] then ties = ties + 1 end end
      for j = 1, #answers do if ids[j] == st.largest and st.largest > 0 then top = answers[j]; break end end
      if st.n_clusters == #answers - st.n_empty then v.singletons = v.singletons + 1 end
      if not top or ties > 1 then v.tie = v.tie + 1
      elseif trips.meaning(top) == gold then v.right = v.right + 1 else v.wrong = v.wrong + 1 end
    end
  end
end
print(string.format('greedy wrong on %d of %d questions; on those, the vote of %d samples under each clustering:',
                    wrong, r.n, r.k))
print(string.format('  %-20s %14s %14s %10s %16s', '', 'right (strict)', 'wrong (strict)', 'tie', '(all singletons)'))
local function pct(x) return string.format('%.1f%%', 100 * x / math.max(wrong, 1)) end
for i, rule in ipairs(rules) do
  local v = votes[i]
  print(string.format('  %-20s %14s %14s %10s %16s', rule[1], pct(v.right), pct(v.wrong), pct(v.tie), pct(v.singletons)))
end
print(string.format('solutions that guess: greedy %.1f%%, samples %.1f%%', 100 * guess_greedy / r.n,
                    100 * guess_samples / (r.n * r.k)))
print('example (greedy): ' .. r.details[1].greedy:gsub('\n', ' | '))
