-- recipes/grpo_gold.lua — supervised GRPO, the upper baseline: reward 1 when the answer equals the
-- gold one (the data must carry answers).
-- Everything else is recipes/math.lua's; any field can be overridden as key=value.
--
--     empo run recipes/grpo_gold.lua model=DIR data=train.jsonl eval=test.jsonl
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

return empo.recipe_from(here .. 'math.lua', { name = 'grpo_gold', reward = empo.reward.gold, filter = empo.filter.none })
