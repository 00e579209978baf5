-- empo.config — the public name as a module path, so that `require 'empo.config'` gives
-- empo.config; the code lives in empo.run.config.
return require 'empo.run.config'
