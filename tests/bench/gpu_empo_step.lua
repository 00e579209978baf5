-- tests/bench/gpu_empo_step.lua — one EMPO step on the GPU, by phase, at a
-- Qwen2 shape with random weights: sample G completions of NEW tokens for
-- P random prompts of T tokens (the KV cache, the C decoder), the old
-- log-probs recomputed with the update's forward (no grad), then the update
-- over micro-batches of at most MICRO tokens (completion-position log-probs
-- through the fused head, the clipped surrogate, backward), gradient
-- clipping and AdamW. The advantages are random signs (a fixed seed): the
-- clustering of decoded answers runs on the CPU and is no part of what the
-- GPU is timed on. tests/bench/gpu_empo_step_torch.py is the same step the
-- way TRL computes it (transformers' generate, bf16 autocast); check.sh
-- prints both. The update's MFU is against the card's measured bf16 matmul
-- rate (an 8192-cube product through empo.linear_bf16). It also reports the
-- sampler/update mismatch: |sampler log-prob - update log-prob| on the same
-- weights (mean, max) and the share of tokens whose first ratio would fall
-- outside the clip band [0.8, 1.28] had the sampler's log-probs been used.
-- With bf16 the f32 products left (the head's, attention's) run in TF32, as
-- the trainer's default tf32 = 'auto' has them.
--
--     empo run tests/bench/gpu_empo_step.lua [shape] [P] [G] [T] [NEW] [precision] [MICRO]
--       defaults qwen05 16 8 256 512 bf16 8192 (precision f32: products in f32)
-- Prints one line: gpu_empo_step shape=... step_s=... sample_s=... old_s=... update_s=...
--   tokens_per_s=... mfu=... peak_mb=...
local empo = require 'empo'
local logprob = require 'empo.rl.logprob'
local mixed = require 'empo.nn.mixed'
local clock = require('empo.run.log').clock

local shape, P, G = arg[1] or 'qwen05', tonumber(arg[2] or 16), tonumber(arg[3] or 8)
local T, NEW, precision = tonumber(arg[4] or 256), tonumber(arg[5] or 512), arg[6] or 'bf16'
local MICRO = tonumber(arg[7] or 8192)
local cfg = require('gpu_shapes').config(shape)

local gpu, why = empo.cuda_device()
if not gpu then
  io.stderr:write('gpu_empo_step: no CUDA device: ' .. why .. '\n')
  os.exit(77)
end

-- the card's bf16 product rate, TFLOP/s (the best of 3 after a warm-up)
local function matmul_rate(n)
  local x = empo.randn({ n, n }):cuda()
  local w = empo.randn({ n, n }):cuda()
  local w16 = w:bfloat16()
  local best = math.huge
  for i = 0, 3 do
    local t0 = clock()
    local y = empo.no_grad(empo.linear_bf16, x, w, w16)
    y:sum():item()   -- waits for the device
    if i > 0 then best = math.min(best, clock() - t0) end
    y:free()
  end
  x:free(); w:free(); w16:free()
  return 2 * n ^ 3 / best / 1e12
end

local model = empo.models.new(cfg, 1):to('cuda')
if precision == 'bf16' then mixed.attach(model) end
local tf32 = precision == 'bf16'   -- as the trainer's tf32 = 'auto': the head's and attention's products in TF32
empo.cuda_allow_tf32(tf32)
local opt = empo.optim.adamw { params = model:parameters(), lr = 1e-6 }
local loss_fn = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28, agg = 'token-mean' }
local g = empo.Generator(0, 3)
local prompts = {}
for i = 1, P do prompts[i] = g:randint(0, cfg.vocab_size - 300, T):tolist() end

local function step(seed, new)
  local t0 = clock()
  local out = empo.sample.generate(model, nil, prompts, { n = G, temperature = 1.0, max_new_tokens = new, seed = seed,
                                                          ignore_eos = true, bf16_weights = precision == 'bf16' })
  local t1 = clock()
  local rows, tokens = {}, 0
  for i, s in ipairs(out) do
    rows[i] = { prompt = prompts[math.floor((i - 1) / G) + 1], completion = s.ids, sampler = s.logprobs,
                adv = g:rand(1):item() < 0.5 and -1 or 1 }
    tokens = tokens + #s.ids
  end
  -- micro-batches of whole prompts' groups, at most MICRO tokens each
  local batches, cur, n = {}, {}, 0
  for i, r in ipairs(rows) do
    local cost = #r.prompt + #r.completion
    if n + cost > MICRO and #cur > 0 then batches[#batches + 1], cur, n = cur, {}, 0 end
    cur[#cur + 1], n = r, n + cost
    if i == #rows then batches[#batches + 1] = cur end
  end
  local opts = { shared_prompt = 'auto' }
  local gap = { sum = 0, max = 0, n = 0, out = 0 }   -- the sampler's log-probs against the update's forward
  for _, b in ipairs(batches) do   -- the old log-probs: the update's own forward on these weights
    local lp = empo.no_grad(logprob.completions, model, b, opts).logp:tolist()
    for k, r in ipairs(b) do
      r.old = lp[k]
      for t = 1, #r.completion do
        local d = r.sampler[t] - r.old[t]
        local ratio = math.exp(-d)   -- what the update's first ratio would be on the sampler's log-probs
        gap.sum, gap.n, gap.max = gap.sum + math.abs(d), gap.n + 1, math.max(gap.max, math.abs(d))
        if ratio < 0.8 or ratio > 1.28 then gap.out = gap.out + 1 end
      end
    end
    empo.collect()
  end
  local t2 = clock()
  for _, b in ipairs(batches) do
    local lp = logprob.completions(model, b, opts)
    local S, W = #b, lp.logp:size(2)
    local old, adv = {}, {}
    for k, r in ipairs(b) do
      local o = {}
      for t = 1, W do o[t] = r.old[t] or 0 end
      old[k], adv[k] = o, r.adv
    end
    local value = loss_fn{ logp = lp.logp, old_logp = empo.tensor(old, { device = 'cuda' }),
                           adv = empo.tensor(adv, { device = 'cuda' }), mask = lp.mask, entropy = lp.entropy }
    ;(value * (S / #rows)):backward()
    empo.collect()
  end
  empo.clip_grad_norm(opt.params, 1.0)
  opt:step()
  opt:zero_grad()
  mixed.refresh(model)
  local norm = opt.params[1]:sum():item()   -- waits for the device
  assert(norm == norm, 'the weights went NaN')
  local t3 = clock()
  return { sample = t1 - t0, old = t2 - t1, update = t3 - t2, tokens = tokens, rows = #rows,
           gap_mean = gap.sum / math.max(gap.n, 1), gap_max = gap.max, out_of_band = gap.out / math.max(gap.n, 1) }
end

step(1, math.min(NEW, 32))   -- warm-up (cuBLASLt's plans, the pool's first blocks), as the torch side's
empo.collect()
local r = step(2, NEW)
local total = r.sample + r.old + r.update
-- the update's FLOPs: forward and backward of every token of every row (6 per weight, plus the
-- attention's scores and values, 12 L ctx d per token over the average context)
local n_params = 0
for _, p in ipairs(model:parameters()) do n_params = n_params + p:numel() end
local tokens = r.rows * T + r.tokens
local ctx = T + NEW / 2
local flops = (6 * n_params + 12 * cfg.num_hidden_layers * ctx * cfg.hidden_size) * tokens
local rate = matmul_rate(shape == 'tiny' and 256 or 8192)
local mem = empo.memory().cuda or { peak = 0 }
print(string.format('gpu_empo_step shape=%s precision=%s tf32=%s prompts=%d n=%d prompt_len=%d new=%d step_s=%.2f sample_s=%.2f '
                    .. 'old_s=%.2f update_s=%.2f tokens_per_s=%.0f mfu=%.3f bf16_tflops=%.0f peak_mb=%.0f '
                    .. 'sampler_gap_mean=%.2e sampler_gap_max=%.2e ratio_outside_clip=%.4f gpu="%s"',
                    shape, precision, tostring(tf32), P, G, T, NEW, total, r.sample, r.old, r.update, r.tokens / total,
                    flops / r.update / (rate * 1e12), rate, mem.peak / 2 ^ 20, r.gap_mean, r.gap_max, r.out_of_band,
                    gpu))
