-- cli.recipe — what `empo run FILE k=v ...` does with the value its script
-- returned: an empo.recipe{...} (recipes/math.lua) is trained to the end
-- (accuracy before, the steps, accuracy after); anything else is ignored,
-- except a script that built a recipe and returned something else (a
-- forgotten `return`), which is told so. A failure is one line naming what
-- was wrong (the field, the file and line), without the Lua traceback or
-- the library's own file names unless EMPO_TRACEBACK=1. The exit status is
-- returned. Part of the command, not the library.

-- A message as the user sees it: no "…/lua/empo/x.lua:12: " prefixes.
local function user_words(err)
  return (tostring(err):gsub('[^%s:]*lua/empo/[^%s:]*%.lua:%d+: ', ''):gsub('^[^%s:]*lua/cli/[^%s:]*%.lua:%d+: ', ''))
end

-- A recipe run to the end: accuracy on recipe.eval before and after, the
-- run directory, the trained model.
local function main(t, args)
  local trainer_mod = require 'empo.rl.trainer'
  local empo = require 'empo'
  local list = {}
  for i = 1, #(args or {}) do list[i] = args[i] end     -- the script's arg[1..]: key=value strings
  local trainer = trainer_mod.new(t, list, arg and arg[0])
  local evalset = trainer.recipe.eval
  local eval_mod = require 'empo.rl.eval'
  local function report(when)                          -- (under mpirun: every rank evaluates its share, rank 0 says)
    local r = trainer:eval(evalset)
    if not trainer.is_main then return r end
    print(when .. eval_mod.table(r))
    print(string.rep(' ', #when) .. eval_mod.diagnosis(r))
    io.stdout:flush()
    return r
  end
  if evalset then report('before: ') end
  trainer:run()
  if trainer.stopped then   -- (a stop asked from `empo attach` is the user's wish: status 0)
    trainer:close()
    return trainer, trainer.stopped == require('empo.rl.data_parallel').ATTACH_STOP and 0 or empo.stop.exit_status(trainer.stopped)
  end
  if evalset then report('after:  ') end
  if trainer.run_dir then print('run written to ' .. trainer.run_dir .. '/ (model: ' .. trainer:save() .. ')') end   -- (rank 0's)
  trainer:close()
  return trainer, 0
end

return function(value)
  local recipe_mod = package.loaded['empo.rl.recipe']
  if not (recipe_mod and recipe_mod.is_recipe(value)) then
    if recipe_mod and arg and arg[0] and recipe_mod.made_in[arg[0]] then
      io.stderr:write(string.format('empo: %s built an empo.recipe{...} but returned %s: end the file with ' ..
                                    '`return empo.recipe{ ... }`\n', arg[0],
                                    value == nil and 'nothing' or 'a ' .. type(value)))
      return 1
    end
    return 0
  end
  local tb = os.getenv('EMPO_TRACEBACK')
  if tb and tb ~= '' and tb ~= '0' then
    local _, status = main(value, arg)
    return status
  end
  local ok, err, status = pcall(main, value, arg)
  if ok then return status end
  io.stdout:flush()
  io.stderr:write('empo: ', user_words(err), '\n(EMPO_TRACEBACK=1 shows where in the library)\n')
  return 1
end
