-- empo.models — the public name as a module path, so that `require 'empo.models'` gives
-- empo.models; the code lives in empo.nn.models.
return require 'empo.nn.models'
