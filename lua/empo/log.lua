-- empo.log — the run-logging module's old path: `require 'empo.log'` gives
-- empo.logger (empo.log itself is the elementwise op); the code lives in empo.run.log.
return require 'empo.run.log'
