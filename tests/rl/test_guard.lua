-- tests/rl/test_guard.lua — the collapse guard (empo.rl.guard) on scripted
-- runs: quiet on a healthy run (entropy falling, answers still about the
-- questions), firing on a scripted collapse after `patience` steps,
-- putting back the weights and AdamW moments of the last snapshot before
-- the streak, lowering the learning rate, and stopping after max_rollbacks.
local check = require 'check'
local empo = require 'empo'
local guard = require 'empo.rl.guard'
local c = check.new('test_guard')

local function options(changes)
  local o = {}
  for k, v in pairs(guard.DEFAULTS) do o[k] = v end
  for k, v in pairs(changes or {}) do o[k] = v end
  o.on = true
  return o
end

-- a trainer as the guard sees it: a model (its snapshots are checkpoints
-- on disk), its parameters, AdamW, a step count
local function fake_trainer()
  local model = empo.models.new(check.tiny_hf(), 1)
  local t = { model = model, params = model:parameters(), step_count = 0 }
  t.opt = empo.optim.adamw{ params = t.params, lr = 0.1 }
  return t
end

-- every parameter and moment, as flat lists (exact comparisons)
local function state_of(t)
  local st, out = t.opt:state(), {}
  for i, p in ipairs(t.params) do
    out[#out + 1], out[#out + 2], out[#out + 3] = p:reshape(-1):tolist(), st.m[i]:reshape(-1):tolist(), st.v[i]:reshape(-1):tolist()
  end
  return out
end

-- one step: the weights move (as an update would), then the guard looks
local function step(g, t, rec)
  t.step_count = t.step_count + 1
  rec.step = t.step_count
  local loss = (t.params[2] * t.params[2]):sum() + t.params[1]:sum()
  loss:backward()
  t.opt:step()
  t.opt:zero_grad()
  return g:observe(t, rec)
end

local healthy = function(i)
  return { answer_rate = 0.98, response_length = 40 - i * 0.05, distinct_answers = 0.95, truncated = 0.01,
           low_entropy = math.min(0.2 + i * 0.01, 0.95) }                  -- entropy falls, answers stay varied
end
local collapsed = { answer_rate = 0.55, response_length = 12, distinct_answers = 0.1, truncated = 0.0, low_entropy = 1.0 }

do   -- a healthy run of 90 steps: never fires, even with entropy ~0 on most groups at the end
  local t = fake_trainer()
  local g = guard.new(options())
  local fired = 0
  for i = 1, 90 do if step(g, t, healthy(i)) then fired = fired + 1 end end
  c.eq(fired, 0, 'no action on a healthy run')
  c.eq(g.lr_scale, 1, 'the learning rate is untouched')
end

do   -- entropy ~0 everywhere alone is not a collapse: it is what EMPO minimizes
  local t = fake_trainer()
  local g = guard.new(options())
  for i = 1, 3 do step(g, t, healthy(i)) end
  local rec = healthy(4)
  rec.low_entropy = 1.0
  c.eq(g:diagnose(rec), nil, 'low entropy with the answers still varied is healthy')
  rec.distinct_answers = 0.2
  c.ok((g:diagnose(rec) or ''):find('majority answers differ', 1, true) ~= nil, 'the same answer for every question is not')
  rec.distinct_answers, rec.response_length = 0.95, 90
  c.ok((g:diagnose(rec) or ''):find('response length drifted', 1, true) ~= nil, 'nor a drifting length')
  rec.response_length, rec.truncated = 40, 0.5
  c.ok((g:diagnose(rec) or ''):find('max_new_tokens', 1, true) ~= nil, 'nor repetition up to the length limit')
  local lost = healthy(4)
  lost.answer_rate = 0.3
  c.ok((g:diagnose(lost) or ''):find('answer rate fell', 1, true) ~= nil, 'a halved answer rate is a collapse whatever the entropy')
end

do   -- a scripted collapse from step 12: rollback to the older snapshot (step 5), lower lr, then a stop
  local t = fake_trainer()
  local g = guard.new(options{ patience = 2, every = 5, max_rollbacks = 1, lr_factor = 0.5 })
  local at10
  local acts = {}
  for i = 1, 11 do
    step(g, t, healthy(i))
    if i == 5 then at10 = t.params[2]:tolist() end
  end
  c.eq(step(g, t, collapsed), nil, 'one collapsing step is within patience')
  local act = step(g, t, collapsed)
  c.ok(act and act.action == 'rollback', 'the second fires a rollback')
  c.eq(act and act.to_step, 5, 'to the older of the last two snapshots (every 5 healthy steps: 5 and 10)')
  c.ok((act and act.reason or ''):find('semantic entropy ~0 on 100%', 1, true) ~= nil, 'and says why: ' ..
       tostring(act and act.reason))
  c.near(t.params[2]:tolist()[1], at10[1], 0, 'the weights are those of step 5')
  c.eq(g.lr_scale, 0.5, 'the learning rate is scaled by lr_factor')
  acts[#acts + 1] = step(g, t, collapsed) or false
  acts[#acts + 1] = step(g, t, collapsed) or false
  c.ok(acts[1] == false and acts[2] and acts[2].action == 'stop', 'after max_rollbacks the next collapse stops the run')
  c.near(t.params[2]:tolist()[1], at10[1], 0, 'with the good weights back')
  local dir = g.dir
  c.ok(g.temporary and empo.fs.exists(dir .. '/checkpoint-5'), 'the snapshot is a checkpoint on disk: ' .. tostring(dir))
  g:close()
  c.ok(not empo.fs.exists(dir), 'a temporary snapshot directory goes with the guard')
end

do   -- disk snapshots restore the exact weights and moments, also after a resume (a new guard on the same directory)
  local dir = check.tmpdir() .. '/guard'
  local t = fake_trainer()
  local g = guard.new(options{ patience = 1, every = 5 }, dir)
  g:take_snapshot(t)
  local at = {}
  for i = 1, 12 do
    step(g, t, healthy(i))
    if i == 5 or i == 10 then at[i] = state_of(t) end
  end
  c.eq(g.snapshots, { 5, 10 }, 'the last two snapshots are kept: ' .. table.concat(g.snapshots, ', '))
  -- the process ends after step 12; a resumed run at step 12 (new weights, say) adopts them
  local t2 = fake_trainer()
  t2.step_count = 12
  local g2 = guard.new(options{ patience = 1, every = 5 }, dir)
  g2:load_state(g:state())
  g2:adopt(12)
  c.eq(g2.snapshots, { 5, 10 }, 'a resumed run finds the snapshots taken before it')
  local act = step(g2, t2, collapsed)
  c.ok(act and act.action == 'rollback' and act.to_step == 5, 'a rollback after a resume goes to step 5')
  local got, want, same = state_of(t2), at[5], true
  for i = 1, #want do
    for j = 1, #want[i] do same = same and got[i][j] == want[i][j] end
  end
  c.ok(same, 'the weights and both AdamW moments are those of step 5, bit for bit')
  c.eq(t2.opt:state().t, 5, 'and the optimizer step count')
  c.eq(g2.snapshots, { 5 }, 'the newer snapshot is gone')
  g2:adopt(3)
  c.eq(g2.snapshots, {}, 'snapshots past a resumed step are removed (those steps run again)')
  g2:close()
  c.ok(empo.fs.exists(dir), 'a run directory\'s snapshots stay after close')
end

do   -- drift: the samples' NLL under the starting model, over the last 3 steps
  local t = fake_trainer()
  local g = guard.new(options{ patience = 2 })
  local function with_nll(i, nll) local r = healthy(i); r.base_nll = nll; return r end
  for i = 1, 3 do step(g, t, with_nll(i, 0.11)) end
  c.eq(step(g, t, with_nll(4, 0.15)), nil, 'a noisy step is not drift')
  c.eq(g:diagnose(with_nll(5, 0.16)), nil, 'nor a 3-step mean 1.3x the start')
  step(g, t, with_nll(5, 0.30))
  local act = step(g, t, with_nll(6, 0.35))
  c.ok(act and act.action == 'rollback' and act.reason:find('drifted from the starting model', 1, true) ~= nil,
       'a 3-step mean 2x the start, twice in a row, rolls back: ' .. tostring(act and act.reason))
  c.eq(step(g, t, with_nll(7, 0.12)), nil, 'after the rollback the window holds only the new weights\' steps')
  c.eq(g:recent('base_nll', with_nll(8, 0.12)), 0.12, 'so the drifted steps before it are not averaged in')
  local g0 = guard.new(options{ drift = 0 })
  for i = 1, 3 do g0.seen[i] = with_nll(i, 0.1) end
  c.eq(g0:diagnose(with_nll(4, 5)), nil, 'drift = 0 turns the drift rule off')
end

do   -- the AdamW moments come back too, and the state a checkpoint keeps round-trips
  local t = fake_trainer()
  local g = guard.new(options{ action = 'stop', patience = 1 })
  g:take_snapshot(t)                                   -- step 0, as the trainer takes it
  local m0 = t.opt:state().m[2]:tolist()
  for i = 1, 4 do step(g, t, healthy(i)) end
  local act = step(g, t, collapsed)
  c.ok(act and act.action == 'stop', "action = 'stop' stops at the first firing")
  c.eq(t.opt:state().m[2]:tolist(), m0, 'the moments are those of the snapshot')
  local g2 = guard.new(options())
  g2:load_state(g:state())
  c.eq(g2.base.answer_rate, g.base.answer_rate, 'the baseline survives a checkpoint')
end

do   -- the start of a run from a model directory: only its source is written, and a rollback to it is exact
  local dir = check.tmpdir()
  local t = fake_trainer()
  t.model:save_pretrained(dir .. '/model')
  t.recipe = { model = dir .. '/model' }
  local start = state_of(t)
  local g = guard.new(options{ patience = 1, every = 100 }, dir .. '/guard')
  g:take_snapshot(t)
  c.ok(not empo.fs.exists(dir .. '/guard/checkpoint-0/model.safetensors') and
       empo.fs.exists(dir .. '/guard/checkpoint-0/state.json'), 'no model-sized write for the starting state')
  for i = 1, 4 do step(g, t, healthy(i)) end
  local act = step(g, t, collapsed)
  c.ok(act and act.action == 'rollback' and act.to_step == 0, 'a rollback to the start')
  local got, same = state_of(t), true
  for i = 1, #start do
    for j = 1, #start[i] do same = same and got[i][j] == start[i][j] end
  end
  c.ok(same, 'gives the directory\'s weights and zero moments, bit for bit')
  c.eq(t.opt.t, 0, 'and step count 0')
end

do   -- action = 'watch': the verdict, no change
  local t = fake_trainer()
  local g = guard.new(options{ action = 'watch', patience = 1 })
  for i = 1, 3 do step(g, t, healthy(i)) end
  local before = t.params[2]:tolist()
  local act = g:observe(t, collapsed)
  c.ok(act and act.action == 'watch' and g.lr_scale == 1, 'watch says why and keeps the learning rate')
  c.eq(t.params[2]:tolist(), before, 'and the weights')
end

c.raises(function() guard.new(options{ action = 'panic' }) end, "guard.action must be 'rollback', 'stop' or 'watch'")
c.done()
