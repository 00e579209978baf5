-- empo.logger — the public name as a module path, so that `require 'empo.logger'` gives
-- empo.logger; the code lives in empo.run.log.
return require 'empo.run.log'
