-- tests/rl/test_stats.lua — empo.rl.stats: shares and semantic entropy of a clustering, against hand-computed values,
-- for each way of counting empty answers; the largest cluster's rule.
local check = require 'check'
local empo = require 'empo'
local ex = require 'running_example'
local c = check.new('test_stats')
local rl, ids = empo.rl, ex.ids
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
c.done()
