-- tests/cuda/test_trainer.lua — the EMPO trainer with device = 'cuda'
-- against the same recipe on the CPU: a tiny model, the same seed, two
-- steps each. Sampling (the KV cache, the draws), clustering (on the CPU,
-- from the decoded answers), rewards and advantages, the update (shared
-- prompts, the fused head, AdamW, gradient clipping) must give the same
-- completions and the same step records to float tolerance, and the weights
-- after two steps must agree; the same with the KL term, the dual clip and
-- the guard's drift scorer. Then a checkpoint written from the device
-- resumes there, and the resumed run has the bits of one that never
-- stopped. In CI on the emulated device; on a GPU by tests/device/check.sh.
local empo = require 'empo'
local check = require 'check'
local c = check.new('cuda/test_trainer')

check.need_cuda()

local corpus = {}
for i = 1, 60 do corpus[i] = string.format('%d plus %d is %d. the answer is %d.', i, i + 1, 2 * i + 1, 2 * i + 1) end
local tok = check.tiny_tokenizer(corpus)
local cfg = check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }
local questions = { 'what is 1 plus 2?', 'what is 3 plus 4?', 'what is 5 plus 6?', 'what is 7 plus 8?' }

-- an EMPO recipe: each completion's cluster share as its reward; the "answer" is its length mod 3,
-- so a random tiny model's samples agree often enough for the advantages to move the policy
local function recipe(device, over)
  local r = {
    model = empo.models.new(cfg, 3), tokenizer = tok, data = empo.data.list(questions, { seed = 1 }),
    prompt = empo.prompt.plain{ prefix = 'Q: ', suffix = ' A:' },
    sample = { n = 4, temperature = 1.0, top_p = 0.95, max_new_tokens = 10 },   -- (truncated: old log-probs recomputed)
    extract = function(text) return tostring(#text % 3) end, cluster = empo.cluster.exact,
    reward = empo.reward.cluster_share, loss = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28 },
    optim = { lr = 3e-3, clip_grad = 1.0 }, prompts_per_step = 2, steps = 2, seed = 5, device = device,
  }
  for k, v in pairs(over or {}) do r[k] = v end
  return r
end

local cpu, gpu = empo.rl.trainer(recipe('cpu')), empo.rl.trainer(recipe('cuda'))
local start = gpu.model.model.layers:at(1).self_attn.q_proj.weight:cpu()
c.eq(gpu.model:device(), 'cuda', "device = 'cuda' puts the policy on the GPU")
c.eq(gpu.opt.m[1].device, 'cuda', "and AdamW's moments beside it")
do   -- the memory plan counts the card's memory (the emulation's: the host's)
  local memory = require 'empo.rl.memory'
  local total = empo.cuda_memory_bytes()
  c.ok(total and total > 2 ^ 30, string.format('the GPU has %.1f GB', (total or 0) / 2 ^ 30))
  c.ok(math.abs(gpu.plan.budget - math.floor(total / 2 ^ 30 * 0.9 * 10) / 10 * 2 ^ 30) < 1,
       "memory_gb: 90% of the card's memory by default")
  local text = memory.describe(gpu.plan)
  c.ok(text:find('of the GPU', 1, true) and not text:find('runtime', 1, true),
       "the plan says it is the GPU's, without the host's runtime")
  c.ok(text:find('attention scores', 1, true), "and counts the card's attention scores, a slab at a time")
end

local KEYS = { 'reward', 'entropy', 'kept', 'clusters', 'loss', 'clip_frac', 'approx_kl', 'grad_norm',
               'update_tokens', 'response_length' }
for step = 1, 2 do
  local a, b = cpu:step(), gpu:step()
  local same = #cpu.last.groups == #gpu.last.groups
  for g, ga in ipairs(cpu.last.groups) do
    local gb = gpu.last.groups[g]
    for k, s in ipairs(ga.completions) do same = same and gb and gb.completions[k] == s end
  end
  c.ok(same, string.format('step %d: the same completions on the GPU', step))
  local worst, where = 0, ''
  for _, k in ipairs(KEYS) do
    local d = math.abs(a[k] - b[k]) / math.max(1, math.abs(a[k]))
    if d > worst then worst, where = d, k end
  end
  c.ok(worst < 1e-4, string.format('step %d: the records agree (worst %.2g: %s; reward %.4f, loss %.5f)', step,
                                   worst, where, b.reward, b.loss))
  c.ok(b.grad_norm > 0.1, string.format('step %d: an update with a signal (grad norm %.3g)', step, b.grad_norm))
end

-- (per tensor, ||gpu - cpu|| / ||cpu||. AdamW divides by the gradients' own size, so a weight whose
-- gradient is float noise takes that noise into a full step: the keys' bias, whose true gradient is 0
-- (a shift of every key by one vector moves every score of a query alike), is left out)
local worst, where = 0, ''
local pc, pg = cpu.model:named_parameters(), gpu.model:named_parameters()
for i, p in ipairs(pc) do
  local d = p.name:find('k_proj.bias', 1, true) and p.tensor * 0 or pg[i].tensor:cpu() - p.tensor
  local e = math.sqrt((d * d):sum():item() / (p.tensor * p.tensor):sum():item())
  if e > worst then worst, where = e, p.name end
end
c.ok(worst < 1e-4, string.format('the weights after two steps agree (worst %.2g at %s)', worst, where))
c.ok((gpu.model.model.layers:at(1).self_attn.q_proj.weight:cpu() - start):abs():max():item() > 1e-4,
     'and they moved')

-- the KL term to a frozen bf16 reference, the dual clip (empo.where on the device), the collapse
-- guard's drift scorer and truncated sampling (top_p: the old log-probs recomputed): the CPU's records
do
  local over = { loss = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28, kl = 0.05, clip_c = 3 },
                 guard = { on = true, drift = 1 } }
  local a, b = empo.rl.trainer(recipe('cpu', over)), empo.rl.trainer(recipe('cuda', over))
  local worst, where = 0, ''
  for step = 1, 2 do
    local ra, rb = a:step(), b:step()
    for _, k in ipairs({ 'loss', 'kl', 'grad_norm', 'reward', 'clip_frac' }) do
      local d = math.abs(ra[k] - rb[k]) / math.max(1, math.abs(ra[k]))
      if d > worst then worst, where = d, k end
    end
  end
  c.ok(worst < 1e-4, string.format('KL to a bf16 reference, dual clip, guard drift: the records agree (worst %.2g: %s)',
                                   worst, where))
  c.ok(b.reference.model.layers:at(1).mlp.up_proj.weight.device == 'cuda', 'the frozen reference is on the GPU')
end

-- a checkpoint from the device, resumed on the device: bit for bit the run that did not stop
do
  local dir = check.tmpdir()
  local r = recipe('cuda', { out = dir, name = 'gpu', save_every = 1, steps = 1 })
  local t = empo.rl.trainer(r)
  t:run()
  t:close()
  local again = empo.rl.trainer(recipe('cuda', { out = dir, name = 'gpu', resume = true, steps = 2 }))
  c.eq(again.step_count, 1, 'a GPU run resumes from its checkpoint')
  c.eq(again.model:device(), 'cuda', 'on the GPU')
  local d = 0
  for i, p in ipairs(t.model:named_parameters()) do
    d = math.max(d, (again.model:named_parameters()[i].tensor - p.tensor):abs():max():item())
  end
  c.eq(d, 0, 'with the weights it saved, bit for bit')
  again:run()
  again:close()
  local straight = empo.rl.trainer(recipe('cuda', { out = dir, name = 'straight', steps = 2 }))
  straight:run()
  straight:close()
  d = 0
  for i, p in ipairs(straight.model:named_parameters()) do
    d = math.max(d, (again.model:named_parameters()[i].tensor - p.tensor):abs():max():item())
  end
  c.eq(d, 0, 'two steps with a stop and a resume between them: the bits of two steps straight')
end

c.done()
