-- recipes/pretrain.lua — train a decoder language model from scratch (or go
-- on training one) on a JSONL text corpus: the smallest complete
-- "pretrain / SFT" path. Writes runs/<name>/: metrics.jsonl, config.json
-- (the resolved settings), checkpoint-<step>/ (model in the Hugging Face
-- layout + optimizer + state) and `latest`. resume=true continues from the
-- newest checkpoint with bit-identical results.
--
--     empo run recipes/pretrain.lua data=corpus.jsonl steps=500 name=tiny
--     empo run recipes/pretrain.lua data=corpus.jsonl name=tiny resume=true
--
-- Tokens: without tokenizer=..., text is UTF-8 bytes (ids 0-255, BOS 256,
-- EOS 257).
local pretrain = require 'empo.train.pretrain'
pretrain.run(pretrain.config(arg))
