-- recipes/arith/diagnose.lua — what a base model of the arith world does
-- before any RL, on the held-out test set: greedy, avg@k, maj@k, pass@k,
-- boxed rate, and on the questions greedy gets wrong how often the gold
-- answer wins the vote among k samples and how large the largest wrong
-- cluster is (EMPO can only lift greedy where the vote is right); the
-- share of greedy and sampled solutions that guess instead of computing.
--
--     empo run recipes/arith/diagnose.lua [model=models/arith-base] [eval=data/arith/test.jsonl] [k=8]
local empo = require 'empo'
local eval = require 'empo.rl.eval'

local cfg = empo.config.apply({ model = 'models/arith-base', eval = 'data/arith/test.jsonl', k = 8, n = 0 },
                              arg, 'arith/diagnose')
local here = debug.getinfo(1, 'S').source:sub(2):match('^(.*)/') or '.'
local t = empo.rl.trainer(here .. '/../math.lua', { model = cfg.model, eval = cfg.eval, data = cfg.eval,
                                                    ['sample.n'] = cfg.k })
local set = t.recipe.eval
if cfg.n > 0 then set = set:list(cfg.n) end
local r = t:eval(set, { details = true })
print(eval.table(r))
print(eval.diagnosis(r))
local GUESS = { 'about %d', 'roughly %d', 'around %d' }
local function guesses(text)
  for _, pat in ipairs(GUESS) do if text:find(pat) then return 1 end end
  return 0
end
local g, s = 0, 0
for _, d in ipairs(r.details) do
  g = g + guesses(d.greedy)
  for _, x in ipairs(d.samples) do s = s + guesses(x) end
end
print(string.format('solutions that guess: greedy %.1f%%, samples %.1f%%', 100 * g / r.n, 100 * s / (r.n * r.k)))
print('example (greedy): ' .. r.details[1].greedy:gsub('\n', ' | '))
