-- tests/rl/test_token_rewards.lua — the label-free rewards beside EMPO's:
-- random (the control), neg_entropy (RENT), self_certainty (Intuitor), and
-- combine; the token statistics they read (logprob.completions with
-- self_certainty, checked against the logits), and a trainer step that
-- fills them.
local check = require 'check'
local empo = require 'empo'
local logprob = require 'empo.rl.logprob'
local c = check.new('test_token_rewards')
local R = empo.reward

local function group(completions, extra)
  local g = { question = 'q', completions = completions, answers = completions, G = #completions, ids = {} }
  for i = 1, #completions do g.ids[i] = completions[i] == '' and 0 or i end
  for k, v in pairs(extra or {}) do g[k] = v end
  return g
end

-- ---- random: Bernoulli(p), a function of (seed, question, completion) ----
local many = {}
for i = 1, 400 do many[i] = 'completion ' .. i end
local g = group(many)
local r1, r2 = R.random(g), R.random(g)
c.eq(r1, r2, 'the same group gets the same draws')
local ones = 0
for i = 1, #r1 do
  c.ok(r1[i] == 0 or r1[i] == 1, 'draws are 0 or 1')
  ones = ones + r1[i]
end
c.ok(ones > 160 and ones < 240, string.format('about half are 1 (%d of 400)', ones))
local other = R.random{ seed = 9 }(g)
local differ = 0
for i = 1, #r1 do if other[i] ~= r1[i] then differ = differ + 1 end end
c.ok(differ > 100, 'another seed draws otherwise')
local few = 0
for _, x in ipairs(R.random{ p = 0.1 }(g)) do few = few + x end
c.ok(few > 15 and few < 70, string.format('p = 0.1 draws about 40 ones (%d)', few))

-- ---- neg_entropy, self_certainty: read the token statistics ----
local tg = group({ 'a', 'b', '' }, { token_entropy = { 0.5, 2.0, 1.0 }, self_certainty = { 1.5, 0.2, 0.7 } })
c.eq(R.neg_entropy(tg), { -0.5, -2.0, 0 }, 'minus the mean token entropy; empty answers get empty')
c.eq(R.self_certainty(tg), { 1.5, 0.2, 0 }, 'self-certainty as given')
c.eq(R.self_certainty{ empty = -1 }(tg), { 1.5, 0.2, -1 }, 'empty option')
c.raises(function() return R.neg_entropy(group({ 'a' })) end, 'needs group.token_entropy')
c.ok(R.needs_tokens(R.neg_entropy) and R.needs_tokens(R.self_certainty{ empty = 1 }) and
     not R.needs_tokens(R.cluster_share) and not R.needs_tokens(function() end), 'needs_tokens')

-- ---- combine ----
local both = R.combine{ { 1.0, R.cluster_share }, { 0.5, R.neg_entropy } }
c.ok(R.needs_tokens(both), 'a combination needs what its parts need')
local cs = R.cluster_share(tg)
local got = both(tg)
for i = 1, 3 do c.near(got[i], cs[i] + 0.5 * R.neg_entropy(tg)[i], 1e-12, 'weighted sum') end
c.raises(function() return R.combine{ { 'x', R.majority } } end, 'part 1 must be')

-- ---- the statistics, against the logits ----
local model = empo.models.new(check.tiny_hf(), 5)
local rows = { { prompt = { 1, 2, 3 }, completion = { 4, 5, 6 } }, { prompt = { 9 }, completion = { 8 } } }
local lp = empo.no_grad(logprob.completions, model, rows, { temperature = 0.8, self_certainty = true })
local logits = empo.no_grad(function() return model(empo.tensor({ { 1, 2, 3, 4, 5 } }, 'i64')) end)
local row = (logits[1][3] * (1 / 0.8)):log_softmax(1):tolist()     -- predicts token 4
local s = 0
for v = 1, #row do s = s + row[v] end
local want = -math.log(#row) - s / #row
c.near(lp.self_certainty:tolist()[1][1], want, 1e-5, 'self-certainty = -log V - mean log p, at the temperature')
c.ok(lp.self_certainty:tolist()[1][1] >= 0, 'KL(uniform || p) >= 0')

-- ---- a trainer step fills them ----
local corpus = {}
for i = 1, 40 do corpus[i] = string.format('%d and %d make %d', i, i, 2 * i) end
local tok = check.tiny_tokenizer(corpus, { vocab_size = 290 })
local m2 = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 96 }, 6)
for _, reward in ipairs({ R.neg_entropy, R.self_certainty, R.random }) do
  local t = empo.rl.trainer{ model = m2, tokenizer = tok, data = empo.data.list({ '1 and 1 make', '2 and 2 make' }),
                             sample = { n = 3, max_new_tokens = 5 }, extract = false, cluster = empo.cluster.exact,
                             reward = reward, prompts_per_step = 2, steps = 1,
                             optim = { lr = 0 } }   -- the model stays as it sampled: compared below
  local rec = t:step()
  local g1 = t.last.groups[1]
  c.ok(type(rec.reward) == 'number' and rec.reward == rec.reward, tostring(reward) .. ': a step runs')
  if R.needs_tokens(reward) then
    c.eq(#g1.token_entropy, 3, tostring(reward) .. ': the group holds the token statistics')
    -- the sampler's statistics (C) equal a teacher-forced pass through the same model
    local rows = {}
    for k = 1, 3 do rows[k] = { prompt = g1.prompt_ids, completion = g1.samples[k].ids } end
    local lp = empo.no_grad(require('empo.rl.logprob').completions, m2, rows, { self_certainty = true })
    local e, s_, m = lp.entropy:tolist(), lp.self_certainty:tolist(), lp.mask:tolist()
    for k = 1, 3 do
      local n, se, ss = 0, 0, 0
      for t = 1, #m[k] do if m[k][t] > 0 then n, se, ss = n + 1, se + e[k][t], ss + s_[k][t] end end
      c.near(g1.token_entropy[k], se / n, 1e-5, 'mean token entropy as a teacher-forced pass gives it')
      c.near(g1.self_certainty[k], ss / n, 1e-5, 'mean self-certainty as a teacher-forced pass gives it')
    end
  end
end

c.done()
