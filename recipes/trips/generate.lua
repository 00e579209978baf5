-- recipes/trips/generate.lua — write the trips world's files
-- (empo.world.trips: free-form answers with several surface forms): the
-- RL questions, a validation set, the held-out test set and the
-- pretraining corpus, as JSONL.
--
--     empo run recipes/trips/generate.lua                  # data/trips/{train,valid,test,corpus}.jsonl
--     empo run recipes/trips/generate.lua seed=2 out=/tmp/trips guess=0.3
--
-- Records: question, answer (the meaning's first form), meaning ('dir:NE',
-- 'min:150'), kind, key (the legs). No test problem (the same legs in the
-- same order) is in the other files.
local empo = require 'empo'
local trips = require 'empo.world.trips'

local cfg = empo.config.apply(trips.FILE_DEFAULTS, arg, 'trips/generate')
local n = trips.write_files(cfg)
io.stderr:write(string.format('trips (seed %d): %d test, %d train, %d valid, %d corpus documents (%d held-out problems ' ..
                              'skipped) in %s/\n', cfg.seed, n.test, n.train, n.valid, n.corpus, n.skipped, n.out))
