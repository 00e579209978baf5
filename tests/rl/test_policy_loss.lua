-- tests/rl/test_policy_loss.lua — empo.loss (lua/empo/rl/loss.lua): the
-- policy objective against hand-computed values, then against the same
-- objective in PyTorch (tests/rl/policy_loss_torch.py, float64): value and
-- gradient with respect to the log-probs, for GRPO and GSPO ratios, clipping
-- on both sides, the dual clip, the KL term, the entropy bonus, every
-- aggregation and masks (a completion with no token among them); then the
-- options' errors.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_policy_loss')
local loss = empo.loss

local function T(rows) return empo.tensor(rows) end

-- ---- by hand ----
do
  -- ratio 1, A = 1: pg = -1 per token; token-mean gradient -1/2 per token
  local logp = T({ { 0, 0 } }):requires_grad_()
  local v, st = loss.grpo(){ logp = logp, old_logp = T({ { 0, 0 } }), adv = T({ 1 }), mask = T({ { 1, 1 } }) }
  c.near(v:item(), -1, 1e-7, 'ratio 1, A = 1')
  v:backward()
  c.near(logp.grad:tolist(), { { -0.5, -0.5 } }, 1e-7, 'its gradient')
  c.near(st.clip_frac, 0, 0, 'nothing clipped')
  -- ratio 1.5 > 1 + 0.28 with A > 0: clipped to 1.28, no gradient
  local lp = T({ { math.log(1.5) } }):requires_grad_()
  local v2, st2 = loss.grpo{ clip_high = 0.28 }{ logp = lp, old_logp = T({ { 0 } }), adv = T({ 1 }), mask = T({ { 1 } }) }
  c.near(v2:item(), -1.28, 1e-6, 'the high clip')
  v2:backward()
  c.near(lp.grad:item(), 0, 0, 'no gradient past the clip')
  c.near(st2.clip_high_frac, 1, 0, 'counted as a high clip')
  -- A = -1, ratio e^2: pg = 7.39 without the dual clip, 3 with clip_c = 3
  local big = T({ { 2 } }):requires_grad_()
  local b = { logp = big, old_logp = T({ { 0 } }), adv = T({ -1 }), mask = T({ { 1 } }) }
  c.near(loss.grpo(){ logp = big, old_logp = b.old_logp, adv = b.adv, mask = b.mask }:item(), math.exp(2), 1e-5,
         'a negative advantage, unclipped ratio above 1 + clip_high')
  local v3, st3 = loss.grpo{ clip_c = 3 }(b)
  c.near(v3:item(), 3, 1e-6, 'the dual clip bounds it at -A c')
  c.near(st3.dual_frac, 1, 0, 'counted as dual-clipped')
  -- the KL term alone: k3 at ref = logp is 0
  local z = T({ { 0.3, -0.2 } }):requires_grad_()
  local v4, st4 = loss.grpo{ kl = 0.5 }{ logp = z, old_logp = z:detach(), adv = T({ 0 }), mask = T({ { 1, 1 } }),
                                          ref_logp = z:detach() }
  c.near(v4:item(), 0, 1e-7, 'no advantage, no KL: zero')
  c.near(st4.kl, 0, 1e-7, 'k3 of identical policies')
  -- masked tokens do not count
  local m = T({ { 0, 0, 5 } }):requires_grad_()
  local v5 = loss.grpo(){ logp = m, old_logp = T({ { 0, 0, 0 } }), adv = T({ 1 }), mask = T({ { 1, 1, 0 } }) }
  c.near(v5:item(), -1, 1e-7, 'the masked token (ratio e^5) is ignored')
  v5:backward()
  c.near(m.grad:tolist()[1][3], 0, 0, 'and gets no gradient')
end

-- ---- against PyTorch ----
local python = os.getenv('EMPO_PYTHON') or '/usr/bin/python3'
local source = os.getenv('EMPO_SOURCE_DIR')
if source then
  local g = empo.Generator(2026)
  local cases, batches = {}, {}
  local function rows(t) return t:reshape(t:numel()):tolist() end
  local aggs = { 'token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum', 'seq-mean-token-sum-norm' }
  for _, ratio in ipairs({ 'token', 'sequence' }) do
    for _, agg in ipairs(aggs) do
      for variant = 1, 3 do
        local S, Tn = 5, 7
        local opts = { ratio = ratio, agg = agg, norm = 9, clip_low = 0.2, clip_high = 0.28 }
        if variant >= 2 then opts.clip_c = 3; opts.kl = 0.05 end
        if variant == 3 then opts.entropy = 0.01; opts.clip_low, opts.clip_high = 0.1, 0.1 end
        local logp = -empo.rand(S, Tn, { generator = g }) * 3
        local old = logp + empo.randn(S, Tn, { generator = g }) * (variant == 3 and 0.6 or 0.2)
        local mask = empo.rand(S, Tn, { generator = g }):lt(0.7):to('f32')
        mask[2] = 0                                      -- a completion with no token
        local adv = empo.randn(S, { generator = g })
        local ref = logp + empo.randn(S, Tn, { generator = g }) * 0.3
        local ent = empo.rand(S, Tn, { generator = g }) * 2
        cases[#cases + 1] = { opts = { ratio = ratio, agg = agg, norm = 9, clip_low = opts.clip_low,
                                       clip_high = opts.clip_high, clip_c = opts.clip_c or false,
                                       kl = opts.kl or 0, entropy = opts.entropy or 0 },
                              S = S, T = Tn, logp = rows(logp), old = rows(old), mask = rows(mask),
                              adv = adv:tolist(), ref = rows(ref), ent = rows(ent) }
        batches[#batches + 1] = { opts = opts, logp = logp, old = old, mask = mask, adv = adv, ref = ref, ent = ent }
      end
    end
  end
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p '" .. dir .. "'")
  empo.fs.write_atomic(dir .. '/cases.json', empo.json.encode(cases))
  local rc = os.execute(string.format("%s '%s/tests/rl/policy_loss_torch.py' '%s/cases.json' '%s/out.json'",
                                      python, source, dir, dir))
  c.ok(rc == 0 or rc == true, 'the PyTorch oracle ran')
  local ref = empo.json.read_file(dir .. '/out.json')
  os.execute("rm -rf '" .. dir .. "'")
  local worst_v, worst_g = 0, 0
  for i, b in ipairs(batches) do
    local lp = b.logp:clone():requires_grad_()
    local fn = b.opts.ratio == 'sequence' and loss.gspo(b.opts) or loss.grpo(b.opts)
    local v = fn{ logp = lp, old_logp = b.old, adv = b.adv, mask = b.mask, ref_logp = b.ref, entropy = b.ent }
    v:backward()
    local want = ref[i]
    local dv = math.abs(v:item() - want.value) / math.max(math.abs(want.value), 1e-3)
    local got = rows(lp.grad)
    local dg = 0
    for k = 1, #got do dg = math.max(dg, math.abs(got[k] - want.grad[k])) end
    worst_v, worst_g = math.max(worst_v, dv), math.max(worst_g, dg)
    c.ok(dv < 1e-5 and dg < 1e-5, string.format('case %d (%s, %s): value %.3g rel, grad %.3g', i, b.opts.ratio,
                                               b.opts.agg, dv, dg))
  end
  print(string.format('  %d cases against PyTorch: worst value %.2e (relative), gradient %.2e', #batches,
                      worst_v, worst_g))
end

-- ---- options and batches ----
c.raises(function() return loss.grpo{ agg = 'sum' } end, 'agg must be')
c.raises(function() return loss.grpo{ ratio = 'word' } end, "ratio must be 'token'")
c.raises(function() return loss.grpo{ clip_c = 0.5 } end, 'clip_c')
c.raises(function() return loss.grpo{ agg = 'seq-mean-token-sum-norm' } end, 'norm')
c.raises(function() return loss.grpo{ beta = 1 } end, "unknown option 'beta'")
c.raises(function() return loss.grpo(){ logp = T({ { 0 } }) } end, 'batch.old_logp must be a tensor')
c.raises(function() return loss.grpo{ kl = 0.1 }{ logp = T({ { 0 } }), old_logp = T({ { 0 } }), adv = T({ 1 }),
                                                 mask = T({ { 1 } }) } end, 'batch.ref_logp')
c.raises(function() return loss.grpo(){ logp = T({ { 0, 0 } }), old_logp = T({ { 0 } }), adv = T({ 1 }),
                                        mask = T({ { 1, 1 } }) } end, 'batch.old_logp is')
c.raises(function() return loss.grpo(){ logp = T({ { 0 } }), old_logp = T({ { 0 } }), adv = T({ 1, 2 }),
                                        mask = T({ { 1 } }) } end, '2 values for 1 completions')
c.ok(tostring(loss.gspo()) == 'empo.loss.gspo' and loss.gspo().options.clip_low == 3e-4, 'GSPO defaults')

c.done()
