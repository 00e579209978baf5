-- recipes/natural.lua — EMPO on free-form questions (MMLU-Pro, natural
-- reasoning): the answers (the boxed one, else "the answer is X") are
-- clustered by a verifier language model asked whether two answers mean the
-- same (empo.cluster.by_model over a Hugging Face model directory, loaded on
-- first use); no-answer completions get -0.5. Everything else is
-- recipes/math.lua's; any field can be overridden as key=value.
--
--     empo run recipes/natural.lua model=DIR data=questions.jsonl eval=test.jsonl
--     (the verifier: edit VERIFIER below, or set t.recipe.cluster from the REPL)
local empo = require 'empo'
local here = debug.getinfo(1, 'S').source:match('^@(.*/)') or './'

local VERIFIER = 'models/verifier'
return empo.recipe_from(here .. 'math.lua', {
  name = 'natural',
  prompt = empo.prompt.chatml{ system = 'Answer the question. End with "The answer is X." where X is your answer.' },
  extract = { fallback = 'phrase' },
  cluster = empo.cluster.by_model(empo.cluster.model_verifier(VERIFIER)),
  reward = empo.reward.cluster_share{ empty = -0.5 },
})
