-- recipes/arith/pretrain.lua — make the arith world's base model from
-- nothing: write the world's files (recipes/arith/generate.lua), train a
-- byte-level BPE tokenizer on the corpus (digits stay single tokens),
-- pretrain a tiny Qwen2-architecture model on it (empo.train.pretrain) and
-- save both in the Hugging Face layout, with a provenance file saying how.
--
--     empo run recipes/arith/pretrain.lua                         # -> models/arith-base (about 10 minutes, 2 cores)
--     empo run recipes/arith/pretrain.lua mode=shortcut shortcut=0.6 data=data/arith-shortcut60 out=models/arith-shortcut60
--
-- The committed models/arith-base was made by the first command, on the
-- commit that added it; the same seed gives the same model on a machine
-- with the same thread count and kernels.
local empo = require 'empo'
local arith = require 'empo.world.arith'
local pretrain = require 'empo.train.pretrain'

local cfg = empo.config.apply({
  data = 'data/arith', out = 'models/arith-base', seed = 1, mode = 'guess', corpus = arith.FILE_DEFAULTS.corpus,
  vocab = 512, steps = 3000, seq = 256, batch = 32, lr = 2e-3, min_lr = 1e-4, warmup = 60, threads = 2,
  run = 'arith-pretrain', runs = 'runs', regenerate = false,
  guess = arith.DEFAULTS.guess, shortcut = arith.DEFAULTS.shortcut, step_error = arith.DEFAULTS.step_error,
}, arg, 'arith/pretrain')
local t0 = empo.logger.clock()

if cfg.regenerate or not empo.fs.exists(cfg.data .. '/corpus.jsonl') then
  local n = arith.write_files{ out = cfg.data, seed = cfg.seed, mode = cfg.mode, corpus = cfg.corpus, guess = cfg.guess,
                               shortcut = cfg.shortcut, step_error = cfg.step_error }
  io.stderr:write(string.format('arith: wrote %d test, %d train, %d corpus documents to %s/\n', n.test, n.train,
                                n.corpus, cfg.data))
end

assert(empo.fs.make_dirs(cfg.out))
local tok = empo.tokenizer.train{
  files = { cfg.data .. '/corpus.jsonl' }, field = 'text', vocab_size = cfg.vocab,
  special_tokens = { '<|endoftext|>', '<|im_start|>', '<|im_end|>' }, eos = '<|endoftext|>', pad = '<|endoftext|>',
  out = cfg.out,
}
io.stderr:write(string.format('tokenizer: vocab %d -> %s/tokenizer.json\n', tok.vocab_size, cfg.out))

local settings = pretrain.config{
  name = cfg.run, out = cfg.runs, data = cfg.data .. '/corpus.jsonl', tokenizer = cfg.out .. '/tokenizer.json',
  seq = cfg.seq, pack = 'documents', batch = cfg.batch, steps = cfg.steps, lr = cfg.lr, min_lr = cfg.min_lr, warmup = cfg.warmup,
  seed = cfg.seed, threads = cfg.threads, log_every = 20, save_every = 200,
}
local model = pretrain.run(settings)
empo.models.save_pretrained(model, cfg.out)
local final = empo.logger.read_metrics(cfg.runs .. '/' .. cfg.run .. '/metrics.jsonl')
local loss = final[#final] and final[#final].loss or 0
local minutes = (empo.logger.clock() - t0) / 60
local lines = {
  '# ' .. cfg.out,
  '',
  'The arith world\'s base model (empo.world.arith, mode ' .. cfg.mode .. '), made by',
  '',
  '    empo run recipes/arith/pretrain.lua ' .. table.concat(arg or {}, ' '),
  '',
  string.format('seed %d, %d steps of %d x %d tokens (%.1fM tokens), vocab %d, %d parameters, final loss %.4f, ' ..
                '%.1f minutes on %d threads (%s).', cfg.seed, cfg.steps, cfg.batch, cfg.seq,
                cfg.steps * cfg.batch * cfg.seq / 1e6, tok.vocab_size, model:num_parameters(), loss, minutes,
                cfg.threads, empo.kernel_table()),
  '',
}
assert(empo.fs.write_atomic(cfg.out .. '/PROVENANCE.md', table.concat(lines, '\n')))
io.stderr:write(string.format('base model -> %s/ (%.1f minutes)\n', cfg.out, minutes))
