-- cli.recipe — what `empo run FILE k=v ...` does with a table its script
-- returned: an empo.recipe{...} (recipes/math.lua) is trained to the end
-- (empo.rl.trainer.main: accuracy before, the steps, accuracy after); any
-- other table is ignored. A failure is one line naming what was wrong (the
-- field, the file and line), without the Lua traceback unless
-- EMPO_TRACEBACK=1. The exit status is returned. Part of the command, not
-- the library.
local trainer = require 'empo.rl.trainer'

return function(value)
  if not trainer.is_recipe(value) then return 0 end
  local tb = os.getenv('EMPO_TRACEBACK')
  if tb and tb ~= '' and tb ~= '0' then
    trainer.main(value, arg)
    return 0
  end
  local ok, err = pcall(trainer.main, value, arg)
  if ok then return 0 end
  io.stdout:flush()
  io.stderr:write('empo: ', tostring(err), '\n(EMPO_TRACEBACK=1 shows where in the library)\n')
  return 1
end
