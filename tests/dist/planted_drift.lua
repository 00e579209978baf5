-- tests/dist/planted_drift.lua — recipes/math.lua whose rank 1 changes one
-- weight after step 2 (the recipe's log hook), with a lockstep check every
-- step: the run must stop at step 3 naming rank 1, with checkpoint-2 (the
-- last good one) intact. Run by tests/dist/trainer.sh under mpirun -np 2.
local empo = require 'empo'
local src = os.getenv('EMPO_SOURCE_DIR') or '.'
return empo.recipe_from(src .. '/recipes/math.lua', {
  dist = { checksum_every = 1 },
  log = function(rec, t)
    if rec.step == 2 and empo.dist.rank() == 1 then
      local w = t.params[1]
      w:detach():copy_(w:detach() * 1.001)
    end
  end,
})
