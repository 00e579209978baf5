-- empo.train.base_model — a world's base model from nothing: the world's
-- files written (when missing, or asked), a byte-level BPE tokenizer
-- trained on its corpus, a tiny Qwen2-architecture model pretrained on it
-- (empo.train.pretrain), both saved in the Hugging Face layout with a
-- PROVENANCE.md saying how. What recipes/arith/pretrain.lua and
-- recipes/trips/pretrain.lua do, for their worlds.
--
--     local base_model = require 'empo.train.base_model'
--     base_model.make(cfg, { module = require 'empo.world.trips', label = 'trips', files = {...}, command = '...' })
--
-- cfg: data, out, seed, vocab, steps, seq, batch, lr, min_lr, warmup,
-- threads, run, runs, regenerate (the recipes' command-line settings).
local empo = require 'empo'
local pretrain = require 'empo.train.pretrain'

local M = {}

-- Makes the base model. w: module (the world: write_files), label (its
-- name in messages), files (write_files' options besides out and seed),
-- about (a line for the provenance), command (the line that made it).
function M.make(cfg, w)
  if cfg.regenerate or not empo.fs.exists(cfg.data .. '/corpus.jsonl') then
    local o = { out = cfg.data, seed = cfg.seed }
    for k, v in pairs(w.files or {}) do o[k] = v end
    local n = w.module.write_files(o)
    io.stderr:write(string.format('%s: wrote %d test, %d train, %d corpus documents to %s/\n', w.label, n.test, n.train,
                                  n.corpus, cfg.data))
  end
  return M.train(cfg, cfg.data .. '/corpus.jsonl', w.about, w.command)
end

-- A tokenizer and a model trained on the JSONL corpus (a "text" field a
-- line), saved to cfg.out with PROVENANCE.md (about, command: what it is
-- and the line that made it). Returns the model and the tokenizer. With
-- cfg.from (a model directory) training goes on from that model, with its
-- tokenizer (copied to cfg.out), instead of starting from nothing.
function M.train(cfg, corpus, about, command)
  local t0 = empo.logger.clock()
  assert(empo.fs.make_dirs(cfg.out))
  local from = cfg.from and cfg.from ~= '' and cfg.from or nil
  local tok
  if from then
    for _, f in ipairs({ 'tokenizer.json', 'tokenizer_config.json' }) do
      if empo.fs.exists(from .. '/' .. f) then assert(empo.fs.copy_into(cfg.out, from .. '/' .. f)) end
    end
    tok = empo.tokenizer.load(cfg.out .. '/tokenizer.json')
  else
    tok = empo.tokenizer.train{
      files = { corpus }, field = 'text', vocab_size = cfg.vocab,
      special_tokens = { '<|endoftext|>', '<|im_start|>', '<|im_end|>' }, eos = '<|endoftext|>', pad = '<|endoftext|>',
      out = cfg.out,
    }
  end
  io.stderr:write(string.format('tokenizer: vocab %d -> %s/tokenizer.json\n', tok.vocab_size, cfg.out))
  local settings = pretrain.config{
    name = cfg.run, out = cfg.runs, data = corpus, tokenizer = cfg.out .. '/tokenizer.json', model = from or '',
    seq = cfg.seq, pack = 'documents', batch = cfg.batch, steps = cfg.steps, lr = cfg.lr, min_lr = cfg.min_lr,
    warmup = cfg.warmup, seed = cfg.seed, threads = cfg.threads, log_every = 20, save_every = 200,
  }
  local model = pretrain.run(settings)
  empo.models.save_pretrained(model, cfg.out)
  local final = empo.logger.read_metrics(cfg.runs .. '/' .. cfg.run .. '/metrics.jsonl')
  local loss = final[#final] and final[#final].loss or 0
  local minutes = (empo.logger.clock() - t0) / 60
  local lines = {
    '# ' .. cfg.out, '',
    about .. ', made by', '',
    '    ' .. command, '',
    string.format('seed %d, %d steps of %d x %d tokens (%.1fM tokens), vocab %d, %d parameters, final loss %.4f, ' ..
                  '%.1f minutes on %d threads (%s).', cfg.seed, cfg.steps, cfg.batch, cfg.seq,
                  cfg.steps * cfg.batch * cfg.seq / 1e6, tok.vocab_size, model:num_parameters(), loss, minutes,
                  cfg.threads, empo.kernel_table()),
    '',
  }
  assert(empo.fs.write_atomic(cfg.out .. '/PROVENANCE.md', table.concat(lines, '\n')))
  io.stderr:write(string.format('base model -> %s/ (%.1f minutes)\n', cfg.out, minutes))
  return model, tok
end

return M
