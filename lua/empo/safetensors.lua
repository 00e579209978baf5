-- empo.safetensors — the public name as a module path, so that `require 'empo.safetensors'` gives
-- empo.safetensors; the code lives in empo.io.safetensors.
return require 'empo.io.safetensors'
