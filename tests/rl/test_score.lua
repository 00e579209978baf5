-- tests/rl/test_score.lua — empo.rl.score: the pipeline with the defaults on the running example,
-- and a recipe-level swap of every piece for the recipe's own functions.
local check = require 'check'
local empo = require 'empo'
local ex = require 'running_example'
local c = check.new('test_score')
local rl, advantage, g, ids, want = empo.rl, empo.advantage, ex.group, ex.ids, ex.grpo
c.eq(g.answers, { 'a', 'a', 'a', 'b', 'b', 'c', '', '' })
c.eq({ g.ids, g.k, g.G, g.question, g.keep }, { ids, 3, 8, 'which letter?', true })
c.near(g.stats.entropy, 1.4941751382893083, 1e-12)
c.eq(g.rewards, { 3 / 8, 3 / 8, 3 / 8, 1 / 4, 1 / 4, 1 / 8, 0, 0 })
c.near(g.advantages, want, 1e-12, 'GRPO advantages')
c.near(g.advantages, { 0.9752307850883372, 0.9752307850883372, 0.9752307850883372, 0.19504615701766745,
                       0.19504615701766745, -0.5851384710530023, -1.365323099123672, -1.365323099123672 }, 1e-12)

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