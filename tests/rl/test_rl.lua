-- tests/rl/test_rl.lua — group statistics, rewards, filters and advantages
-- against hand-computed values, the empo.rl.score pipeline, and a
-- recipe-level swap of the clustering function and the filter for the
-- recipe's own functions.
--
-- The running example: G = 8 answers {a, a, a, b, b, c, none, none}.
--   shares (empty answers as singletons, the reference): 3/8 3/8 3/8 2/8 2/8 1/8 1/8 1/8
--   H = -(3/8 ln 3/8 + 1/4 ln 1/4 + 3 * 1/8 ln 1/8) = 1.4941751382893083
--   EMPO rewards r = 3/8 3/8 3/8 1/4 1/4 1/8 0 0 (empty answers get 0), mean 7/32
--   Dr.GRPO r - mean = 5/32 5/32 5/32 1/32 1/32 -3/32 -7/32 -7/32
--   RLOO (G/(G-1)) (r - mean) = 5/28 5/28 5/28 1/28 1/28 -3/28 -1/4 -1/4
--   GRPO std (n - 1) = sqrt(23/128 / 7); A = (r - mean) / (std + 1e-6)
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_rl')
local rl, reward, filter, advantage = empo.rl, empo.reward, empo.filter, empo.advantage

local completions = {
  'so \\boxed{a}', 'hence \\boxed{a}', '\\boxed{a}', '\\boxed{b}', 'thus \\boxed{ b }', '\\boxed{c}',
  'I give up', 'the answer is a',      -- no box: empty answers (no fallback)
}

-- ---- statistics ----
local ids = { 1, 1, 1, 2, 2, 3, 0, 0 }
local st = rl.stats(ids)
c.near(st.entropy, 1.4941751382893083, 1e-12, 'entropy, singleton empties')
c.eq(st.shares, { 3 / 8, 3 / 8, 3 / 8, 2 / 8, 2 / 8, 1 / 8, 1 / 8, 1 / 8 })
c.eq({ st.max_share, st.n_clusters, st.n_empty, st.G }, { 3 / 8, 3, 2, 8 })
c.eq(st.sizes, { 3, 2, 1 })
c.eq({ st.largest, rl.stats({ 0, 1, 2, 2, 1 }).largest, rl.stats({ 0, 0 }).largest }, { 1, 1, 0 },
     'the largest cluster: the first on a tie, 0 when every answer is empty')
local st2 = rl.stats(ids, { empty = 'cluster' })
c.near(st2.entropy, 1.3208883431493221, 1e-12, 'entropy, empties as one cluster')
c.eq({ st2.shares[7], st2.shares[8] }, { 0.25, 0.25 })
local st3 = rl.stats(ids, { empty = 'drop' })
c.near(st3.entropy, 1.0114042647073516, 1e-12, 'entropy, empties dropped')
c.near(st3.shares, { 0.5, 0.5, 0.5, 1 / 3, 1 / 3, 1 / 6, 0, 0 }, 1e-15)
c.eq(st3.max_share, 0.5)
c.eq(rl.stats({ 1, 1, 1, 1 }).entropy, 0, 'all the same: H = 0')
c.near(rl.stats({ 1, 2, 3, 4 }).entropy, math.log(4), 1e-15, 'all distinct: H = log G')
c.near(rl.stats({ 0, 0, 0, 0 }).entropy, math.log(4), 1e-15, 'all empty, singletons')
c.eq(rl.stats({ 0, 0, 0, 0 }, { empty = 'drop' }).entropy, 0)
c.raises(function() rl.stats({ 1, 5 }) end, 'ids[2] = 5 is not a cluster id in 0..2')
c.raises(function() rl.stats({ 1 }, { empty = 'skip' }) end, "empty must be 'singleton', 'cluster' or 'drop'")

-- ---- the pipeline with the defaults (math clustering, cluster share, GRPO) ----
local g = rl.score(completions, { question = 'which letter?' })
c.eq(g.answers, { 'a', 'a', 'a', 'b', 'b', 'c', '', '' })
c.eq({ g.ids, g.k, g.G, g.question, g.keep }, { ids, 3, 8, 'which letter?', true })
c.near(g.stats.entropy, 1.4941751382893083, 1e-12)
c.eq(g.rewards, { 3 / 8, 3 / 8, 3 / 8, 1 / 4, 1 / 4, 1 / 8, 0, 0 })
local std = math.sqrt(23 / 128 / 7)
local dev = { 5 / 32, 5 / 32, 5 / 32, 1 / 32, 1 / 32, -3 / 32, -7 / 32, -7 / 32 }
local want = {}
for i = 1, 8 do want[i] = dev[i] / (std + 1e-6) end
c.near(g.advantages, want, 1e-12, 'GRPO advantages')
c.near(g.advantages, { 0.9752307850883372, 0.9752307850883372, 0.9752307850883372, 0.19504615701766745,
                       0.19504615701766745, -0.5851384710530023, -1.365323099123672, -1.365323099123672 }, 1e-12)

-- ---- rewards ----
c.eq(reward.cluster_share(g), { 3 / 8, 3 / 8, 3 / 8, 1 / 4, 1 / 4, 1 / 8, 0, 0 })
c.eq(reward.cluster_share{ empty = -0.5 }(g), { 3 / 8, 3 / 8, 3 / 8, 1 / 4, 1 / 4, 1 / 8, -0.5, -0.5 })
c.near(reward.cluster_share{ log = true }(g), { math.log(3 / 8), math.log(3 / 8), math.log(3 / 8), math.log(1 / 4),
                                                math.log(1 / 4), math.log(1 / 8), 0, 0 }, 1e-15)
c.eq(reward.majority(g), { 1, 1, 1, 0, 0, 0, 0, 0 })
c.eq(reward.majority{ empty = -1 }(g), { 1, 1, 1, 0, 0, 0, -1, -1 })
local tie = rl.score({ '\\boxed{1}', '\\boxed{2}', '\\boxed{2}', '\\boxed{1}', '' }, {})
c.eq(reward.majority(tie), { 1, 1, 1, 1, 0 }, 'ties: every largest cluster')
c.eq(reward.majority{ ties = 'first' }(tie), { 1, 0, 0, 1, 0 }, 'ties: the first largest cluster')
local sup = rl.score({ '\\boxed{\\frac12}', '\\boxed{0.5}', '\\boxed{2}', '' }, { gold = '1/2' })
c.eq(reward.gold(sup), { 1, 1, 0, 0 }, 'gold match (math equivalence)')
c.eq(reward.gold{ equivalent = empo.cluster.exact, empty = -1 }(sup), { 0, 0, 0, -1 })
c.raises(function() reward.gold(g) end, 'no gold answer')
c.raises(function() reward.cluster_share{ emtpy = 1 } end, "unknown option 'emtpy'", 'options: empty, log')
c.raises(function() reward.cluster_share(42) end, 'expected a group')
c.eq(tostring(reward.cluster_share), 'empo.reward.cluster_share')

-- ---- filters ----
local function group_of(answers) return rl.score(answers, { extract = false }) end
local same, distinct = group_of({ '1', '1', '1', '1' }), group_of({ '1', '2', '3', '4' })
c.ok(filter.entropy(g), 'default window [0, log G) keeps H = 1.49 < log 8')
c.ok(not filter.entropy(distinct), 'all distinct: H = log G is dropped')
c.ok(filter.entropy(same), 'all the same: H = 0 is kept by low = 0')
c.ok(not filter.entropy{ low = 0.1 }(same), 'low = 0.1 drops H = 0')
c.ok(filter.entropy{ high = 0.75 * math.log(8) }(g), "DESIGN.md's window: H = 1.494 < 0.75 log 8 = 1.560, kept")
c.ok(filter.entropy{ high = 1.5 }(g) and not filter.entropy{ high = 1.49 }(g), 'high bound is exclusive around H')
c.ok(filter.entropy{ low = 1.4941751382893083 }(g), 'low bound is inclusive')
c.ok(filter.confidence(g) and not filter.confidence{ low = 0.4 }(g), 'max share 3/8 in [0.3, 1], not in [0.4, 1]')
c.ok(filter.confidence(same) and not filter.confidence{ high = 0.9 }(same))
c.ok(filter.distinct(g) and filter.distinct(same) and not filter.distinct(distinct))
c.ok(not filter.distinct(group_of({ '', '', '' })), 'all empty: nothing to learn')
c.ok(filter.all{ filter.distinct, filter.confidence }(g) and not filter.all{ filter.distinct, filter.none }(distinct))

-- ---- advantages ----
local r = g.rewards
c.near(advantage.dr_grpo(r), dev, 1e-15, 'Dr.GRPO')
c.near(advantage.rloo(r), { 5 / 28, 5 / 28, 5 / 28, 1 / 28, 1 / 28, -3 / 28, -1 / 4, -1 / 4 }, 1e-15, 'RLOO')
c.near(advantage.grpo(r, g), want, 1e-12)
local pstd = math.sqrt(23 / 128 / 8)
local biased = {}
for i = 1, 8 do biased[i] = dev[i] / (pstd + 1e-4) end
c.near(advantage.grpo{ unbiased = false, eps = 1e-4 }(r), biased, 1e-12, 'GRPO with the n divisor and eps 1e-4')
c.eq(advantage.grpo({ 1, 1, 1 }), { 0, 0, 0 }, 'equal rewards: zero advantage')
c.eq({ advantage.grpo({ 5 }), advantage.rloo({ 5 }), advantage.dr_grpo({ 5 }) }, { { 0 }, { 0 }, { 0 } }, 'G = 1')
c.raises(function() advantage.grpo({ 1, 'x' }) end, 'reward 2 is a string')

-- ---- a recipe swaps in its own pieces ----
local used = { cluster = 0, filter = 0, reward = 0, advantage = 0 }
local recipe = {
  cluster = function(a, b, question)        -- same parity of the number
    used.cluster = used.cluster + 1
    assert(question == 'parity?')
    return tonumber(a) % 2 == tonumber(b) % 2
  end,
  filter = function(group) used.filter = used.filter + 1; return group.k == 2 end,
  reward = function(group)
    used.reward = used.reward + 1
    local out = {}
    for i = 1, group.G do out[i] = group.ids[i] == 1 and 1 or 0 end
    return out
  end,
  advantage = function(rewards, group) used.advantage = used.advantage + 1; return advantage.rloo(rewards) end,
  empty = 'drop',
  question = 'parity?',
}
local rg = rl.score({ '\\boxed{1}', '\\boxed{3}', '\\boxed{2}', '\\boxed{5}', 'no box' }, recipe)
c.eq(rg.ids, { 1, 1, 2, 1, 0 }, 'the recipe clusters by parity')
c.ok(used.cluster > 0 and used.filter == 1 and used.reward == 1 and used.advantage == 1, 'every piece was used')
c.eq({ rg.keep, rg.rewards }, { true, { 1, 1, 0, 1, 0 } })
c.near(rg.stats.shares, { 0.75, 0.75, 0.25, 0.75, 0 }, 1e-15, "the recipe's empty = 'drop'")
c.near(rg.advantages, advantage.rloo({ 1, 1, 0, 1, 0 }), 1e-15)
-- the same recipe with a built-in filter that rejects the group
recipe.filter = empo.filter.entropy{ high = 0.1 }
c.ok(not rl.score({ '\\boxed{1}', '\\boxed{2}' }, recipe).keep, 'a built-in filter in a recipe')
recipe.reward = function() return { 1 } end
c.raises(function() rl.score({ '\\boxed{1}', '\\boxed{2}' }, recipe) end, 'must return 2 numbers')

c.done()
