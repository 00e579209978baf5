-- tests/bench/lora_sample_bench.lua — sampling with LoRA adapters, the two
-- ways the sampler could run them, in one process on the same bf16 base:
--   low-rank add   the C decoder applies each adapter's update in its step
--                  (what empo does: the sampler's weights are the policy's)
--   merged copy    the adapters folded into a bf16 copy of the projections
--                  before each sampling call (W + s B A, rounded to bf16),
--                  the copy then decoded as a plain bf16 model
-- Both draw the same prompts; each side's best of `rounds` calls. Also
-- prints the merge's own time (paid once a step) and how many merged
-- weights the rounding leaves equal to the base's after one small update.
--
--     empo run tests/bench/lora_sample_bench.lua model=DIR [prompts=16] [n=4] [tokens=64] [rounds=2] [rank=16]
local empo = require 'empo'
local lora = require 'empo.nn.lora'
local clock = empo.logger.clock

local o = empo.config.apply({ model = '', prompts = 16, n = 4, tokens = 64, rounds = 2, rank = 16, threads = 2 }, arg,
                            'lora_sample_bench')
if o.model == '' then error('lora_sample_bench: model=DIR (a model directory) is required', 0) end
empo.set_num_threads(o.threads)

local model = empo.models.from_pretrained(o.model, { dtype = 'bf16' })
lora.apply(model, { rank = o.rank, alpha = 2 * o.rank })
local g = empo.Generator(3, 0)
empo.no_grad(function()   -- adapters as after some training: B small, not zero
  for _, p in ipairs(lora.named_parameters(model)) do
    if p.name:match('lora_B') then p.tensor:copy_(g:randn(unpack(p.tensor:size())) * 1e-3) end
  end
end)
local V = model.config.vocab_size
local prompts = {}
for i = 1, o.prompts do
  local ids = {}
  for t = 1, 24 do ids[t] = (i * 7919 + t * 104729) % math.min(V, 150000) end
  prompts[i] = ids
end
local opts = { n = o.n, max_new_tokens = o.tokens, temperature = 1.0, seed = 1, ignore_eos = true }

-- the merged copy: every adapted projection W + s B A in bf16, in a base view
local function merged_copy()
  local view = lora.base_view(model)
  local copies = {}
  for l = 1, model.config.num_hidden_layers do
    local blk, vblk = model.model.layers:at(l), view.model.layers:at(l)
    for _, name in ipairs(model.lora.targets) do
      local part = lora.PARTS[name]
      local w = blk[part][name]:merged_weight()
      local b = w:to('bf16')
      w:free()
      vblk[part][name].weight = b
      copies[#copies + 1] = b
    end
  end
  return view, copies
end

local function best(f)
  local t = math.huge
  for _ = 1, o.rounds do
    local t0 = clock()
    f()
    t = math.min(t, clock() - t0)
    collectgarbage()
  end
  return t
end

local tokens = o.prompts * o.n * o.tokens
local low = best(function()
  local _, st = empo.sample.generate(model, nil, prompts, opts)
  assert(st.decode == 'c', 'the adapted model did not decode in C')
end)
local merge_s = best(function()
  local _, copies = merged_copy()
  for _, c in ipairs(copies) do c:free() end
end)
local view, copies = merged_copy()
local merged = best(function() empo.sample.generate(view, nil, prompts, opts) end)
-- the rounding: merged bf16 weights equal to the base's (the update lost in the copy)
local same, total = 0, 0
for l = 1, model.config.num_hidden_layers do
  local blk, vblk = model.model.layers:at(l), view.model.layers:at(l)
  for _, name in ipairs(model.lora.targets) do
    local part = lora.PARTS[name]
    local eq = vblk[part][name].weight:to('f32'):eq(blk[part][name].weight:to('f32')):float():sum():item()
    same, total = same + eq, total + vblk[part][name].weight:numel()
  end
end
for _, c in ipairs(copies) do c:free() end

print(empo.info().line)
print(string.format('%d prompts x %d samples x %d tokens, rank %d on %s, %d threads', o.prompts, o.n, o.tokens, o.rank,
                    table.concat(model.lora.targets, ','), o.threads))
print(string.format('%-34s %9s %12s', 'sampling', 'seconds', 'tokens/s'))
print(string.format('%-34s %9.2f %12.0f', 'low-rank add in the C decoder', low, tokens / low))
print(string.format('%-34s %9.2f %12.0f', 'merged bf16 copy (decode only)', merged, tokens / merged))
print(string.format('%-34s %9.2f %12.0f', 'merged bf16 copy (with its merge)', merged + merge_s, tokens / (merged + merge_s)))
print(string.format('ratio (merged with merge / low-rank add): %.2fx; the merge alone %.2f s', (merged + merge_s) / low,
                    merge_s))
print(string.format('merged bf16 weights equal to the base\'s (the update rounded away): %.1f%%', 100 * same / total))
