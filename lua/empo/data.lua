-- empo.data — the public name as a module path, so that `require 'empo.data'` gives
-- empo.data; the code lives in empo.train.data.
return require 'empo.train.data'
