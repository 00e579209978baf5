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
-- pairs with a held-out form: test pairs (the meanings of trips.split's
-- test half) and validation pairs (the other half), each from its own
-- stream; pairs of training forms beside the test ones
local tests = { held = {}, seen = {}, valid = {} }
for _, s in ipairs({ { 'test', 11 }, { 'valid', 13 } }) do
  local tw = trips.new{ seed = cfg.seed, stream = s[2] }
  for i = 1, cfg.test_pairs do
    local p
    repeat p = tw:problem() until trips.split(p.meaning) == s[1]
    if s[1] == 'test' then tests.held[i], tests.seen[i] = tw:verifier_pair(p, true, 'test'), tw:verifier_pair(p, false)
    else tests.valid[i] = tw:verifier_pair(p, true, 'valid') end
  end
end
write_jsonl(cfg.data .. '/verifier_test.jsonl', tests.held)
write_jsonl(cfg.data .. '/verifier_valid.jsonl', tests.valid)

if cfg.steps > 0 then
  base_model.train(cfg, cfg.data .. '/verifier.jsonl', 'The trips world\'s verifier (empo.world.trips pairs' ..
                   (cfg.from ~= '' and ', fine-tuned from ' .. cfg.from or '') .. ')',
                   'empo run recipes/trips/verifier.lua ' .. table.concat(arg or {}, ' '))
end

-- ---- measured: held-out pairs, training-form pairs, the cost of a group ----
-- Every pair is asked in both orders once; each rule of combining them
-- (empo.cluster.by_model's orders) is scored on the validation pairs, the
-- best there is chosen, and every rule is reported on the test pairs.
local v = empo.cluster.model_verifier(cfg.out, { cache = 0 })
local RULES = { 'one', 'either', 'both', 'mean' }
local function score(list)
  local prompts = {}
  for i, pair in ipairs(list) do
    prompts[2 * i - 1] = prompt(pair)
    prompts[2 * i] = prompt{ question = pair.question, a = pair.b, b = pair.a }
  end
  local yes, no = v:yes_no_batch(prompts)
  local out, margins = {}, {}
  for i = 1, #list do margins[i] = { yes[2 * i - 1] - no[2 * i - 1], yes[2 * i] - no[2 * i] } end
  for _, rule in ipairs(RULES) do
    local tp, fp, fn, tn = 0, 0, 0, 0
    for i, pair in ipairs(list) do
      local said = empo.cluster.ORDERS[rule](margins[i])
      if said and pair.same then tp = tp + 1 elseif said then fp = fp + 1
      elseif pair.same then fn = fn + 1 else tn = tn + 1 end
    end
    out[rule] = { accuracy = (tp + tn) / #list, precision = tp / math.max(tp + fp, 1), recall = tp / math.max(tp + fn, 1),
                  n = #list }
  end
  return out, margins
end
local held, held_margins = score(tests.held)
local seen, valid = score(tests.seen), score(tests.valid)
local chosen = 'one'
for _, rule in ipairs(RULES) do if valid[rule].accuracy > valid[chosen].accuracy then chosen = rule end end
local function line(what, r)
  return string.format('  %-24s accuracy %5.1f%%, precision %5.1f%%, recall %5.1f%%', what, 100 * r.accuracy,
                       100 * r.precision, 100 * r.recall)
end
print(string.format('verifier %s on %d pairs each (half the same meaning), by the rule combining the two orders:',
                    cfg.out, held.one.n))
for _, rule in ipairs(RULES) do
  print(string.format('orders = %-7s%s', rule, rule == chosen and ' (chosen: the best on validation pairs)' or ''))
  print(line('validation (held-out):', valid[rule]))
  print(line('test (held-out):', held[rule]))
  print(line('training forms:', seen[rule]))
end
-- where the test pairs go wrong: by the held-out form's pattern, its place
-- (answer A or B) and whether the pair means the same
local function errors_by_form(rule)
  local n, wrong, keys = {}, {}, {}
  for i, pair in ipairs(tests.held) do
    local pa = trips.held_pattern(pair.a)
    local key = string.format('%-14s as %s, %s', pa or trips.held_pattern(pair.b) or '?', pa and 'A' or 'B',
                              pair.same and 'same' or 'different')
    if not n[key] then n[key], wrong[key] = 0, 0; keys[#keys + 1] = key end
    n[key] = n[key] + 1
    if empo.cluster.ORDERS[rule](held_margins[i]) ~= pair.same then wrong[key] = wrong[key] + 1 end
  end
  table.sort(keys, function(x, y) return wrong[x] > wrong[y] or (wrong[x] == wrong[y] and x < y) end)
  print(string.format('test pairs wrong under orders = %s, by held-out form:', rule))
  for _, k in ipairs(keys) do
    if wrong[k] > 0 then print(string.format('  %-34s %4d of %4d', k, wrong[k], n[k])) end
  end
end
errors_by_form('one')
if chosen ~= 'one' then errors_by_form(chosen) end
-- how the clusterer is to ask it (trips.verifier reads this)
empo.json.write_file(cfg.out .. '/verifier.json', {
  template = trips_template, orders = chosen,
  chosen_on = string.format('%d validation pairs with held-out forms (recipes/trips/verifier.lua, seed %d)',
                            valid.one.n, cfg.seed),
  validation_accuracy = valid[chosen].accuracy, test_accuracy = held[chosen].accuracy,
})
print(string.format('-> %s/verifier.json: orders = %s (test accuracy %.1f%%)', cfg.out, chosen, 100 * held[chosen].accuracy))
-- a group of 8 distinct answers: 28 pairs, asked as the runs ask them, in one batched forward
local group, g = {}, trips.new{ seed = cfg.seed, stream = 12 }
local p = g:problem()
local by = trips.verifier(cfg.out, { cache = 0 })   -- (as the runs ask it, timed uncached)
for i = 1, 8 do group[i] = g:form(i % 2 == 0 and p.meaning or g:other_meaning(p.meaning)) end
local t0, reps = empo.logger.clock(), 5
for _ = 1, reps do empo.cluster.cluster(group, by, p.question) end
print(string.format('  clustering a group of 8 answers: %.3f s (one batched forward over the distinct pairs, no cache)',
                    (empo.logger.clock() - t0) / reps))
