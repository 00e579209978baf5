-- empo.rl.rescore — a run's stored rollouts (empo.rl.rollout_store)
-- scored again under another reward, clustering, filter or advantage,
-- without sampling: what `empo rescore` prints. Every stored group is
-- seen twice, as the run scored it ("live") and as the given pieces score
-- it ("rescored"); where the data carry gold answers both are judged
-- against them by one rule (the run's clustering), so the two columns
-- compare reward designs on the same samples.
--
--     local rescore = require 'empo.rl.rescore'
--     local rep = rescore.run('runs/math', { reward = empo.reward.majority })
--     print(rescore.table(rep))
--     rep.live.per_step[12].majority_correct     -- as metrics.jsonl logged it
--
-- Pieces not given are the run's (recipe.json's `pieces`, rebuilt with
-- their options), or those of opts.recipe (a recipe file or table). The
-- stored answers and cluster ids are kept unless opts.cluster is given.
local empo = require 'empo'
local rl = require 'empo.rl'
local store_mod = require 'empo.rl.rollout_store'
local configurable = require 'empo.rl.configurable'
local metrics = require 'empo.rl.metrics'
local clock = require('empo.run.log').clock

local type, error, format, ipairs, pairs, tostring = type, error, string.format, ipairs, pairs, tostring

local M = {}

M.KINDS = { 'reward', 'cluster', 'filter', 'advantage' }

-- A piece from its text on the command line: a name of the library's
-- (`majority`, `empo.reward.majority`), a call (`cluster_share{empty=-1}`),
-- `none` (for filter: keep every group), or any Lua expression, with the
-- kind's pieces and `empo` in scope (`function(g) ... end`).
function M.parse_piece(kind, text)
  if kind == 'filter' and text == 'none' then return false end
  local pieces = empo[kind]
  local env = setmetatable({ empo = empo }, { __index = function(_, k)
    if type(pieces) == 'table' and pieces[k] ~= nil then return pieces[k] end
    return _G[k]
  end })
  local f, err = load('return ' .. text, '=' .. kind, 't', env)
  if not f then error(format('%s=%s is not a Lua expression: %s', kind, text, err), 0) end
  local ok, v = pcall(f)
  if not ok then error(format('%s=%s: %s', kind, text, tostring(v)), 0) end
  if v == nil then error(format("%s=%s names nothing (empo.%s has no '%s')", kind, text, kind, text), 0) end
  if not configurable.is(v) and type(v) ~= 'function' and not (type(v) == 'table' and getmetatable(v)) then
    error(format('%s=%s gives a %s, not a %s', kind, text, type(v), kind), 0)
  end
  return v
end

-- The run's settings (recipe.json) and pieces, rebuilt.
local function run_pieces(dir, base)
  local settings = {}
  local path = dir .. '/recipe.json'
  if empo.fs.exists(path) then settings = empo.json.read_file(path) end
  local out = {}
  if base then
    local recipe = require 'empo.rl.recipe'
    local r = recipe.load(base)
    for _, k in ipairs(M.KINDS) do out[k] = r[k] end
    out.grade = r.grade
    return out, r.empty or settings.empty
  end
  for _, k in ipairs({ 'reward', 'cluster', 'filter', 'advantage', 'grade' }) do
    local desc = settings.pieces and settings.pieces[k]
    if desc then out[k] = configurable.rebuild(desc)
    elseif settings[k] ~= nil then out[k] = { unknown = settings[k] } end   -- (a Lua function: said if needed)
  end
  return out, settings.empty
end

local function sign(x) return x > 0 and 1 or (x < 0 and -1 or 0) end

-- The figures of a list of groups (each with answers, ids, stats, keep,
-- rewards, advantages, gold): what metrics.gold logs, and more.
local function figures(groups, equal)
  local f = { groups = #groups, completions = 0, kept = 0, reward_sum = 0, right = 0, right_positive = 0 }
  for _, g in ipairs(groups) do
    if g.keep then f.kept = f.kept + 1 end
    for i = 1, g.G do
      f.completions, f.reward_sum = f.completions + 1, f.reward_sum + g.rewards[i]
      if g.gold ~= nil and g.keep and g.answers[i] ~= '' and equal(g.answers[i], g.gold, g.question) then
        f.right = f.right + 1
        if g.advantages[i] > 0 then f.right_positive = f.right_positive + 1 end
      end
    end
  end
  local gold = metrics.gold(groups, equal)
  f.majority_correct, f.positive_correct = gold.majority_correct, gold.positive_correct
  f.positive_recall = f.right > 0 and f.right_positive / f.right or nil
  f.kept_share = f.groups > 0 and f.kept / f.groups or 0
  f.reward = f.completions > 0 and f.reward_sum / f.completions or 0
  return f
end

local function need(pieces, kind, given)
  local v = given
  if v == nil then v = pieces[kind] end
  if type(v) == 'table' and v.unknown then
    error(format("the run's %s was %s, which recipe.json cannot rebuild: give %s", kind, tostring(v.unknown),
                 kind == 'grade' and 'recipe=FILE (the run\'s recipe)' or kind .. '=... (or recipe=FILE)'), 0)
  end
  return v
end

-- Re-scores the store of run directory `dir`. opts: reward, cluster,
-- filter (false: none), advantage (pieces; the run's when absent),
-- recipe (where the run's pieces come from instead of recipe.json),
-- from, to (a range of steps). Returns { live, new, flips, steps, seconds,
-- given }: live and new hold the figures over every group and per_step.
function M.run(dir, opts)
  opts = opts or {}
  local t0 = clock()
  dir = tostring(dir):gsub('/+$', '')
  local store = store_mod.open(dir)
  local pieces, empty = run_pieces(dir:gsub('/rollouts$', ''), opts.recipe)
  local equal = need(pieces, pieces.grade and 'grade' or 'cluster', nil) or empo.cluster.math   -- (the run's grader)
  local cluster = opts.cluster
  local filter = need(pieces, 'filter', opts.filter)
  local reward = need(pieces, 'reward', opts.reward) or rl.reward.cluster_share
  local advantage = need(pieces, 'advantage', opts.advantage) or rl.advantage.grpo
  if require('empo.rl.reward').needs_tokens(reward) and opts.reward ~= nil then
    -- (the store holds the per-completion means only when the run's reward read them)
    opts.tokens_needed = true
  end
  local rep = { live = { per_step = {} }, new = { per_step = {} }, flips = 0, flips_kept = 0, compared = 0,
                compared_kept = 0, steps = 0, given = {} }
  for _, k in ipairs(M.KINDS) do if opts[k] ~= nil then rep.given[k] = configurable.show(opts[k] or 'none') end end
  local all_live, all_new = {}, {}
  for _, step in ipairs(store.steps) do
    if (not opts.from or step >= opts.from) and (not opts.to or step <= opts.to) then
      local live, new = {}, {}
      local stored = store:step(step)
      if cluster then
        local ready = {}
        for i, s in ipairs(stored) do ready[i] = { answers = s.answers, question = s.question } end
        rl.cluster.prepare(cluster, ready)           -- (a verifier judges the step's pairs in one batch)
      end
      for _, s in ipairs(stored) do
        local G = #s.answers
        local lg = { question = s.question, gold = s.gold, answers = s.answers, ids = s.ids, G = G, keep = s.keep,
                     rewards = s.rewards, advantages = s.advantages, stats = rl.stats(s.ids, { empty = empty }) }
        local ids, k = s.ids, 0
        for i = 1, G do k = math.max(k, ids[i]) end
        if cluster then ids, k = rl.cluster.cluster(s.answers, cluster, s.question) end
        local tokens = s.entropy and { entropy = s.entropy, self_certainty = s.self_certainty } or nil
        if opts.tokens_needed and not tokens then
          error(format('%s reads the completions\' token entropy, which this run did not store (its own reward ' ..
                       'did not read it)', tostring(reward)), 0)
        end
        local ng = rl.score_clusters({ question = s.question, gold = s.gold, completions = s.texts, answers = s.answers,
                                       ids = ids, k = k, G = G },
                                     { filter = filter or nil, reward = reward, advantage = advantage, empty = empty,
                                       tokens = tokens })
        for i = 1, G do
          local flip = sign(ng.advantages[i]) ~= sign(s.advantages[i])
          rep.compared = rep.compared + 1
          if flip then rep.flips = rep.flips + 1 end
          if s.keep and ng.keep then
            rep.compared_kept = rep.compared_kept + 1
            if flip then rep.flips_kept = rep.flips_kept + 1 end
          end
        end
        live[#live + 1], new[#new + 1] = lg, ng
        all_live[#all_live + 1], all_new[#all_new + 1] = lg, ng
      end
      rep.live.per_step[step], rep.new.per_step[step] = figures(live, equal), figures(new, equal)
      rep.steps = rep.steps + 1
    end
  end
  if rep.steps == 0 then error(format('rescore: %s holds no steps in the range asked', dir), 0) end
  for k, v in pairs(figures(all_live, equal)) do rep.live[k] = v end
  for k, v in pairs(figures(all_new, equal)) do rep.new[k] = v end
  local show = configurable.show
  local function run_piece(k, default) local p = pieces[k]; return p and show(p.unknown or p) or default end
  rep.live.pieces = { reward = run_piece('reward', 'empo.reward.cluster_share'), cluster = run_piece('cluster', 'empo.cluster.math'),
                      filter = run_piece('filter', 'none') }
  rep.new.pieces = { reward = show(reward), cluster = cluster and show(cluster) or rep.live.pieces.cluster,
                     filter = filter and show(filter) or 'none' }
  rep.seconds = clock() - t0
  return rep
end

local function pct(x) return x and format('%.1f%%', 100 * x) or '—' end

-- The report as a table a person reads.
function M.table(rep)
  local L, N = rep.live, rep.new
  local lines = {}
  local function row(name, a, b) lines[#lines + 1] = format('  %-28s %-40s %s', name, a, b) end
  row('', 'live (as the run scored)', 'rescored')
  row('reward', L.pieces.reward, N.pieces.reward)
  row('cluster', L.pieces.cluster, N.pieces.cluster)
  row('filter', L.pieces.filter, N.pieces.filter)
  row('groups kept', pct(L.kept_share), pct(N.kept_share))
  row('mean reward', format('%.4f', L.reward), format('%.4f', N.reward))
  row('majority correct', pct(L.majority_correct), pct(N.majority_correct))
  row('positive-advantage precision', pct(L.positive_correct), pct(N.positive_correct))
  row('positive-advantage recall', pct(L.positive_recall), pct(N.positive_recall))
  lines[#lines + 1] = format('  advantage sign flips: %s of completions (%d of %d); %s in groups both keep',
                             pct(rep.compared > 0 and rep.flips / rep.compared or 0), rep.flips, rep.compared,
                             pct(rep.compared_kept > 0 and rep.flips_kept / rep.compared_kept or nil))
  return format('%d steps, %d groups, %d completions, re-scored in %.2f s\n', rep.steps, L.groups, L.completions,
                rep.seconds) .. table.concat(lines, '\n')
end

return M
