-- recipes/arith/generate.lua — write the arith world's files
-- (empo.world.arith): the RL questions, the held-out test set and the
-- pretraining corpus, as JSONL.
--
--     empo run recipes/arith/generate.lua                       # data/arith/{train,test,corpus}.jsonl
--     empo run recipes/arith/generate.lua seed=2 test=1000 out=/tmp/arith mode=shortcut
--
-- train.jsonl and test.jsonl records: question, answer, steps ("a op b =
-- c" in order, the last c being the answer), level (operations). The
-- corpus (text) interleaves worked problems, written with the world's
-- imperfections, and bare equation drills. No test problem (same
-- operations on the same numbers in the same order) is in the train set
-- or the corpus.
local empo = require 'empo'
local arith = require 'empo.world.arith'

local cfg = empo.config.apply(arith.FILE_DEFAULTS, arg, 'arith/generate')
local n = arith.write_files(cfg)
io.stderr:write(string.format('arith (%s, seed %d): %d test, %d train, %d corpus documents (%d held-out problems ' ..
                              'skipped) in %s/\n', cfg.mode, cfg.seed, n.test, n.train, n.corpus, n.skipped, n.out))
