-- cli.rescore — the `empo rescore` command: a run's stored rollouts
-- (runs/<name>/rollouts/, empo.rl.rollout_store) scored again under
-- another reward, clustering, filter or advantage, without sampling
-- (empo.rl.rescore), printed beside what the run itself did. Part of the
-- command, not of the library.
--
--     empo rescore runs/math reward=majority
--     empo rescore runs/math cluster=exact filter=none
local empo = require 'empo'

local USAGE = [[
usage: empo rescore RUN_DIR [key=value ...]

The groups RUN_DIR's run stored (RUN_DIR/rollouts/, kept every step while
the recipe field rollouts.on is true) scored again without sampling, and
what would have changed: the share of groups kept, the mean reward, how
often the largest cluster is right, the precision and recall of the
positive-advantage completions against the gold answers (where the data
has them), and the completions whose advantage changes sign.

pieces (default: the run's own, from RUN_DIR/recipe.json):
  reward=EXPR     majority, cluster_share{log=true}, empo.reward.random, or
                  any Lua expression giving a reward (function(g) ... end)
  cluster=EXPR    exact, normalized, math{rtol=1e-4}, ...: the answers are
                  clustered again (otherwise the stored cluster ids stay)
  filter=EXPR     entropy{high=1.5}, confidence{low=0.4}, none
  advantage=EXPR  grpo, dr_grpo, rloo
  recipe=FILE     take the run's pieces from this recipe file instead
settings:
  from=0 to=0     the range of steps (0: from the first, to the last)
  json=false      print the report as JSON instead of a table
]]

return function(...)
  local args = { ... }
  if args[1] == '-h' or args[1] == '--help' then io.write(USAGE); return 0 end
  if #args < 1 or args[1]:find('=') then io.stderr:write(USAGE); return 2 end
  local rescore = require 'empo.rl.rescore'
  local dir = args[1]
  local opts, settings = {}, {}
  for i = 2, #args do
    local key, text = args[i]:match('^([%w_]+)=(.*)$')
    if not key then io.stderr:write(string.format('empo rescore: argument "%s" is not key=value\n', args[i])); return 2 end
    settings[#settings + 1] = args[i]
    opts[key] = text
  end
  local ok, err = pcall(function()
    local o = empo.config.apply({ from = 0, to = 0, json = false, recipe = '', reward = '', cluster = '', filter = '',
                                  advantage = '' }, settings, 'empo rescore')
    local spec = { from = o.from > 0 and o.from or nil, to = o.to > 0 and o.to or nil,
                   recipe = o.recipe ~= '' and o.recipe or nil }
    for _, kind in ipairs(rescore.KINDS) do
      if o[kind] ~= '' then spec[kind] = rescore.parse_piece(kind, o[kind]) end
    end
    local rep = rescore.run(dir, spec)
    if o.json then
      io.write(empo.json.encode({ steps = rep.steps, seconds = rep.seconds, live = rep.live, rescored = rep.new,
                                  flips = rep.flips, compared = rep.compared, flips_kept = rep.flips_kept,
                                  compared_kept = rep.compared_kept }))
    else
      print('empo rescore ' .. dir)
      print(rescore.table(rep))
    end
  end)
  if not ok then
    io.stderr:write('empo rescore: ', tostring(err):gsub('^[^%s:]*%.lua:%d+: ', ''), '\n')
    return 1
  end
  return 0
end
