-- empo.advantage — the public name as a module path, so that `require 'empo.advantage'` gives
-- empo.advantage; the code lives in empo.rl.advantage.
return require 'empo.rl.advantage'
