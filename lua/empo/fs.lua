-- empo.fs — the public name as a module path, so that `require 'empo.fs'` gives
-- empo.fs; the code lives in empo.io.fs.
return require 'empo.io.fs'
