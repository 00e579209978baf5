-- empo.loss — the public name as a module path, so that `require 'empo.loss'` gives
-- empo.loss; the code lives in empo.rl.loss.
return require 'empo.rl.loss'
