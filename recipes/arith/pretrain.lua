-- recipes/arith/pretrain.lua — make the arith world's base model from
-- nothing: write the world's files (recipes/arith/generate.lua), train a
-- byte-level BPE tokenizer on the corpus (digits stay single tokens),
-- pretrain a tiny Qwen2-architecture model on it and save both in the
-- Hugging Face layout, with a provenance file saying how
-- (empo.train.base_model).
--
--     empo run recipes/arith/pretrain.lua                         # -> models/arith-base (about 10 minutes, 2 cores)
--     empo run recipes/arith/pretrain.lua mode=shortcut shortcut=0.6 data=data/arith-shortcut60 out=models/arith-shortcut60
--
-- The committed models/arith-base was made by the first command, on the
-- commit that added it; the same seed gives the same model on a machine
-- with the same thread count and kernels.
local empo = require 'empo'
local arith = require 'empo.world.arith'
local base_model = require 'empo.train.base_model'

local cfg = empo.config.apply({
  data = 'data/arith', out = 'models/arith-base', seed = 1, mode = 'guess', corpus = arith.FILE_DEFAULTS.corpus,
  vocab = 512, steps = 3000, seq = 256, batch = 32, lr = 2e-3, min_lr = 1e-4, warmup = 60, threads = 2,
  run = 'arith-pretrain', runs = 'runs', regenerate = false,
  guess = arith.DEFAULTS.guess, shortcut = arith.DEFAULTS.shortcut, step_error = arith.DEFAULTS.step_error,
}, arg, 'arith/pretrain')
base_model.make(cfg, {
  module = arith, label = 'arith',
  files = { mode = cfg.mode, corpus = cfg.corpus, guess = cfg.guess, shortcut = cfg.shortcut, step_error = cfg.step_error },
  about = 'The arith world\'s base model (empo.world.arith, mode ' .. cfg.mode .. ')',
  command = 'empo run recipes/arith/pretrain.lua ' .. table.concat(arg or {}, ' '),
})
