-- tests/train/test_schedule.lua — empo.train.schedule: constant, linear and
-- cosine after a linear warmup, at their ends and in between, and the
-- settings they refuse.
local check = require 'check'
local empo = require 'empo'
local S = empo.train.schedule
local c = check.new('test_schedule')

c.eq(S.constant(3e-4)(1), 3e-4, 'constant from a number')
c.eq(S.constant{ lr = 2e-4 }(500), 2e-4, 'constant from a table')

local lin = S.linear{ lr = 1.0, warmup = 4, total = 14, min_lr = 0.1 }
c.near(lin(1), 0.25, 1e-12, 'linear: warmup starts at lr / warmup')
c.near(lin(4), 1.0, 1e-12, 'linear: lr at the end of the warmup')
c.near(lin(9), 0.55, 1e-12, 'linear: halfway down to min_lr')
c.near(lin(14), 0.1, 1e-12, 'linear: min_lr at total')
c.near(lin(100), 0.1, 1e-12, 'linear: and after')

local cos = S.cosine{ lr = 1.0, warmup = 0, total = 10 }
c.near(cos(1), 0.5 * (1 + math.cos(math.pi * 0.1)), 1e-12, 'cosine without warmup: step 1 already decays (steps count from 1)')
c.near(cos(5), 0.5, 1e-12, 'cosine: half at the middle')
c.near(cos(10), 0.0, 1e-12, 'cosine: min_lr (0) at total')
local prev, monotone = math.huge, true
for step = 1, 10 do local v = cos(step); monotone = monotone and v <= prev; prev = v end
c.ok(monotone, 'cosine decays monotonically')

c.raises(function() return S.cosine{ lr = 1.0 } end, 'lr and total are required')
c.raises(function() return S.linear{ lr = 1.0, total = 10, warmup = -5 } end, 'warmup must be an integer >= 0, got -5')
c.raises(function() return S.linear{ lr = 0 / 0, total = 10 } end, 'lr must be a finite number >= 0')
c.raises(function() return S.cosine{ lr = 1, total = 10, min_lr = -1 } end, 'min_lr must be')
c.raises(function() return S.cosine{ lr = 1, total = 0 } end, 'total must be a number >= 1')
c.done()
