-- recipes/ttrl.lua — TTRL: test-time RL, the majority-vote reward (1 for the largest
-- cluster's completions), every group kept.
-- Everything else is recipes/math.lua's; any field can be overridden as key=value.
--
--     empo run recipes/ttrl.lua model=DIR data=train.jsonl eval=test.jsonl
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

return empo.recipe_from(here .. 'math.lua', { name = 'ttrl', reward = empo.reward.majority, filter = empo.filter.none })
