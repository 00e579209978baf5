-- empo.train — what every training loop needs: the causal-LM loss with a
-- loss mask (train/lm_loss.lua), learning-rate schedules (train/schedule.lua),
-- and checkpoints that survive a kill at any moment (train/checkpoint.lua).
--
--     local loss = train.lm_loss(model, ids, mask)       -- mask: which targets count
--     local lr_at = train.schedule.cosine{ lr = 3e-4, warmup = 100, total = 5000 }
--     train.save_checkpoint(run_dir, { model = m, optimizer = opt, step = s,
--                                      data_position = pos, generators = { data = g } })
--     local ck = train.load_checkpoint(run_dir, { model = m, optimizer = opt, generators = { data = g } })
--
-- This file only gathers the public names; the pretraining loop is
-- empo.train.pretrain, the RL loop empo.rl.trainer.
local loss = require 'empo.train.lm_loss'
local checkpoint = require 'empo.train.checkpoint'

return {
  lm_loss = loss.lm_loss,
  schedule = require 'empo.train.schedule',
  save_checkpoint = checkpoint.save,
  load_checkpoint = checkpoint.load,
  latest_checkpoint = checkpoint.latest,
  prune_checkpoints = checkpoint.prune,
}
