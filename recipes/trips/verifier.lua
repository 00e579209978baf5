-- recipes/trips/verifier.lua — train the trips world's verifier: a tiny
-- language model in the Hugging Face layout that answers whether two
-- answers to a question mean the same, asked as empo.cluster.by_model asks
-- (with the world's short template, trips.VERIFIER_TEMPLATE: the two
-- answers and "Same meaning?"; its next-token scores for " Yes" and " No"
-- decide; empo.cluster.default_template's long prompt, the question
-- included, was too much for a model this small to compare across). Its corpus is the template filled with pairs drawn from
-- the world's equivalence rules (empo.world.trips: half the same meaning
-- in two forms, half two meanings, half of those neighbours), each ending
-- with the right word; the forms the world holds out never appear in it.
-- It starts from the world's base model (from=, '' for nothing), which
-- met every form in its corpus's solutions — as a real verifier is a
-- pretrained model that has read the words before its fine-tuning.
-- Then its precision and recall are measured on pairs that use a held-out
-- form (and on pairs of training forms), and the cost of judging a group.
--
--     empo run recipes/trips/verifier.lua                  # -> models/trips-verifier (data/trips/verifier*.jsonl)
--     empo run recipes/trips/verifier.lua steps=0          # only measure models/trips-verifier
local empo = require 'empo'
local trips = require 'empo.world.trips'
local base_model = require 'empo.train.base_model'

local cfg = empo.config.apply({
  data = 'data/trips', out = 'models/trips-verifier', from = 'models/trips-base', seed = 1, pairs = 40000, test_pairs = 2000,
  vocab = 512, steps = 2500, seq = 64, batch = 64, lr = 1e-3, min_lr = 1e-4, warmup = 60,
  threads = 2, run = 'trips-verifier', runs = 'runs',
}, arg, 'trips/verifier')

local write_jsonl = require('empo.world.common').write_jsonl
local trips_template = trips.VERIFIER_TEMPLATE
local function prompt(pair)
  return empo.cluster.fill(trips_template, { question = pair.question, a = pair.a, b = pair.b })
end

-- the pairs: training (training forms only) from the train questions' stream, tests from the test questions'
assert(empo.fs.make_dirs(cfg.data))
local docs, w = {}, trips.new{ seed = cfg.seed, stream = 10 }
for i = 1, cfg.pairs do
  local pair = w:verifier_pair(w:problem(), false)
  docs[i] = { text = prompt(pair) .. (pair.same and ' Yes' or ' No') .. '<|endoftext|>' }
end
write_jsonl(cfg.data .. '/verifier.jsonl', docs)
local tests, tw = { held = {}, seen = {} }, trips.new{ seed = cfg.seed, stream = 11 }
for i = 1, cfg.test_pairs do
  local p = tw:problem()
  tests.held[i], tests.seen[i] = tw:verifier_pair(p, true), tw:verifier_pair(p, false)
end
write_jsonl(cfg.data .. '/verifier_test.jsonl', tests.held)

if cfg.steps > 0 then
  base_model.train(cfg, cfg.data .. '/verifier.jsonl', 'The trips world\'s verifier (empo.world.trips pairs' ..
                   (cfg.from ~= '' and ', fine-tuned from ' .. cfg.from or '') .. ')',
                   'empo run recipes/trips/verifier.lua ' .. table.concat(arg or {}, ' '))
end

-- ---- measured: held-out pairs, training-form pairs, the cost of a group ----
local v = empo.cluster.model_verifier(cfg.out)
local function score(list)
  local tp, fp, fn, tn = 0, 0, 0, 0
  for s = 1, #list, 64 do
    local batch, prompts = {}, {}
    for i = s, math.min(s + 63, #list) do batch[#batch + 1] = list[i]; prompts[#prompts + 1] = prompt(list[i]) end
    local yes, no = v:yes_no_batch(prompts)
    for i, pair in ipairs(batch) do
      local said = yes[i] > no[i]
      if said and pair.same then tp = tp + 1 elseif said then fp = fp + 1
      elseif pair.same then fn = fn + 1 else tn = tn + 1 end
    end
  end
  return { accuracy = (tp + tn) / #list, precision = tp / math.max(tp + fp, 1), recall = tp / math.max(tp + fn, 1), n = #list }
end
local held, seen = score(tests.held), score(tests.seen)
print(string.format('verifier %s on %d pairs each (half the same meaning):', cfg.out, held.n))
print(string.format('  held-out forms:  accuracy %.1f%%, precision %.1f%%, recall %.1f%%', 100 * held.accuracy,
                    100 * held.precision, 100 * held.recall))
print(string.format('  training forms:  accuracy %.1f%%, precision %.1f%%, recall %.1f%%', 100 * seen.accuracy,
                    100 * seen.precision, 100 * seen.recall))
-- a group of 8 distinct answers: 28 pairs in one batched forward
local group, g = {}, trips.new{ seed = cfg.seed, stream = 12 }
local p = g:problem()
local by = empo.cluster.by_model(empo.cluster.model_verifier(cfg.out, { cache = 0 }), trips_template)   -- (timed uncached)
for i = 1, 8 do group[i] = g:form(i % 2 == 0 and p.meaning or g:other_meaning(p.meaning)) end
local t0, reps = empo.logger.clock(), 5
for _ = 1, reps do empo.cluster.cluster(group, by, p.question) end
print(string.format('  clustering a group of 8 answers: %.3f s (one batched forward over the distinct pairs, no cache)',
                    (empo.logger.clock() - t0) / reps))
