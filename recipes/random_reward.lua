-- recipes/random_reward.lua — the control: a Bernoulli(0.5) reward per completion; a gain under it is
-- an artefact of the update, not of the reward.
-- Everything else is recipes/math.lua's; any field can be overridden as key=value.
--
--     empo run recipes/random_reward.lua model=DIR data=train.jsonl eval=test.jsonl
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

return empo.recipe_from(here .. 'math.lua', { name = 'random_reward', reward = empo.reward.random, filter = empo.filter.none })
