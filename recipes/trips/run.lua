-- recipes/trips/run.lua — EMPO on the trips world (free-form answers),
-- the paper's natural-reasoning setting at a size this machine trains in
-- minutes: the answers ("The answer is X.") are clustered by the world's
-- learned verifier (models/trips-verifier, asked by
-- empo.cluster.by_model as trips.verifier reads its verifier.json: both
-- orders of each pair, merged when either says yes, the rule chosen on
-- validation pairs), rewarded by their cluster's share, no labels.
-- Accuracy before and after is graded by meaning (grade: the world's
-- equivalence rules), whatever clusters for the reward.
--
--     empo run recipes/trips/run.lua                       # accuracy before and after, runs/trips/
--     empo run recipes/trips/run.lua steps=30 seed=2
--
-- The clustering compared with exact strings, normalised strings and the
-- oracle (meaning), gold-answer GRPO and a random reward:
-- recipes/trips/compare.lua.
local empo = require 'empo'
local trips = require 'empo.world.trips'

local root = (debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.') .. '/../..'
return empo.recipe_from(root .. '/recipes/natural.lua', {
  name = 'trips',
  model = root .. '/models/trips-base',
  data = root .. '/data/trips/train.jsonl',
  eval = root .. '/data/trips/test.jsonl',
  prompt = trips.prompt(),                     -- the base model's own system prompt
  cluster = trips.verifier(root .. '/models/trips-verifier'),   -- (asked as its verifier.json says)
  grade = trips.oracle,
  optim = { lr = 2e-5 },
  guard = { on = false },
  steps = 180, prompts_per_step = 16, seed = 1,
})
