-- empo.stop — the public name as a module path, so that `require 'empo.stop'` gives
-- empo.stop; the code lives in empo.run.stop.
return require 'empo.run.stop'
