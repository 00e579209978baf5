-- empo.rl.eval — accuracy of a model on questions with gold answers: greedy
-- accuracy, and over k samples avg@k (the mean accuracy of the samples),
-- maj@k (the largest cluster's answer is right) and pass@k (any sample is
-- right), each with its bootstrap standard error over the questions.
--
--     local r = eval.run(model, tok, dataset, { prompt = tpl, k = 8, temperature = 1.0, max_new_tokens = 160 })
--     r.greedy, r.avg, r.maj, r.pass          -- fractions in [0, 1]
--     r.se.greedy, ...                        -- standard errors (1,000 bootstrap resamples)
--     print(eval.table(r))                    -- one readable line per metric
--     print(eval.diagnosis(r))                -- boxed rate, entropy, what the votes say where greedy is wrong
--     (opts.details = true keeps every completion in r.details[i])
--
-- Answers are extracted and compared with the recipe's extraction and
-- clustering (default: empo.cluster.extract and empo.cluster.math), so the
-- grader is the same one that clusters the training groups. Under mpirun
-- the ranks share the questions and every rank gets the whole result.
-- This module does not train.
local empo = require 'empo'

local format = string.format
local group_stats = require('empo.rl.stats').stats

local M = {}

local function render(prompt, q) return prompt and empo.prompt.render(prompt, q) or q end

-- the mean of xs over a resample drawn with Philox(seed)
local function bootstrap_se(xs, seed)
  local n = #xs
  if n < 2 then return 0 end
  local g = empo.Generator(seed)
  local draws = empo.randint(0, n, 1000, n, { generator = g }):tolist()
  local means, mu = {}, 0
  for b = 1, 1000 do
    local s = 0
    for i = 1, n do s = s + xs[draws[b][i] + 1] end
    means[b] = s / n
    mu = mu + means[b]
  end
  mu = mu / 1000
  local v = 0
  for b = 1, 1000 do v = v + (means[b] - mu) ^ 2 end
  return math.sqrt(v / 999)
end

function M.run(model, tok, dataset, opts)
  opts = opts or {}
  local k = opts.k or 8
  local extract = opts.extract or function(text) return (empo.cluster.extract(text)) end
  local cluster = opts.cluster or empo.cluster.math
  local equal = require('empo.rl.contract').boolean_fn('cluster rule',
                                                      type(cluster) == 'table' and cluster.equal or cluster)
  local records = type(dataset.list) == 'function' and dataset:list() or dataset   -- an empo.data or a list
  local prompts, golds = {}, {}
  for i, r in ipairs(records) do
    if r.answer == nil then error(format('eval: question %d has no gold answer', i), 2) end
    prompts[i], golds[i] = render(opts.prompt, r.question), r.answer
  end
  -- under mpirun each rank answers a contiguous share (completions depend on
  -- the prompt and seed only), and every rank gathers every question's result
  local dist = require 'empo.run.dist'
  local first, last = 1, #records
  if dist.size() > 1 then
    first, last = math.floor(#records * dist.rank() / dist.size()) + 1, math.floor(#records * (dist.rank() + 1) / dist.size())
  end
  local mine = {}
  for i = first, last do mine[#mine + 1] = prompts[i] end
  local settings = { max_new_tokens = opts.max_new_tokens or 128, stop = opts.stop, seed = opts.seed or 0 }
  local greedy, sampled = {}, {}
  if #mine > 0 then
    greedy = empo.sample.generate(model, tok, mine, { n = 1, temperature = 0, max_new_tokens = settings.max_new_tokens,
                                                      stop = settings.stop })
    sampled = empo.sample.generate(model, tok, mine, { n = k, temperature = opts.temperature or 1.0,
                                                       top_p = opts.top_p or 1.0, top_k = opts.top_k or 0,
                                                       min_p = opts.min_p or 0,
                                                       max_new_tokens = settings.max_new_tokens,
                                                       stop = settings.stop, seed = settings.seed })
  end
  -- every question's sampled answers, told to the clusterer at once (a
  -- verifier judges all their pairs in one batch: empo.cluster.prepare)
  local answers_of, ready = {}, {}
  for q = 1, #mine do
    local answers = {}
    for j = 1, k do answers[j] = extract(sampled[(q - 1) * k + j].text) end
    answers_of[q], ready[q] = answers, { answers = answers, question = records[first + q - 1].question }
  end
  empo.cluster.prepare(cluster, ready)
  -- question i's result (q: its place in this rank's share)
  local function score(i, q)
    local function right(a) return a ~= '' and equal(a, golds[i], records[i].question) and 1 or 0 end
    local res = {}
    local g_answer = extract(greedy[q].text)
    res.greedy, res.boxed = right(g_answer), g_answer ~= '' and 1 or 0
    local answers, texts, hits, answered = answers_of[q], {}, 0, 0
    for j = 1, k do
      texts[j] = sampled[(q - 1) * k + j].text
      hits = hits + right(answers[j])
      if answers[j] ~= '' then answered = answered + 1 end
    end
    res.avg, res.pass, res.answered = hits / k, hits > 0 and 1 or 0, answered / k
    local ids = empo.cluster.cluster(answers, cluster, records[i].question)
    local st = group_stats(ids)
    res.entropy = st.entropy
    -- whether each cluster is the gold answer's, its size, and the largest wrong one
    local is_gold, gold_size, best_wrong = {}, 0, 0
    for j = 1, k do
      local id = ids[j]
      if id > 0 and is_gold[id] == nil then is_gold[id] = right(answers[j]) == 1 end
    end
    for id, size in ipairs(st.sizes) do
      if is_gold[id] then gold_size = size elseif size > best_wrong then best_wrong = size end
    end
    res.maj = (st.largest > 0 and is_gold[st.largest]) and 1 or 0
    res.gold_plurality, res.wrong_share = gold_size > best_wrong and 1 or 0, best_wrong / k
    if opts.details then res.details = { greedy = greedy[q].text, samples = texts, answers = answers, ids = ids } end
    return res
  end
  local results = {}
  for i = first, last do results[#results + 1] = score(i, i - first + 1) end
  if dist.size() > 1 then
    local all = {}
    for _, part in ipairs(dist.gather(results)) do for _, res in ipairs(part) do all[#all + 1] = res end end
    results = all
  end
  local per = { greedy = {}, avg = {}, maj = {}, pass = {}, boxed = {}, answered = {}, entropy = {} }
  local wrong = { n = 0, gold_plurality = 0, wrong_share = 0 }   -- over the questions greedy gets wrong
  local details = opts.details and {} or nil
  for i, res in ipairs(results) do
    for name, xs in pairs(per) do xs[i] = res[name] end
    if res.greedy == 0 then
      wrong.n = wrong.n + 1
      wrong.gold_plurality, wrong.wrong_share = wrong.gold_plurality + res.gold_plurality, wrong.wrong_share + res.wrong_share
    end
    if details then details[i] = res.details end
  end
  local out = { k = k, n = #records, se = {}, details = details }
  for name, xs in pairs(per) do
    local s = 0
    for _, x in ipairs(xs) do s = s + x end
    out[name] = s / math.max(#xs, 1)
    out.se[name] = bootstrap_se(xs, 7)
  end
  -- accuracy among the greedy answers that have a box: a gain that is not format alone
  out.boxed_accuracy = out.boxed > 0 and out.greedy / out.boxed or 0
  out.greedy_wrong = wrong.n
  out.gold_plurality = wrong.n > 0 and wrong.gold_plurality / wrong.n or 0
  out.wrong_share = wrong.n > 0 and wrong.wrong_share / wrong.n or 0
  return out
end

-- "greedy 61.8% +- 2.2 | avg@8 ... | maj@8 ... | pass@8 ..." (percent, bootstrap standard errors)
-- M.diagnosis(r): the rest: boxed rate and accuracy, semantic entropy, answer rate, and on the
-- questions greedy gets wrong, how often the gold answer is the strict plurality of the k
-- samples and the mean share of the largest wrong cluster.
function M.table(r)
  local parts = {}
  for _, name in ipairs({ 'greedy', 'avg', 'maj', 'pass' }) do
    local label = name == 'greedy' and 'greedy' or format('%s@%d', name, r.k)
    parts[#parts + 1] = format('%s %.1f%% +- %.1f', label, 100 * r[name], 100 * r.se[name])
  end
  return format('%s  (%d questions)', table.concat(parts, ' | '), r.n)
end

function M.diagnosis(r)
  return format('boxed %.1f%% (accuracy among boxed %.1f%%) | semantic entropy %.3f | answer rate %.2f | ' ..
                'on the %d greedy-wrong: gold is the plurality of %d samples in %.1f%%, largest wrong cluster %.2f',
                100 * r.boxed, 100 * r.boxed_accuracy, r.entropy, r.answered, r.greedy_wrong, r.k,
                100 * r.gold_plurality, r.wrong_share)
end

return M
