-- recipes/intuitor.lua — Intuitor: the self-certainty reward, the mean over a
-- completion's tokens of KL(uniform || p); no answer clustering needed.
-- Everything else is recipes/math.lua's; any field can be overridden as key=value.
--
--     empo run recipes/intuitor.lua model=DIR data=train.jsonl eval=test.jsonl
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

return empo.recipe_from(here .. 'math.lua', { name = 'intuitor', reward = empo.reward.self_certainty,
                                              filter = empo.filter.none })
