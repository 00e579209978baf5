-- tests/rl/test_memory.lua — the memory plan (empo.rl.memory): the parameter
-- count of Qwen2.5-0.5B's shape (494,032,768, as its model card says) and
-- of a tiny model against the model itself; the plan of recipes/math.lua
-- at that shape (plain micro-batches under 11.7 GB, checkpointing when one
-- row does not fit, a refusal naming the largest item and what helps);
-- the bound it sets on the allocator's cache while a run lasts, the cache kept
-- between phases when both fit; the trainer
-- refusing before it loads the model, and its update using the plan's
-- micro-batches.
local empo = require 'empo'
local check = require 'check'
local memory = require 'empo.rl.memory'
local recipe = require 'empo.rl.recipe'
local c = check.new('test_memory')

local qwen05 = empo.models.config({ model_type = 'qwen2', hidden_size = 896, intermediate_size = 4864,
  num_hidden_layers = 24, num_attention_heads = 14, num_key_value_heads = 2, vocab_size = 151936,
  tie_word_embeddings = true, max_position_embeddings = 32768 }, 'qwen05')
c.eq(memory.parameter_count(qwen05), 494032768, 'Qwen2.5-0.5B: 494,032,768 parameters')
for _, over in ipairs({ {}, { tie_word_embeddings = false }, { model_type = 'llama', num_key_value_heads = 1 } }) do
  local cfg = check.tiny_hf(over)
  local m = empo.models.new(cfg, 1)
  c.eq(memory.parameter_count(m.config), m:num_parameters(), 'the count of a tiny model: ' .. (over.model_type or 'qwen2'))
end

local math_recipe = recipe.resolve(recipe.load(os.getenv('EMPO_SOURCE_DIR') .. '/recipes/math.lua'), {})
local function plan(over, prompt_tokens)
  local r = check.with(math_recipe, over or {})
  return memory.plan(r, qwen05, { prompt_tokens = prompt_tokens or 100, frozen = 'bf16' })
end

local p = plan{ memory_gb = 11.7 }
print(memory.describe(p))
c.eq(p.checkpoint, false, 'at 11.7 GB the layers keep their activations')
c.ok(p.micro_batch_tokens >= 260 and p.micro_batch_tokens < 8192, 'micro-batches hold a row and are lowered from 8192: ' ..
     p.micro_batch_tokens)
c.ok(p.peak <= 11.7 * 2 ^ 30, 'the peak is within memory_gb')
c.ok(memory.describe(p):find('frozen starting model (bf16)', 1, true) ~= nil, 'the plan names the frozen copy')
local big = plan({ memory_gb = 30 })
c.ok(big.micro_batch_tokens > p.micro_batch_tokens, 'more memory, larger micro-batches')
local tight = plan({ memory_gb = 10.3 })
c.eq(tight.checkpoint, true, 'when one row does not fit plainly, the layers are checkpointed')
c.ok(tight.micro_batch_tokens >= 260, 'and a row fits then: ' .. tight.micro_batch_tokens)
local ok, err = pcall(plan, { memory_gb = 4 })
c.ok(not ok and err:find('memory plan: this run needs about', 1, true) ~= nil, 'too little memory is refused')
c.ok(not ok and err:find('The largest item is AdamW moments (f32), 3.7 GB', 1, true) ~= nil,
     'naming the largest item: ' .. tostring(err):sub(1, 300))
c.ok(not ok and err:find('memory_gb=', 1, true) ~= nil, 'and the setting that would help')
ok, err = pcall(plan, { memory_gb = 10.3, checkpoint = false })
c.ok(not ok and err:find('checkpoint=auto', 1, true) ~= nil, 'checkpoint=false where it would fit: says checkpoint=auto')
c.raises(function() recipe.resolve(math_recipe, { 'memory_gb=0' }) end, 'memory_gb')
c.raises(function() recipe.resolve(math_recipe, { 'checkpoint=maybe' }) end, 'checkpoint')

-- the trainer: refused before the model loads; the update's micro-batches are the plan's
local texts = {}
for i = 1, 50 do texts[i] = string.format('what is %d+%d? it is %d.', i, i, 2 * i) end
local tok = check.tiny_tokenizer(texts)
local cfg = check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }
local model = empo.models.new(cfg, 2)
local data = empo.data.list({ 'what is 1+1?', 'what is 2+2?' })
-- While a run lasts the plan bounds the allocator's cache; closing puts it back.
local cache0 = empo.set_cache_limit(1 * 2 ^ 30)
local restore = memory.apply(p)
c.eq(empo.set_cache_limit(1 * 2 ^ 30), math.max(p.update - p.grads, p.sampling), 'the cache at one phase\'s transients')
restore()
c.eq(empo.set_cache_limit(cache0), 1 * 2 ^ 30, 'restore puts the cache bound back')
local loaded = false
local T = require('empo.rl.trainer')
T.before_model_load = function() loaded = true end
c.raises(function() T.new({ model = model, tokenizer = tok, data = data, memory_gb = 0.1 }) end, 'memory plan:')
c.eq(loaded, false, 'a run that cannot fit is refused before the model loads')
T.before_model_load = nil
local t = T.new({ model = model, tokenizer = tok, data = data, memory_gb = 2, micro_batch_tokens = 64,
                  sample = { n = 2, max_new_tokens = 8 } })
c.eq(t.plan.micro_batch_tokens, 64, 'the recipe\'s micro_batch_tokens is kept when it fits')
local rows = {}
for i = 1, 6 do rows[i] = { prompt = { 1, 2, 3, i }, completion = { 4, 5, 6, 7, 8, 9, 10, 11 } } end
local batches = t:micro_batches(rows)
c.ok(#batches >= 2, 'the update is cut into the plan\'s micro-batches: ' .. #batches)
-- between sampling and the update the cache is emptied only when the plan
-- cannot hold both phases' blocks at once
if (os.getenv('EMPO_CACHE_LIMIT_MB') or '') ~= '0' then
  local function park() local x = empo.zeros(300000); x = nil; empo.collect() end
  park()
  c.ok(empo.memory().cached > 0, 'a block is parked')
  t:between_phases()
  c.ok(empo.memory().cached > 0, 'both phases fit: the cache stays')
  local update = t.plan.update
  t.plan.update = t.plan.budget
  t:between_phases()
  c.eq(empo.memory().cached, 0, 'they do not fit together: the cache is emptied between them')
  t.plan.update = update
end
t:close()
c.done()
