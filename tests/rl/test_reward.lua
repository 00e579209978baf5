-- tests/rl/test_reward.lua — empo.reward: EMPO's cluster share, majority (TTRL), gold (supervised),
-- their options and refusals, on the running example.
local check = require 'check'
local empo = require 'empo'
local ex = require 'running_example'
local c = check.new('test_reward')
local rl, reward, g = empo.rl, empo.reward, ex.group
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
c.done()
