-- recipes/math.lua — EMPO on math questions without labels: the main job.
--
--     empo run recipes/math.lua                              # the arith world (models/arith-base, data/arith/)
--     empo run recipes/math.lua model=DIR data=train.jsonl eval=test.jsonl steps=50 sample.n=16
--
-- Each step samples G completions for B questions, clusters their boxed
-- answers by meaning, keeps the groups whose semantic entropy says the
-- model is neither sure nor lost, rewards each completion with its
-- cluster's share and updates with the clipped surrogate. Gold answers in
-- the data are used for the accuracy printed before and after, never for
-- the reward. Any field can be overridden as key=value (dotted for the
-- tables: sample.n=16, optim.lr=1e-5); docs/recipes.md lists them all.
local empo = require 'empo'

local G = 8
-- the arith world's files, found from this file's folder (so the recipe runs from any directory)
local root = (debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.') .. '/..'
return empo.recipe {
  name    = 'math',
  model   = root .. '/models/arith-base',                -- a Hugging Face directory (config.json, safetensors, tokenizer.json)
  data    = root .. '/data/arith/train.jsonl',           -- JSONL with "question" (and "answer", for metrics only)
  eval    = root .. '/data/arith/test.jsonl',
  prompt  = empo.prompt.chatml{ system = 'Please reason step by step, and put your final answer within \\boxed{}.' },
  sample  = { n = G, temperature = 1.0, top_p = 1.0, max_new_tokens = 160 },
  cluster = empo.cluster.math,
  -- groups where at most one pair of samples agrees (entropy > 0.9 ln G) carry no vote: left out
  -- (0.9 chosen on data/arith/valid.jsonl over 0.75 and no filter; docs/results.md)
  filter  = empo.filter.entropy{ low = 0.0, high = 0.9 * math.log(G) },
  reward  = empo.reward.cluster_share,
  advantage = empo.advantage.grpo,
  loss    = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28, agg = 'token-mean' },
  optim   = { lr = 1e-5, clip_grad = 1.0 },
  guard   = { on = true },                        -- the collapse guard: roll back and lower lr if the run collapses
  steps   = 90, prompts_per_step = 16, seed = 1,
}
