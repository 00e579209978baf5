-- tests/rl/test_trainer.lua — empo.rl.trainer on a tiny random model: one
-- update moves the policy the right way (positive-advantage completions
-- gain log-prob, negative ones lose it); steps run end to end with the
-- recipe's pieces (records, groups, advantages zero-mean per group); a
-- piece replaced between steps takes effect; dynamic sampling refills the
-- batch; a filter that keeps nothing makes no update; recipe errors name
-- the field.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_trainer')

local corpus = {}
for i = 1, 60 do corpus[i] = string.format('%d plus %d is %d. the answer is %d.', i, i + 1, 2 * i + 1, 2 * i + 1) end
local tok = check.tiny_tokenizer(corpus)
local model = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 3)
local data = empo.data.list({ 'what is 1 plus 2?', 'what is 3 plus 4?', 'what is 5 plus 6?', 'what is 7 plus 8?' },
                            { seed = 1 })

-- a deterministic reward with spread: longer completions score higher
local function length_reward(group)
  local r = {}
  for i, s in ipairs(group.completions) do r[i] = #s / 10 end
  return r
end

local recipe = {
  model = model, tokenizer = tok, data = data,
  prompt = empo.prompt.plain{ prefix = 'Q: ', suffix = ' A:' },
  sample = { n = 4, temperature = 1.0, max_new_tokens = 10 },
  extract = false, cluster = empo.cluster.exact, reward = length_reward,
  loss = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28 },
  optim = { lr = 3e-3, clip_grad = 1.0 }, prompts_per_step = 2, steps = 3, seed = 5,
}

local t = empo.rl.trainer(recipe)
c.ok(empo.rl.trainer ~= nil and t.recipe.sample.top_p == 1.0, 'defaults fill the recipe')

-- ---- one step end to end ----
local rec = t:step()
c.eq(rec.step, 1, 'the step count')
c.eq(#t.last.groups, 2, 'one group per question')
for _, g in ipairs(t.last.groups) do
  c.eq(#g.completions, 4, 'G completions')
  local s = 0
  for _, a in ipairs(g.advantages) do s = s + a end
  c.near(s, 0, 1e-9, 'advantages are zero-mean in a group')
  c.ok(#g.prompt_ids > 0 and #g.samples == 4, 'prompt ids and samples kept for inspection')
end
c.ok(rec.update_tokens > 0 and rec.grad_norm > 0, 'an update ran')
for _, k in ipairs({ 'reward', 'reward_std', 'entropy', 'kept', 'clusters', 'answer_rate', 'loss', 'clip_frac',
                     'approx_kl', 'lr', 'seconds_sample', 'seconds_update', 'response_length', 'truncated',
                     'low_entropy', 'distinct_answers' }) do
  c.ok(type(rec[k]) == 'number', 'the record has ' .. k)
end

-- ---- the update moves the policy the right way ----
do
  local logprob = require 'empo.rl.logprob'
  local rows = {}
  for _, g in ipairs(t.last.groups) do
    for k, s in ipairs(g.samples) do
      if #s.ids > 0 and g.advantages[k] ~= 0 then
        rows[#rows + 1] = { prompt = g.prompt_ids, completion = s.ids, adv = g.advantages[k] }
      end
    end
  end
  local function mean_logp(sign)
    local lp = empo.no_grad(logprob.completions, t.model, rows)
    local v, m = lp.logp:tolist(), lp.mask:tolist()
    local s, n = 0, 0
    for i, row in ipairs(rows) do
      if (row.adv > 0) == (sign > 0) then
        for k = 1, #row.completion do s, n = s + v[i][k] * m[i][k], n + m[i][k] end
      end
    end
    return s / math.max(n, 1)
  end
  local before_pos, before_neg = mean_logp(1), mean_logp(-1)
  local lp0 = empo.no_grad(logprob.completions, t.model, rows).logp:tolist()
  for i, row in ipairs(rows) do row.old = lp0[i] end
  t:update(rows)
  t.opt:step()
  t.opt:zero_grad()
  local after_pos, after_neg = mean_logp(1), mean_logp(-1)
  print(string.format('  one update: positive-advantage mean log-prob %.4f -> %.4f, negative %.4f -> %.4f',
                      before_pos, after_pos, before_neg, after_neg))
  c.ok(after_pos > before_pos, string.format('positive-advantage log-prob rises (%.4f -> %.4f)', before_pos, after_pos))
  c.ok(after_neg < before_neg, string.format('negative-advantage log-prob falls (%.4f -> %.4f)', before_neg, after_neg))
end

-- ---- pieces swapped between steps ----
t.recipe.filter = function() return false end
local rec2 = t:step()
c.eq(rec2.kept, 0, 'a filter set between steps takes effect')
c.eq(rec2.update_tokens, 0, 'nothing kept: no update')

-- dynamic sampling: keep only every other group, refill up to 2 more rounds
local calls = 0
t.recipe.filter = function() calls = calls + 1; return calls % 2 == 0 end
t.recipe.dynamic_sampling = 2
local rec3 = t:step()
c.ok(rec3.rounds >= 1 and rec3.groups > 2, 'dynamic sampling sampled more questions')
c.ok(rec3.kept * rec3.groups >= 2 or rec3.rounds == 2, 'until the batch is full or the rounds run out')
c.eq(#t.history, 3, 'every record in history')
t.recipe.steps = 4
t.recipe.filter = nil
c.eq(#t:run(), 4, 'run() goes on to the last step')

-- ---- update_epochs x mini-batches optimizer steps; truncated completions masked ----
do
  local tm = empo.rl.trainer{ model = model, tokenizer = tok, data = data, sample = { n = 4, max_new_tokens = 4 },
                              extract = false, cluster = empo.cluster.exact, reward = length_reward,
                              update_epochs = 2, mini_batches = 2, prompts_per_step = 2, steps = 2 }
  local r = tm:step()
  c.eq(r.optimizer_steps, 4, 'two passes of two mini-batches: four optimizer steps')
  local truncated = 0
  for _, g in ipairs(tm.last.groups) do
    for _, s in ipairs(g.samples) do if s.finish == 'length' then truncated = truncated + 1 end end
  end
  tm.recipe.mask_truncated = true
  local r2 = tm:step()
  local kept_rows = #tm.last.rows
  local t2 = 0
  for _, g in ipairs(tm.last.groups) do
    for _, s in ipairs(g.samples) do if s.finish == 'length' then t2 = t2 + 1 end end
  end
  c.eq(kept_rows, 8 - t2, 'mask_truncated leaves the completions cut at max_new_tokens out of the update')
  c.ok(truncated >= 0 and r2.update_tokens >= 0, 'the record counts the update tokens')
end

-- ---- a step whose gradient is not finite is skipped, the weights untouched ----
do
  local m4 = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 9)
  local ts = empo.rl.trainer{ model = m4, tokenizer = tok, data = data, sample = { n = 4, max_new_tokens = 6 },
                              extract = false, cluster = empo.cluster.exact, reward = length_reward,
                              loss = empo.loss.grpo{ entropy = 1e38 }, prompts_per_step = 2, steps = 1 }
  local w0 = m4:parameters()[1]:clone()
  local r = ts:step()
  c.ok(r.skipped == true and r.grad_norm == nil, 'the record says the step was skipped')
  c.near((m4:parameters()[1] - w0):abs():max():item(), 0, 0, 'the weights did not move')
  c.ok(empo.json.encode(r, { compact = true }) ~= nil, 'and the record still writes as JSON')
end

-- ---- gold answers feed the metrics, never the reward ----
do
  local gd = empo.data.list({ { question = 'what is 1 plus 2?', answer = '3' }, { question = 'what is 2 plus 3?', answer = '4' } })
  local tg = empo.rl.trainer{ model = model, tokenizer = tok, data = gd, sample = { n = 4, max_new_tokens = 6 },
                              extract = function() return '3' end, cluster = empo.cluster.math,
                              reward = length_reward, prompts_per_step = 2, steps = 1 }
  local r = tg:step()
  c.near(r.majority_correct, 0.5, 1e-12, 'the largest cluster is right for one question of two')
  c.ok(r.positive_correct == nil or (r.positive_correct >= 0 and r.positive_correct <= 1),
       'the share of right positive-advantage completions')
  c.eq(tg.last.groups[1].gold, '3', 'the group carries its gold answer for the metrics')
end

-- ---- recipe errors name the field ----
c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = data, steps = -1 }) end, 'steps')
c.raises(function() return empo.rl.trainer({ model = 5, tokenizer = tok, data = data }) end, 'model must be', 'got 5')
c.raises(function() return empo.rl.trainer({ model = '/nonexistent/dir', data = data }) end, 'model=/nonexistent/dir')
c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = 7 }) end, 'data must be', 'got 7')
c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = data }, { nosuch = 1 }) end,
         "unknown setting 'nosuch'")
c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = data }, { 'sample.n=x' }) end,
         'sample.n must be an integer >= 1, got "x"')
-- the GPU settings: a device that does not exist, bf16 products without a GPU, a GPU where none is
c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = data }, { 'device=gpu' }) end,
         "device must be 'cpu' or 'cuda'")
c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = data }, { 'precision=bf16' }) end,
         "precision='bf16' runs the products on the GPU")
if not empo.cuda_available() then
  c.raises(function() return empo.rl.trainer({ model = model, tokenizer = tok, data = data }, { 'device=cuda' }) end,
           "device='cuda': no GPU can be used here")
end
-- ---- the KL term: a frozen copy of the starting policy ----
do
  local m3 = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 8)
  local tk = empo.rl.trainer{ model = m3, tokenizer = tok, data = data, sample = { n = 4, max_new_tokens = 8 },
                              extract = false, cluster = empo.cluster.exact, reward = length_reward,
                              loss = empo.loss.grpo{ kl = 0.5 }, optim = { lr = 5e-3 }, prompts_per_step = 2, steps = 3,
                              frozen_dtype = 'f32' }
  local before = tk.reference:parameters()[1]:clone()
  local r1 = tk:step()
  c.near(r1.kl, 0, 1e-6, 'KL to the reference is 0 before any update')
  local r2 = tk:step()
  c.ok(r2.kl > 0, string.format('and grows once the policy moves (%.3g)', r2.kl))
  c.near((tk.reference:parameters()[1] - before):abs():max():item(), 0, 0, 'the reference never changes')
  c.ok((tk.model:parameters()[1] - before):abs():max():item() > 0, 'the policy does')
end
do   -- the frozen copy in bf16 (the default): half the memory, a KL of rounding before any update
  local m3 = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 8)
  local tk = empo.rl.trainer{ model = m3, tokenizer = tok, data = data, sample = { n = 4, max_new_tokens = 8 },
                              extract = false, cluster = empo.cluster.exact, reward = length_reward,
                              loss = empo.loss.grpo{ kl = 0.5 }, optim = { lr = 5e-3 }, prompts_per_step = 2, steps = 3 }
  c.eq(tk.reference.model.embed_tokens.weight:dtype(), 'bf16', 'the frozen copy keeps its matrices in bf16')
  c.eq(tk.reference.model.norm.weight:dtype(), 'f32', 'and its norms in f32')
  local r1 = tk:step()
  c.ok(r1.kl >= 0 and r1.kl < 1e-4, string.format('its KL to the starting policy is rounding only (%.2g)', r1.kl))
end
-- ---- the collapse guard inside the loop: a scripted collapse rolls the policy back ----
do
  local m4 = empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }, 9)
  local tg = empo.rl.trainer{ model = m4, tokenizer = tok, data = data, sample = { n = 4, max_new_tokens = 8 },
                              extract = false, cluster = empo.cluster.exact, reward = length_reward,
                              optim = { lr = 5e-3 }, prompts_per_step = 2, steps = 12,
                              guard = { on = true, warmup = 2, every = 2, patience = 2, lr_factor = 0.5 } }
  c.ok(tg.guard ~= nil, 'guard.on makes a guard')
  local scripted = false
  local real = tg.guard.diagnose
  tg.guard.diagnose = function(g, rec) return scripted and 'scripted collapse' or real(g, rec) end
  tg:step()
  tg:step()                                           -- healthy: snapshots at steps 0, 2 and 4
  local at2 = tg.model:parameters()[1]:clone()
  tg:step()
  tg:step()
  scripted = true
  local r5 = tg:step()
  c.eq(r5.guard, 'warning', 'the first collapsing step is a warning')
  local r6 = tg:step()
  c.eq(r6.guard, 'rollback', 'the second rolls back')
  c.eq(r6.guard_to_step, 2, 'to the older of the last two snapshots (2 and 4)')
  c.near((tg.model:parameters()[1] - at2):abs():max():item(), 0, 0, 'with step 2 weights')
  scripted = false
  local r7 = tg:step()
  c.near(r7.lr, 2.5e-3, 1e-12, 'and half the learning rate from then on')
  scripted = true
  tg:step()
  tg:step()
  c.ok(tg.guard_stop ~= nil or tg.guard.rollbacks == 2, 'a later collapse rolls back again or stops')
  tg.guard.o.max_rollbacks = 0
  tg:step()
  tg:step()
  c.ok(tg.guard_stop ~= nil, 'past max_rollbacks the run stops')
  local n = #tg.history
  tg:run()
  c.eq(#tg.history, n, 't:run() after a guard stop runs no step')
end

-- ---- in-run evaluation ----
do
  local te = empo.rl.trainer(recipe, { steps = 2, eval_every = 2, name = 'evalrun', out = os.tmpname() .. '.d',
                                       eval = empo.data.list{ { question = 'what is 1 plus 2?', answer = '3' } } })
  te:run()
  c.ok(te.history[1].eval_greedy == nil and type(te.history[2].eval_greedy) == 'number',
       'eval_every puts test accuracy in the records of every k-th step')
  local lines = empo.logger.read_metrics(te.run_dir .. '/metrics.jsonl')
  c.ok(type(lines[2].eval_maj) == 'number', 'and in metrics.jsonl')
  local again = empo.rl.trainer(recipe, { steps = 2, name = 'evalrun', out = te.recipe.out })
  again:run()
  c.eq(#empo.logger.read_metrics(te.run_dir .. '/metrics.jsonl'), 2, 'a fresh run under the same name starts its metrics anew')
end
c.raises(function() return empo.data.list({}) end, 'holds no question')
local t2 = empo.rl.trainer(recipe, { 'sample.n=2', steps = 1 })
c.eq(t2.recipe.sample.n, 2, 'a key=value override')
c.eq(t2.recipe.steps, 1, 'a table override')
local t3 = empo.rl.trainer(recipe, { sample = { n = 3 } })
c.ok(t3.recipe.sample.n == 3 and t3.recipe.sample.temperature == t.recipe.sample.temperature,
     'a partial sample table changes n and keeps the other sampling settings')

c.done()
