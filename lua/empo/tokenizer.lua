-- empo.tokenizer — the public name as a module path, so that `require 'empo.tokenizer'` gives
-- empo.tokenizer; the code lives in empo.text.tokenizer.
return require 'empo.text.tokenizer'
