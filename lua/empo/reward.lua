-- empo.reward — the public name as a module path, so that `require 'empo.reward'` gives
-- empo.reward; the code lives in empo.rl.reward.
return require 'empo.rl.reward'
