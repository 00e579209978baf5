-- empo.cluster — the public name as a module path, so that `require 'empo.cluster'` gives
-- empo.cluster; the code lives in empo.rl.cluster.
return require 'empo.rl.cluster'
