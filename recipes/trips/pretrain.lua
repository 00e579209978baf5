-- recipes/trips/pretrain.lua — make the trips world's base model from
-- nothing (empo.train.base_model): write the world's files
-- (recipes/trips/generate.lua), train a byte-level BPE tokenizer on the
-- corpus, pretrain a tiny Qwen2-architecture model on it, save both in the
-- Hugging Face layout with a provenance file.
--
--     empo run recipes/trips/pretrain.lua                  # -> models/trips-base
local empo = require 'empo'
local trips = require 'empo.world.trips'
local base_model = require 'empo.train.base_model'

local cfg = empo.config.apply({
  data = 'data/trips', out = 'models/trips-base', seed = 1, corpus = trips.FILE_DEFAULTS.corpus,
  guess = trips.DEFAULTS.guess, vocab = 512, steps = 2000, seq = 256, batch = 32, lr = 2e-3, min_lr = 1e-4, warmup = 60,
  threads = 2, run = 'trips-pretrain', runs = 'runs', regenerate = false,
}, arg, 'trips/pretrain')
base_model.make(cfg, {
  module = trips, label = 'trips', files = { corpus = cfg.corpus, guess = cfg.guess },
  about = 'The trips world\'s base model (empo.world.trips)',
  command = 'empo run recipes/trips/pretrain.lua ' .. table.concat(arg or {}, ' '),
})
