-- cli.recipe — what `empo run FILE k=v ...` does with a table its script
-- returned: an empo.recipe{...} (recipes/math.lua) is trained to the end
-- (empo.rl.trainer.main: accuracy before, the steps, accuracy after); any
-- other table is ignored. The exit status is returned. Part of the
-- command, not the library.
local trainer = require 'empo.rl.trainer'

return function(value)
  if not trainer.is_recipe(value) then return 0 end
  trainer.main(value, arg)
  return 0
end
