-- empo.sample — the public name as a module path, so that `require 'empo.sample'` gives
-- empo.sample; the code lives in empo.generate.sample.
return require 'empo.generate.sample'
