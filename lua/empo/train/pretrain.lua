-- empo.train.pretrain — train a decoder language model from scratch (or go
-- on training one) on a JSONL text corpus with next-token loss, AdamW and
-- a warmup + cosine / linear schedule; checkpoints that survive a kill
-- (resume = true continues bit for bit). The loop of recipes/pretrain.lua
-- and recipes/arith/pretrain.lua.
--
--     local pretrain = require 'empo.train.pretrain'
--     local model = pretrain.run(pretrain.config({ data = 'corpus.jsonl', steps = 500 }))
--
-- Writes <out>/<name>/: metrics.jsonl, config.json (the resolved
-- settings), checkpoint-<step>/ (model in the Hugging Face layout +
-- optimizer + state) and `latest`. Tokens: without tokenizer, text is
-- UTF-8 bytes (ids 0-255, BOS 256, EOS 257); with one, each document is
-- its encoding followed by the tokenizer's EOS (when it has one).
local empo = require 'empo'
local log, train, json = empo.logger, empo.train, empo.json

local M = {}

M.DEFAULTS = {
  name = 'pretrain', out = 'runs', data = '', text_field = 'text', model = '', tokenizer = '',
  arch = { model_type = 'qwen2', hidden_size = 128, intermediate_size = 384, num_hidden_layers = 3,
           num_attention_heads = 4, num_key_value_heads = 2, rope_theta = 10000, tie_word_embeddings = true },
  seq = 128, pack = 'stream', batch = 16, micro_batches = 1, steps = 200, lr = 1e-3, min_lr = 0, warmup = 20,
  schedule = 'cosine', weight_decay = 0.01, clip_grad = 1.0, seed = 0, threads = 2, log_every = 10, save_every = 100, keep = 2,
  resume = false,
}

-- The settings: DEFAULTS with `given` applied — key=value strings
-- (type-checked, as from the command line) or a table (a partial `arch`
-- table changes only the fields it names).
function M.config(given)
  local cfg = {}
  for k, v in pairs(M.DEFAULTS) do
    if type(v) == 'table' then
      cfg[k] = {}
      for a, b in pairs(v) do cfg[k][a] = b end
    else
      cfg[k] = v
    end
  end
  if given and #given > 0 then return empo.config.apply(cfg, given, 'pretrain') end
  -- a table: every name checked (arch may hold any config.json field)
  local schema = empo.config.schema_of(M.DEFAULTS)
  schema.fields.arch.open = true
  empo.config.check(given or {}, schema, 'pretrain', '', true)
  for k, v in pairs(given or {}) do
    if type(v) == 'table' and type(cfg[k]) == 'table' then
      for a, b in pairs(v) do cfg[k][a] = b end
    else
      cfg[k] = v
    end
  end
  return cfg
end

-- Trains as cfg says; returns the model, its tokenizer (or nil for bytes) and the run directory.
function M.run(cfg)
  if cfg.data == '' then error('pretrain: data=FILE.jsonl is required (one JSON object per line with a "text" field)', 0) end
  if cfg.batch % cfg.micro_batches ~= 0 then error('pretrain: batch must be a multiple of micro_batches', 0) end
  empo.set_num_threads(cfg.threads)
  local run_dir = cfg.out .. '/' .. cfg.name
  assert(empo.fs.make_dirs(run_dir))

  -- ---- data: documents -> one token stream -> windows of seq + 1 ----
  local BOS, EOS = 256, 257
  local encode = function(text)
    local ids = { BOS }
    for i = 1, #text do ids[#ids + 1] = text:byte(i) end
    ids[#ids + 1] = EOS
    return ids
  end
  local vocab, tok = 258, nil
  if cfg.tokenizer ~= '' then
    tok = empo.tokenizer.load(cfg.tokenizer)
    vocab = tok.vocab_size
    local eos = tok.eos_id
    encode = function(text)
      local ids = tok:encode(text)
      if eos then ids[#ids + 1] = eos end
      return ids
    end
  end
  local stream, starts, line_no = {}, {}, 0
  for line in io.lines(cfg.data) do
    line_no = line_no + 1
    if line:match('%S') then
      local ok, rec = pcall(json.decode, line, cfg.data .. ':' .. line_no)
      if not ok then error(rec, 0) end
      local text = rec[cfg.text_field]
      if type(text) ~= 'string' then
        error(string.format('%s:%d: no string field "%s"', cfg.data, line_no, cfg.text_field), 0)
      end
      starts[#starts + 1] = #stream
      for _, id in ipairs(encode(text)) do stream[#stream + 1] = id end
    end
  end
  -- windows: back to back over the stream (pack = 'stream'), or one
  -- starting at each document (pack = 'documents': no document loses its
  -- beginning to a window's edge, as a question would its solution's)
  local window_start = {}
  if cfg.pack == 'documents' then
    for _, s in ipairs(starts) do
      if s + cfg.seq + 1 <= #stream then window_start[#window_start + 1] = s end
    end
  elseif cfg.pack == 'stream' then
    for i = 1, math.floor((#stream - 1) / cfg.seq) do window_start[i] = (i - 1) * cfg.seq end
  else
    error("pretrain: pack must be 'stream' or 'documents', got " .. tostring(cfg.pack), 0)
  end
  local n_seq = #window_start
  if n_seq < cfg.batch then
    error(string.format('pretrain: %s gives %d tokens, %d windows of %d; a batch needs %d', cfg.data, #stream, n_seq,
                        cfg.seq + 1, cfg.batch), 0)
  end

  -- the order of windows: a Philox permutation per epoch, so a position in
  -- the data fully determines what comes next
  local order_gen = empo.Generator(cfg.seed, 1)
  local function epoch_order(epoch)
    order_gen:set_state(cfg.seed, 1 + epoch, 0)
    local o = {}
    for i = 1, n_seq do o[i] = i end
    for i = n_seq, 2, -1 do
      local j = 1 + math.floor(order_gen:uniform() * i)
      o[i], o[j] = o[j], o[i]
    end
    return o
  end
  local order, order_epoch = nil, -1
  local function window(position)            -- position counts windows from 0 over all epochs
    local epoch = math.floor(position / n_seq)
    if epoch ~= order_epoch then order, order_epoch = epoch_order(epoch), epoch end
    local start = window_start[order[position % n_seq + 1]]
    local w = {}
    for i = 1, cfg.seq + 1 do w[i] = stream[start + i] end
    return w
  end

  -- ---- model, optimizer, schedule ----
  local model
  if cfg.model ~= '' then
    model = empo.models.from_pretrained(cfg.model)
  else
    local arch = {}
    for k, v in pairs(cfg.arch) do arch[k] = v end
    arch.vocab_size, arch.max_position_embeddings = vocab, cfg.seq
    model = empo.models.new(arch, cfg.seed)
  end
  local opt = empo.optim.adamw{ params = model:parameters(), lr = cfg.lr, weight_decay = cfg.weight_decay,
                                 betas = { 0.9, 0.95 } }
  local lr_at = train.schedule[cfg.schedule]{ lr = cfg.lr, min_lr = cfg.min_lr, warmup = cfg.warmup, total = cfg.steps }

  local step, position = 0, 0
  if cfg.resume then
    local state = train.load_checkpoint(run_dir, { model = model, optimizer = opt })
    if state then
      step, position = state.step, state.data_position
      io.stderr:write(string.format('resumed from %s (step %d)\n', state.path, step))
    end
  end
  -- metrics past the resumed step belong to a run that did not finish: drop them
  local metrics_path = run_dir .. '/metrics.jsonl'
  do
    local kept = {}
    local f = io.open(metrics_path, 'rb')
    if f then
      f:close()
      for _, r in ipairs(log.read_metrics(metrics_path)) do if r.step <= step then kept[#kept + 1] = r end end
    end
    local lines = {}
    for i, r in ipairs(kept) do lines[i] = json.encode(r, { compact = true }) .. '\n' end
    assert(empo.fs.write_atomic(metrics_path, table.concat(lines)))
  end
  json.write_file(run_dir .. '/config.json', cfg)
  local metrics = log.metrics(metrics_path)

  io.stderr:write(string.format('pretrain %s: %d parameters, vocab %d, %d tokens (%d windows of %d), %d threads\n',
    cfg.name, model:num_parameters(), vocab, #stream, n_seq, cfg.seq, empo.get_num_threads()))
  local bar = log.progress{ total = cfg.steps, every = cfg.log_every, keys = { 'loss', 'lr', 'tok/s' } }
  local micro = cfg.batch / cfg.micro_batches
  local t_start, tokens = log.clock(), 0
  while step < cfg.steps do
    step = step + 1
    opt.lr = lr_at(step)
    local loss_sum = 0
    for _ = 1, cfg.micro_batches do
      local rows = {}
      for b = 1, micro do rows[b] = window(position); position = position + 1 end
      local ids = empo.tensor(rows, 'i64')
      local loss = train.lm_loss(model, ids)
      local scaled = loss / cfg.micro_batches
      scaled:backward()
      loss_sum = loss_sum + loss:item() / cfg.micro_batches
    end
    local norm = empo.clip_grad_norm(opt.params, cfg.clip_grad)
    opt:step()
    opt:zero_grad()
    tokens = tokens + cfg.batch * cfg.seq
    local tok_s = tokens / math.max(log.clock() - t_start, 1e-9)
    metrics:write{ step = step, loss = loss_sum, lr = opt.lr, grad_norm = norm, tokens_per_s = tok_s }
    bar:update(step, { loss = loss_sum, lr = opt.lr, ['tok/s'] = tok_s })
    if step % cfg.save_every == 0 or step == cfg.steps then
      train.save_checkpoint(run_dir, { model = model, optimizer = opt, step = step, data_position = position,
                                       keep = cfg.keep })
    end
  end
  metrics:close()
  return model, tok, run_dir
end

return M
