-- empo.rl.eval — accuracy of a model on questions with gold answers: greedy
-- accuracy, and over k samples avg@k (the mean accuracy of the samples),
-- maj@k (the largest cluster's answer is right) and pass@k (any sample is
-- right), each with its bootstrap standard error over the questions.
--
--     local r = eval.run(model, tok, dataset, { prompt = tpl, k = 8, temperature = 1.0, max_new_tokens = 160 })
--     r.greedy, r.avg, r.maj, r.pass          -- fractions in [0, 1]
--     r.se.greedy, ...                        -- standard errors (1,000 bootstrap resamples)
--     print(eval.table(r))                    -- one readable line per metric
--
-- Answers are extracted and compared with the recipe's extraction and
-- clustering (default: empo.cluster.extract and empo.cluster.math), so the
-- grader is the same one that clusters the training groups. This module
-- does not train.
local empo = require 'empo'

local format = string.format

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
  local equal = type(cluster) == 'table' and cluster.equal or cluster
  local records = type(dataset.list) == 'function' and dataset:list() or dataset   -- an empo.data or a list
  local prompts, golds = {}, {}
  for i, r in ipairs(records) do
    if r.answer == nil then error(format('eval: question %d has no gold answer', i), 2) end
    prompts[i], golds[i] = render(opts.prompt, r.question), r.answer
  end
  local settings = { max_new_tokens = opts.max_new_tokens or 128, stop = opts.stop, seed = opts.seed or 0 }
  local greedy = empo.sample.generate(model, tok, prompts, { n = 1, temperature = 0, max_new_tokens = settings.max_new_tokens,
                                                            stop = settings.stop })
  local sampled = empo.sample.generate(model, tok, prompts, { n = k, temperature = opts.temperature or 1.0,
                                                             top_p = opts.top_p or 1.0,
                                                             max_new_tokens = settings.max_new_tokens,
                                                             stop = settings.stop, seed = settings.seed })
  local per = { greedy = {}, avg = {}, maj = {}, pass = {} }
  for i = 1, #records do
    local right = function(text)
      local a = extract(text)
      return a ~= '' and equal(a, golds[i], records[i].question) and 1 or 0
    end
    per.greedy[i] = right(greedy[i].text)
    local answers, hits = {}, 0
    for j = 1, k do
      local text = sampled[(i - 1) * k + j].text
      answers[j] = extract(text)
      hits = hits + right(text)
    end
    per.avg[i], per.pass[i] = hits / k, hits > 0 and 1 or 0
    local ids = empo.cluster.cluster(answers, cluster, records[i].question)
    local size, best, best_id = {}, 0, 0
    for j = 1, k do
      if ids[j] > 0 then
        size[ids[j]] = (size[ids[j]] or 0) + 1
        if size[ids[j]] > best then best, best_id = size[ids[j]], ids[j] end
      end
    end
    local maj = 0
    for j = 1, k do
      if ids[j] == best_id and best_id > 0 then maj = equal(answers[j], golds[i], records[i].question) and 1 or 0; break end
    end
    per.maj[i] = maj
  end
  local out = { k = k, n = #records, se = {} }
  for name, xs in pairs(per) do
    local s = 0
    for _, x in ipairs(xs) do s = s + x end
    out[name] = s / math.max(#xs, 1)
    out.se[name] = bootstrap_se(xs, 7)
  end
  return out
end

-- "greedy 61.8% +- 2.2 | avg@8 ... | maj@8 ... | pass@8 ..." (percent, bootstrap standard errors)
function M.table(r)
  local parts = {}
  for _, name in ipairs({ 'greedy', 'avg', 'maj', 'pass' }) do
    local label = name == 'greedy' and 'greedy' or format('%s@%d', name, r.k)
    parts[#parts + 1] = format('%s %.1f%% +- %.1f', label, 100 * r[name], 100 * r.se[name])
  end
  return format('%s  (%d questions)', table.concat(parts, ' | '), r.n)
end

return M
