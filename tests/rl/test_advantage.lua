-- tests/rl/test_advantage.lua — empo.advantage: GRPO (both divisors), Dr.GRPO and RLOO against
-- hand-computed values; one-completion groups; refusals.
local check = require 'check'
local empo = require 'empo'
local ex = require 'running_example'
local c = check.new('test_advantage')
local advantage, g, dev, want = empo.advantage, ex.group, ex.dev, ex.grpo
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
c.done()
