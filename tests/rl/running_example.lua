-- tests/rl/running_example.lua — the groups the empo.rl tests share: G = 8
-- answers {a, a, a, b, b, c, none, none}, scored with the defaults (math
-- clustering, cluster share, GRPO), and the values computed by hand.
--
--   G = 8 answers {a, a, a, b, b, c, none, none}.
--   shares (empty answers as singletons, the reference): 3/8 3/8 3/8 2/8 2/8 1/8 1/8 1/8
--   H = -(3/8 ln 3/8 + 1/4 ln 1/4 + 3 * 1/8 ln 1/8) = 1.4941751382893083
--   EMPO rewards r = 3/8 3/8 3/8 1/4 1/4 1/8 0 0 (empty answers get 0), mean 7/32
--   Dr.GRPO r - mean = 5/32 5/32 5/32 1/32 1/32 -3/32 -7/32 -7/32
--   RLOO (G/(G-1)) (r - mean) = 5/28 5/28 5/28 1/28 1/28 -3/28 -1/4 -1/4
--   GRPO std (n - 1) = sqrt(23/128 / 7); A = (r - mean) / (std + 1e-6)
local empo = require 'empo'

local M = {}
M.completions = {
  'so \\boxed{a}', 'hence \\boxed{a}', '\\boxed{a}', '\\boxed{b}', 'thus \\boxed{ b }', '\\boxed{c}',
  'I give up', 'the answer is a',      -- no box: empty answers (no fallback)
}
M.ids = { 1, 1, 1, 2, 2, 3, 0, 0 }
M.group = empo.rl.score(M.completions, { question = 'which letter?' })
-- r - mean(r), and the GRPO advantages (sample std, eps 1e-6)
M.dev = { 5 / 32, 5 / 32, 5 / 32, 1 / 32, 1 / 32, -3 / 32, -7 / 32, -7 / 32 }
M.grpo = {}
for i = 1, 8 do M.grpo[i] = M.dev[i] / (math.sqrt(23 / 128 / 7) + 1e-6) end
return M
