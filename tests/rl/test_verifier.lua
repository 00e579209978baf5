-- tests/rl/test_verifier.lua — empo.cluster.model_verifier: a real
-- empo.models model as by_model's verifier (the next-token logits of " Yes"
-- and " No" after the prompt, checked against the model's own logits, one
-- prompt or a right-padded batch, the stock head's rows or any model's
-- logits, in batches of any size), by_model clustering a group with it,
-- prepare (a step's pairs in one call), and recipes/natural.lua running a step with a verifier directory.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_verifier')

local corpus = {}
for i = 1, 40 do corpus[i] = string.format('Is %d the same as %d? Yes. Is %d like %d? No.', i, i, i, i + 1) end
local tok = check.tiny_tokenizer(corpus)
local model = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 512 }, 12)
local v = empo.cluster.model_verifier(model, { tokenizer = tok })

local prompts = { 'Is 3 the same as 3?', 'Is 12 like 13? Decision:' }
local yes, no = v:yes_no_batch(prompts)
local yes_id, no_id = tok:encode(' Yes')[1], tok:encode(' No')[1]
for i, p in ipairs(prompts) do
  local ids = tok:encode(p)
  local logits = empo.no_grad(function() return model(empo.tensor({ ids }, 'i64')) end):tolist()[1][#ids]
  c.near(yes[i], logits[yes_id + 1], 1e-5, 'the " Yes" logit after prompt ' .. i)
  c.near(no[i], logits[no_id + 1], 1e-5, 'the " No" logit after prompt ' .. i)
  local y1, n1 = v:yes_no(p)
  c.near(y1, yes[i], 1e-5, 'one prompt alone as in the batch')
  c.near(n1, no[i], 1e-5, 'one prompt alone as in the batch')
end

-- the same numbers from a model whose forward is not the stock one (its
-- whole logits are cut), and from batches of one prompt each (batch_tokens)
local custom = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 512 }, 12)
local stock_forward = custom.forward
custom.forward = function(self, ids, opts) return stock_forward(self, ids, opts) end
c.ok(custom:head_rows(empo.tensor({ 1 }, 'i64')) == nil, 'a replaced forward: no head rows (the logits path)')
local many = { prompts[1], prompts[2], 'Is 7 like 8?', 'Is 30 the same as 30? Yes. Is 31' }
local ys, ns = v:forward(many)
for name, other in pairs({ ['a replaced forward'] = empo.cluster.model_verifier(custom, { tokenizer = tok }),
                           ['batch_tokens = 8'] = empo.cluster.model_verifier(model, { tokenizer = tok, batch_tokens = 8 }) }) do
  local y2, n2 = other:forward(many)
  local worst = 0
  for i = 1, #many do worst = math.max(worst, math.abs(y2[i] - ys[i]), math.abs(n2[i] - ns[i])) end
  c.ok(#y2 == #many and worst < 1e-4, name .. ': the same two logits for every prompt (worst ' .. worst .. ')')
end

-- a bf16 head (a frozen base's): its two rows converted, the same numbers as its whole logits
local half = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 512 }, 12)
local owner = half.lm_head or half.model.embed_tokens
owner.weight = owner.weight:detach():to('bf16')
local half_logits = setmetatable({ forward = function(_, ids, o) return half:forward(ids, o) end },   -- (not the stock forward)
                                 { __index = half, __call = function(_, ids, o) return half:forward(ids, o) end })
local yb, nb = empo.cluster.model_verifier(half, { tokenizer = tok }):forward(many)
local yl, nl = empo.cluster.model_verifier(half_logits, { tokenizer = tok }):forward(many)
local worst_bf16 = 0
for i = 1, #many do worst_bf16 = math.max(worst_bf16, math.abs(yb[i] - yl[i]), math.abs(nb[i] - nl[i])) end
c.ok(half:head_rows(empo.tensor({ 1 }, 'i64')):dtype() == 'f32' and worst_bf16 < 1e-4,
     'a bf16 head: f32 rows, the logits path\'s numbers (worst ' .. worst_bf16 .. ')')

local hits0, misses0 = v.cache_hits, v.cache_misses
local yes2, no2 = v:yes_no_batch({ prompts[2], 'a prompt not seen', prompts[1] })
c.ok(v.cache_hits - hits0 == 2 and v.cache_misses - misses0 == 1 and yes2[1] == yes[2] and no2[3] == no[1],
     'decided prompts come from the cache, with the same scores; a new one is computed')
local nocache = empo.cluster.model_verifier(model, { tokenizer = tok, cache = 0 })
nocache:yes_no_batch(prompts); nocache:yes_no_batch(prompts)
c.eq(nocache.cache_hits, 0, 'cache = 0 keeps nothing')
local by = empo.cluster.by_model(v)
local ids, k = empo.cluster.cluster({ 'Paris', 'paris', 'Lyon', 'Paris' }, by, 'The capital of France?')
c.ok(k >= 1 and k <= 3 and ids[1] == ids[4], 'by_model groups with the model (identical answers together)')
-- prepare: a step's groups judged in one call, which the groups then read
local calls, asked = 0, 0
local counting = { yes_no = function(_, p) return v:yes_no(p) end, yes_no_batch = function(_, ps)
  calls, asked = calls + 1, asked + #ps
  return v:yes_no_batch(ps)
end }
local steps = { { answers = { 'Paris', 'paris', 'Lyon', 'Paris' }, question = 'Q1' },
                { answers = { '7', 'seven', '', '7.0' }, question = 'Q2' },
                { answers = { 'Lyon', 'Paris', 'paris', 'Nice' }, question = 'Q1' } }
local plain = {}
for i, g in ipairs(steps) do plain[i] = { empo.cluster.cluster(g.answers, by, g.question) } end
local by_counting = empo.cluster.by_model(counting)
empo.cluster.prepare(by_counting, steps)
-- (3 pairs, 3 more, then 5 new: the template has the question, and (Lyon, Paris) is not (Paris, Lyon))
c.ok(calls == 1 and asked == 3 + 3 + 5, 'prepare: one call for the step, each distinct pair once (' .. asked .. ')')
for i, g in ipairs(steps) do
  local ids2, k2 = empo.cluster.cluster(g.answers, by_counting, g.question)
  c.eq(ids2, plain[i][1], 'prepared group ' .. i .. ': the clusters of the unprepared one')
  c.eq(k2, plain[i][2], 'prepared group ' .. i .. ': as many clusters')
end
c.eq(calls, 1, 'prepared groups do not call the verifier again')
empo.cluster.cluster({ 'Paris', 'Rome' }, by_counting, 'Q1')
c.ok(calls == 2 and asked == 12, 'a pair prepare did not see is asked')
c.raises(function() empo.cluster.prepare(by_counting, { { question = 'Q' } }) end, 'group 1 must be a table with answers')
empo.cluster.prepare(empo.cluster.exact, steps)   -- (a rule with nothing to prepare: a no-op)
c.raises(function()
  empo.cluster.model_verifier(model, { tokenizer = tok, yes = ' Yes', no = ' Yes' }):yes_no('x')
end, 'distinct first tokens')
c.raises(function() empo.cluster.model_verifier(model):yes_no('x') end, 'needs a tokenizer')

-- recipes/natural.lua with a verifier of our own
local source = os.getenv('EMPO_SOURCE_DIR')
if source then
  local dir = os.tmpname()
  os.remove(dir)
  assert(empo.fs.make_dirs(dir))
  check.tiny_tokenizer(corpus, { out = dir })
  model:save_pretrained(dir)
  local t = empo.rl.trainer(source .. '/recipes/natural.lua', {
    model = dir, data = empo.data.list({ 'Is 1 the same as 1?', 'Is 2 like 3?' }), eval = false, out = dir .. '/runs',
    cluster = empo.cluster.by_model(empo.cluster.model_verifier(dir)), prompts_per_step = 2,
    ['sample.n'] = 3, ['sample.max_new_tokens'] = 5, steps = 1 })
  local r = t:step()
  c.ok(type(r.reward) == 'number', 'recipes/natural.lua runs a step with a model verifier')
  c.eq(t.recipe.reward.options.empty, -0.5, 'no answer costs -0.5')
  empo.fs.remove_tree(dir)
end

c.done()
