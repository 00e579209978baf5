-- empo.prompt — the public name as a module path, so that `require 'empo.prompt'` gives
-- empo.prompt; the code lives in empo.text.prompt.
return require 'empo.text.prompt'
