-- recipes/math_lora.lua — EMPO as recipes/math.lua, but training LoRA
-- adapters (rank 16 on every projection of every block) on the frozen
-- base, kept in bf16 (docs/lora.md). The run's result is
-- runs/math_lora/adapter/, PEFT's layout: `empo merge` makes a plain model
-- of it, `empo eval MODEL data.jsonl adapter=DIR` evaluates it.
--
--     empo run recipes/math_lora.lua model=DIR data=train.jsonl eval=test.jsonl
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

return empo.recipe_from(here .. 'math.lua', {
  name = 'math_lora',
  lora = { rank = 16, alpha = 32, dropout = 0,
           targets = { 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj' } },
  optim = { lr = 3e-4, clip_grad = 1.0 },    -- (chosen on data/arith/valid.jsonl over 1e-4 and 1e-3: docs/results_lora.md)
})
