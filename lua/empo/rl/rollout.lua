-- empo.rl.rollout — a step's samples, scored: the trainer's `rollout`
-- (G completions for each question, sampled in one call, then each group
-- through empo.rl.score: answers, clusters, filter, rewards, advantages)
-- and `sample_step` (a step's questions, with dynamic sampling: more
-- rounds while fewer groups than prompts_per_step are kept). Methods of
-- empo.rl.trainer (`self` is the trainer).
local empo = require 'empo'
local rl = require 'empo.rl'
local preflight = require 'empo.rl.preflight'

local type, error, format, ipairs, tostring = type, error, string.format, ipairs, tostring
local prompt_text = preflight.prompt_text

local M = { methods = {} }   -- methods: the trainer's (self is the trainer)

function M.extract_fn(r)
  local e = r.extract
  if e == false then return false end
  if type(e) == 'function' then return e end
  return function(text) return (empo.cluster.extract(text, e)) end
end

-- Mean token entropy and self-certainty of every sampled completion, for
-- the rewards that read them (neg_entropy, self_certainty): the sampler
-- computes them per token in C from the logits of each draw, at the
-- sampling temperature, before truncation (empo_sample_token_stats).
local function token_means(out)
  local ent, sc = {}, {}
  for j, c in ipairs(out) do
    local n, se, ss = #c.entropy, 0, 0
    for t = 1, n do se, ss = se + c.entropy[t], ss + c.self_certainty[t] end
    ent[j], sc[j] = se / math.max(n, 1), ss / math.max(n, 1)
  end
  return { entropy = ent, self_certainty = sc }
end

-- Samples and scores `questions`; returns the groups (one per question).
function M.methods.rollout(self, questions, step)
  local r = self.recipe
  local prompts = {}
  for i, q in ipairs(questions) do prompts[i] = prompt_text(r, q.question) end
  local s = r.sample
  local stop = s.stop or (type(r.prompt) == 'table' and r.prompt.stop) or nil
  local needs_tokens = require('empo.rl.reward').needs_tokens(r.reward)
  local ok, out = pcall(empo.sample.generate, self.model, self.tok, prompts, {
    n = s.n, temperature = s.temperature, top_p = s.top_p, top_k = s.top_k, min_p = s.min_p,
    max_new_tokens = s.max_new_tokens,
    stop = stop, seed = r.seed * 1000003 + step, token_stats = needs_tokens,
    bf16_weights = s.bf16_weights or require('empo.nn.mixed').attached(self.model),
  })
  if not ok then
    local msg = tostring(out):gsub('^[^\n]-%.lua:%d+: ', '')
    if msg:find('NaN', 1, true) then
      local bad = self:nonfinite_parameter()
      msg = format('step %d: sampling met a NaN: %s. %s', step, msg, bad and
        format('The weights are not finite (%s): a learning rate too high (optim.lr=%g) is the usual cause; ' ..
               'resume=true continues from the last good checkpoint', bad, r.optim.lr) or
        'The weights are finite: the inputs or a custom piece produced it')
    end
    error(msg, 0)
  end
  local groups, extract = {}, M.extract_fn(r)
  local prompt_ids = {}
  for i = 1, #questions do prompt_ids[i] = self.tok:encode(prompts[i]) end
  local tokens = needs_tokens and token_means(out) or nil
  -- every group's answers first, so that the clusterer can judge the whole
  -- step's pairs at once (empo.cluster.prepare: a verifier's one batch)
  local texts, answers, ready = {}, {}, {}
  for i, q in ipairs(questions) do
    texts[i], answers[i] = {}, {}
    for k = 1, s.n do
      local c = out[(i - 1) * s.n + k].text
      texts[i][k] = c
      local a = extract and extract(c) or c
      if type(a) ~= 'string' then
        error(format('step %d: extract returned a %s for completion %d of question %d', step, type(a), k, i), 0)
      end
      answers[i][k] = a
    end
    ready[i] = { answers = answers[i], question = q.question }
  end
  empo.cluster.prepare(r.cluster, ready)
  for i, q in ipairs(questions) do
    local samples = {}
    for k = 1, s.n do samples[k] = out[(i - 1) * s.n + k] end
    local per = nil
    if tokens then
      per = { entropy = {}, self_certainty = {} }
      for k = 1, s.n do
        local j = (i - 1) * s.n + k
        per.entropy[k], per.self_certainty[k] = tokens.entropy[j], tokens.self_certainty[j]
      end
    end
    local g = rl.score(texts[i], { question = q.question, gold = q.answer, answers = answers[i], cluster = r.cluster,
                                filter = r.filter, reward = r.reward, advantage = r.advantage, empty = r.empty,
                                tokens = per })
    g.prompt, g.prompt_ids, g.samples, g.index = prompts[i], prompt_ids[i], samples, q.index
    groups[i] = g
  end
  return groups, out.stats or {}
end

-- The step's groups: prompts_per_step questions, then, while fewer groups
-- than that are kept and dynamic_sampling rounds remain, more questions
-- (each round with its own seed). Returns groups, the sampler's stats,
-- the kept count and the rounds.
-- With several ranks (empo.rl.data_parallel) every rank takes the same
-- questions, samples its share, and ends with every rank's groups.
local function take_and_roll(self, n, seed_step)
  local questions = self.data:take(n)
  if not self.dp then return self:rollout(questions, seed_step) end
  local mine = self:my_questions(questions)
  local groups, stats = {}, { tokens = 0, seconds = 0 }
  if #mine > 0 then groups, stats = self:rollout(mine, seed_step) end
  return self:gather_groups(groups, stats)
end

function M.methods.sample_step(self, step)
  local r = self.recipe
  local groups, stats = take_and_roll(self, r.prompts_per_step, step)
  local kept, rounds = 0, 0
  for _, g in ipairs(groups) do if g.keep then kept = kept + 1 end end
  while kept < r.prompts_per_step and rounds < r.dynamic_sampling do
    rounds = rounds + 1
    local more = take_and_roll(self, r.prompts_per_step - kept, step * 1000 + rounds)
    for _, g in ipairs(more) do
      g.round = rounds
      groups[#groups + 1] = g
      if g.keep then kept = kept + 1 end
    end
  end
  return groups, stats, kept, rounds
end

return M
