-- empo.run.report — the results of a comparison of methods over seeds
-- (recipes/arith/compare.lua, recipes/trips/compare.lua) as a Markdown section: base vs each method,
-- every seed and the mean, the gains, EMPO's share of the gold-answer
-- baseline's gain, the curves as an SVG figure and an HTML page. The
-- section replaces the one between `<!-- NAME:begin -->` and `<!-- NAME:end
-- -->` in the document (appended when the markers are absent), so the
-- rest of the page is kept.
local empo = require 'empo'
local plot = require 'empo.run.plot'

local format, concat = string.format, table.concat

local M = {}

-- "AMD EPYC (2 cores, AVX-512)"-style description of this machine.
function M.cpu() return empo.info().cpu end

local METRICS = { 'greedy', 'avg', 'maj', 'pass' }
M.FIGURE_KEYS = 'eval_greedy,eval_maj,entropy,majority_correct,positive_correct,response_length'

local function mean(rs, key)
  local s = 0
  for _, r in ipairs(rs) do s = s + r[key] end
  return s / math.max(#rs, 1)
end

-- the mean over seeds, and its standard error from the seeds' spread
local function mean_se(rs, key)
  local m, v = mean(rs, key), 0
  for _, r in ipairs(rs) do v = v + (r[key] - m) ^ 2 end
  return m, #rs > 1 and math.sqrt(v / (#rs - 1) / #rs) or 0
end

local function pct(x) return format('%.1f', 100 * x) end

-- one evaluation's cells; seconds: the training wall time (none for the base)
local function row(label, r, seconds)
  local cells = { label }
  for _, m in ipairs(METRICS) do cells[#cells + 1] = format('%s ± %s', pct(r[m]), pct(r.se[m])) end
  cells[#cells + 1] = pct(r.boxed_accuracy)
  cells[#cells + 1] = format('%.3f', r.entropy)
  cells[#cells + 1] = format('%.2f', r.answered)
  cells[#cells + 1] = seconds and format('%.0f', seconds) or ''
  return '| ' .. concat(cells, ' | ') .. ' |'
end

local function mean_row(label, rs)
  local cells = { label }
  for _, m in ipairs(METRICS) do
    local mu, se = mean_se(rs, m)
    cells[#cells + 1] = format('**%s** ± %s', pct(mu), pct(se))
  end
  cells[#cells + 1] = '**' .. pct(mean(rs, 'boxed_accuracy')) .. '**'
  cells[#cells + 1] = format('%.3f', mean(rs, 'entropy'))
  cells[#cells + 1] = format('%.2f', mean(rs, 'answered'))
  cells[#cells + 1] = format('%.0f', mean(rs, 'seconds'))
  return '| ' .. concat(cells, ' | ') .. ' |'
end

local NAMES = { math = 'EMPO', grpo_gold = 'GRPO, gold answers', ttrl = 'majority vote (TTRL)',
                intuitor = 'self-certainty (Intuitor)', random_reward = 'random reward', rent = 'neg. entropy (RENT)',
                math_lora = 'EMPO, LoRA rank 16' }
M.NAMES = NAMES

-- A method's label: the results' own names first (res.names), then NAMES.
local function label(res, m) return (res.names and res.names[m]) or NAMES[m] or m end

-- A comma- or space-separated setting (methods=a,b seeds=1,2) as a list.
function M.list(s)
  local out = {}
  for x in tostring(s):gmatch('[^,%s]+') do out[#out + 1] = x end
  return out
end

-- The Markdown section for results = { base, runs = { method = { r... } }, methods, seeds, cfg, cpu, threads }.
-- Optional: res.recipe (the compare recipe's path, for the command line),
-- res.names (method -> label, beside NAMES), cfg.empo / cfg.gold /
-- cfg.random (which methods are EMPO, the gold baseline and the random
-- control: default math, grpo_gold, random_reward), res.about (a
-- paragraph after the first), and step_seconds / sample_seconds in the
-- runs (then a table of what a step costs).
function M.section(res)
  local cfg, k = res.cfg, res.base.k
  local empo_m, gold_m, random_m = cfg.empo or 'math', cfg.gold or 'grpo_gold', cfg.random or 'random_reward'
  local out = {
    format('<!-- %s:begin -->', cfg.marker),
    format('%s %s', cfg.heading or '###', cfg.title),
    '',
    format('Written by `%s` on %s, %s, %d threads. Each method trains from the same ' ..
           'base (`%s`) for %d steps of the same batch (the recipe\'s: %d questions x %d samples) on seeds %s; the ' ..
           'test set is %d held-out problems with gold answers, which no reward but the gold baseline\'s sees. ' ..
           'Metrics in %%, ± the bootstrap standard error over the questions (per seed) or the standard error over ' ..
           'the seeds (means); avg@%d, maj@%d, pass@%d over %d samples at the training temperature. Train s: ' ..
           'the wall time of the training steps, in-run evaluations and the collapse guard included.',
           (('empo run ' .. (res.recipe or 'recipes/arith/compare.lua') .. ' ' .. (res.command or concat(arg or {}, ' '))):gsub('%s+$', '')), res.date or os.date('!%Y-%m-%d'), res.cpu, res.threads, cfg.model:gsub('^.*/models/', 'models/'),
           cfg.steps, res.batch or 16, k, concat(res.seeds, ', '), res.base.n, k, k, k, k),
    '',
  }
  if res.about then out[#out + 1] = res.about; out[#out + 1] = '' end
  for _, l in ipairs({
    format('| run | greedy | avg@%d | maj@%d | pass@%d | greedy accuracy among boxed | semantic entropy | answer rate | ' ..
           'train s |', k, k, k),
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    row('base', res.base),
  }) do out[#out + 1] = l end
  for _, m in ipairs(res.methods) do
    local rs = res.runs[m]
    for i, r in ipairs(rs) do out[#out + 1] = row(format('%s, seed %s', label(res, m), res.seeds[i]), r, r.seconds) end
    if #rs > 1 then out[#out + 1] = mean_row(format('**%s, mean**', label(res, m)), rs) end
  end
  out[#out + 1] = ''
  -- gains over the base, and EMPO's share of the gold baseline's
  local gains = { '| method | ' .. concat({ 'greedy', 'avg@' .. k, 'maj@' .. k, 'pass@' .. k, 'boxed accuracy' }, ' | ') ..
                  ' |', '| --- | --- | --- | --- | --- | --- |' }
  local gain = {}
  for _, m in ipairs(res.methods) do
    gain[m] = {}
    local cells = { label(res, m) }
    for _, key in ipairs({ 'greedy', 'avg', 'maj', 'pass', 'boxed_accuracy' }) do
      gain[m][key] = mean(res.runs[m], key) - res.base[key]
      cells[#cells + 1] = format('%+.1f', 100 * gain[m][key])
    end
    gains[#gains + 1] = '| ' .. concat(cells, ' | ') .. ' |'
  end
  out[#out + 1] = 'Gains over the base (points, mean over seeds):'
  out[#out + 1] = ''
  for _, l in ipairs(gains) do out[#out + 1] = l end
  out[#out + 1] = ''
  local E, G, R = gain[empo_m], gain[gold_m], gain[random_m]
  if E and G then
    local shares = {}
    for _, key in ipairs({ 'greedy', 'avg', 'maj' }) do
      local g = G[key]
      shares[#shares + 1] = format('%s %s', key == 'greedy' and 'greedy' or key .. '@' .. k,
                                   g > 0 and format('%.0f%%', 100 * E[key] / g) or 'n/a (gold did not gain)')
    end
    out[#out + 1] = format('%s\'s gain as a share of gold-answer GRPO\'s: %s.', label(res, empo_m),
                           concat(shares, ', '))
  end
  if E and R and E.greedy > 0 then
    out[#out + 1] = format('The random-reward control gains %+.1f greedy points against %s\'s %+.1f (%s a third of it).',
                           100 * R.greedy, label(res, empo_m), 100 * E.greedy,
                           R.greedy < E.greedy / 3 and 'less than' or 'not less than')
  end
  local first_run = res.runs[res.methods[1]] and res.runs[res.methods[1]][1]
  if first_run and first_run.step_seconds then
    out[#out + 1] = ''
    out[#out + 1] = 'What a step costs (mean over seeds; sampling includes extracting, clustering and scoring):'
    out[#out + 1] = ''
    out[#out + 1] = '| method | s a step | sampling s a step |'
    out[#out + 1] = '| --- | --- | --- |'
    for _, m in ipairs(res.methods) do
      out[#out + 1] = format('| %s | %.2f | %.2f |', label(res, m), mean(res.runs[m], 'step_seconds'),
                             mean(res.runs[m], 'sample_seconds'))
    end
  end
  local rolled = {}
  for _, m in ipairs(res.methods) do
    for i, r in ipairs(res.runs[m]) do
      if (r.guard or 0) > 0 then rolled[#rolled + 1] = format('%s seed %s (%d)', label(res, m), res.seeds[i], r.guard) end
    end
  end
  if #rolled > 0 then out[#out + 1] = 'The collapse guard rolled back: ' .. concat(rolled, ', ') .. '.' end
  if res.figure then
    out[#out + 1] = ''
    out[#out + 1] = format('![Training curves, seed %s of each method](%s)', res.seeds[1], res.figure)
    out[#out + 1] = ''
    out[#out + 1] = cfg.figure_note and cfg.figure_note ~= '' and cfg.figure_note or
                    format('Curves of seed %s of each method: test accuracy (the base at step 0, then every %d steps), ' ..
                           'the mean semantic entropy of the training groups, how often their largest cluster is ' ..
                           'right and the share of positive-advantage completions that are right (both against gold ' ..
                           'answers, for the plot only), response length. Every run overlaid, every metric: ' ..
                           '`%s/plot.html` (or `empo plot %s/*`).', res.seeds[1], cfg.eval_every, cfg.out, cfg.out)
  end
  out[#out + 1] = format('<!-- %s:end -->', cfg.marker)
  return concat(out, '\n')
end

-- A recipe's command-line arguments as a shell would take them back.
function M.quoted_args(args)
  local out = {}
  for i, a in ipairs(args or {}) do out[i] = a:find('[%s\'"]') and "'" .. a:gsub("'", "'\\''") .. "'" or a end
  return concat(out, ' ')
end

-- A comparison's results table before any run: its methods and seeds
-- (cfg.methods, cfg.seeds), cfg, this machine, the command line and the
-- date, and any more fields given.
function M.new_results(cfg, fields)
  local res = { methods = M.list(cfg.methods), seeds = M.list(cfg.seeds), runs = {}, cfg = cfg, cpu = M.cpu(),
                threads = empo.get_num_threads(), command = M.quoted_args(arg), date = os.date('!%Y-%m-%d') }
  for k, v in pairs(fields or {}) do res[k] = v end
  return res
end

-- The section and curves again from cfg.out/results.json, with this cfg
-- (a compare recipe's render_only=true: no training).
function M.render_saved(cfg)
  local saved = empo.json.read_file(cfg.out .. '/results.json')
  saved.cfg = cfg
  M.write(saved)
  print('table written to ' .. cfg.doc)
end

-- Replaces (or appends) the marked section of the document at path.
function M.replace_section(path, marker, section)
  local text = empo.fs.exists(path) and empo.fs.read_text(path) or ''
  local b, e = format('<!-- %s:begin -->', marker), format('<!-- %s:end -->', marker)
  local i = text:find(b, 1, true)
  local j = i and select(2, text:find(e, i, true))
  if i and j then
    text = text:sub(1, i - 1) .. section .. text:sub(j + 1)
  else
    text = text .. (text:sub(-1) == '\n' and '\n' or '\n\n') .. section .. '\n'
  end
  assert(empo.fs.write_atomic(path, text))
end

-- path made absolute (from $PWD) with its . and .. parts resolved
local function absolute(path)
  if path:sub(1, 1) ~= '/' then path = (os.getenv('PWD') or '.') .. '/' .. path end
  local parts = {}
  for part in path:gmatch('[^/]+') do
    if part == '..' then parts[#parts] = nil elseif part ~= '.' then parts[#parts + 1] = part end
  end
  return '/' .. concat(parts, '/')
end

-- The curves: every run into cfg.out/plot.html, the first seed of each
-- method into cfg.figure (SVG); then the section into cfg.doc.
function M.write(res)
  local cfg = res.cfg
  local all, first = {}, {}
  for _, m in ipairs(res.methods) do
    for i, seed in ipairs(res.seeds) do
      local name = m .. '-s' .. seed
      -- the base's accuracy as step 0, so the test-accuracy curves start where training did
      local records = { { step = 0, eval_greedy = res.base.greedy, eval_avg = res.base.avg, eval_maj = res.base.maj,
                          eval_pass = res.base.pass } }
      for _, r in ipairs(empo.logger.read_metrics(cfg.out .. '/' .. name .. '/metrics.jsonl')) do records[#records + 1] = r end
      local run = { name = format('%s, seed %s', label(res, m), seed), records = records }
      all[#all + 1] = run
      if i == 1 then first[#first + 1] = run end
    end
  end
  assert(empo.fs.write_atomic(cfg.out .. '/plot.html', plot.page(all, cfg.title)))
  if cfg.figure ~= '' then
    local keys = M.list(cfg.figure_keys or M.FIGURE_KEYS)
    assert(empo.fs.write_atomic(cfg.figure, plot.figure(first, keys,
                                                         cfg.title .. ': training curves (seed ' .. res.seeds[1] .. ')')))
    local doc_dir, fig = absolute(cfg.doc):match('^(.*)/'), absolute(cfg.figure)
    res.figure = fig:sub(1, #doc_dir + 1) == doc_dir .. '/' and fig:sub(#doc_dir + 2) or cfg.figure
  end
  M.replace_section(cfg.doc, cfg.marker, M.section(res))
end

return M
