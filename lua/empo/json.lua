-- empo.json — the public name as a module path, so that `require 'empo.json'` gives
-- empo.json; the code lives in empo.io.json.
return require 'empo.io.json'
