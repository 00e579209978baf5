-- tests/rl/test_filter.lua — empo.filter: entropy and confidence windows, distinct, all, at and
-- around their bounds.
local check = require 'check'
local empo = require 'empo'
local ex = require 'running_example'
local c = check.new('test_filter')
local rl, filter, g = empo.rl, empo.filter, ex.group
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
c.done()
