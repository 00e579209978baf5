-- recipes/rent.lua — RENT / EM-RL: the negative mean token entropy as the reward.
-- Everything else is recipes/math.lua's; any field can be overridden as key=value.
--
--     empo run recipes/rent.lua model=DIR data=train.jsonl eval=test.jsonl
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

return empo.recipe_from(here .. 'math.lua', { name = 'rent', reward = empo.reward.neg_entropy, filter = empo.filter.none })
