-- empo.filter — the public name as a module path, so that `require 'empo.filter'` gives
-- empo.filter; the code lives in empo.rl.filter.
return require 'empo.rl.filter'
