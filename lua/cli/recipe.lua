-- cli.recipe — what `empo run FILE k=v ...` does with a table its script
-- returned: an empo.recipe{...} (recipes/math.lua) is trained to the end
-- (accuracy before, the steps, accuracy after); any
-- other table is ignored. A failure is one line naming what was wrong (the
-- field, the file and line), without the Lua traceback unless
-- EMPO_TRACEBACK=1. The exit status is returned. Part of the command, not
-- the library.
local trainer_mod = require 'empo.rl.trainer'
local recipe_mod = require 'empo.rl.recipe'
local empo = require 'empo'

-- A recipe run to the end: accuracy on recipe.eval before and after, the
-- run directory, the trained model.
local function main(t, args)
  local list = {}
  for i = 1, #(args or {}) do list[i] = args[i] end     -- the script's arg[1..]: key=value strings
  local trainer = trainer_mod.new(t, list)
  local evalset = trainer.recipe.eval
  local eval_mod = require 'empo.rl.eval'
  local function report(when)
    local r = trainer:eval(evalset)
    print(when .. eval_mod.table(r))
    print(string.rep(' ', #when) .. eval_mod.diagnosis(r))
    io.stdout:flush()
    return r
  end
  if evalset then report('before: ') end
  trainer:run()
  if trainer.stopped then return trainer, empo.stop.exit_status(trainer.stopped) end
  if evalset then report('after:  ') end
  if trainer.run_dir then print('run written to ' .. trainer.run_dir .. '/ (model: ' .. trainer:save() .. ')') end
  return trainer, 0
end

return function(value)
  if not recipe_mod.is_recipe(value) then return 0 end
  local tb = os.getenv('EMPO_TRACEBACK')
  if tb and tb ~= '' and tb ~= '0' then
    local _, status = main(value, arg)
    return status
  end
  local ok, err, status = pcall(main, value, arg)
  if ok then return status end
  io.stdout:flush()
  io.stderr:write('empo: ', tostring(err), '\n(EMPO_TRACEBACK=1 shows where in the library)\n')
  return 1
end
