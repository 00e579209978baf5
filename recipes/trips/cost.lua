-- recipes/trips/cost.lua — what clustering by the learned verifier costs
-- in a run of recipes/trips/run.lua, beside the oracle's clustering (a
-- table lookup: the reference, what sampling and scoring cost with
-- clustering taken as free). Each row trains the same steps from the same
-- base with the same seed, in this one process, and reports the seconds
-- of a step and of its sampling (sampling, extracting, clustering,
-- scoring); the verifier's share is the difference from the oracle's
-- sampling time. Rows:
--   oracle                   the reference
--   verifier, group by group  one batched forward per group, nothing kept
--   verifier, step at once    empo.cluster.prepare: one batch for every
--                             group's pairs, nothing kept
--   verifier, step + cache    the same with the decisions cache (default)
-- The sampled groups differ between rows once the policies drift apart,
-- so steps is kept short (the first steps are the slow ones: answers are
-- most varied before training).
--
--     empo run recipes/trips/cost.lua [steps=20] [seed=1]
local empo = require 'empo'
local trips = require 'empo.world.trips'

local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.'
local cfg = empo.config.apply({ steps = 20, seed = 1, verifier = here .. '/../../models/trips-verifier' },
                              arg, 'trips/cost')

local function verifier(opts)
  return trips.verifier(cfg.verifier, opts)
end
local function without_prepare(by)      -- the same clusterer, group by group
  return empo.cluster.clusterer('by_model (group by group)', by.equal, by.group)
end
local rows = {
  { 'oracle (the reference)', trips.oracle },
  { 'verifier, group by group, no cache', without_prepare(verifier{ cache = 0 }) },
  { 'verifier, step at once, no cache', verifier{ cache = 0 } },
  { 'verifier, step at once + cache', verifier() },
}

print(string.format('%d steps of recipes/trips/run.lua (16 questions x 8 samples), seed %d, %s, %d threads',
                    cfg.steps, cfg.seed, empo.info().cpu, empo.get_num_threads()))
print(string.format('%-38s %10s %14s %16s %14s', 'clustering', 's a step', 'sampling s', 'clustering s', 'share of step'))
local reference
for _, row in ipairs(rows) do
  local t = empo.rl.trainer(here .. '/run.lua', { steps = cfg.steps, seed = cfg.seed, name = '', eval = false,
                                                  cluster = row[2] })
  t:run()
  local step_s, sample_s = 0, 0
  for _, rec in ipairs(t.history) do
    step_s, sample_s = step_s + rec.seconds_sample + rec.seconds_update, sample_s + rec.seconds_sample
  end
  step_s, sample_s = step_s / #t.history, sample_s / #t.history
  reference = reference or sample_s
  local extra = sample_s - reference
  print(string.format('%-38s %10.3f %14.3f %16s %14s', row[1], step_s, sample_s,
                      row[2] == trips.oracle and '(reference)' or string.format('%.3f', extra),
                      row[2] == trips.oracle and '' or string.format('%.1f%%', 100 * extra / step_s)))
  io.stdout:flush()
  t:close()
end
