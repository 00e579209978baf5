-- tests/train/test_pretrain.lua — empo.train.pretrain with a trained
-- tokenizer: each document is its encoding and the tokenizer's EOS, and
-- pack = 'documents' starts one window at every document that fits (so no
-- window begins inside one), while pack = 'stream' cuts the stream back to
-- back; a bad pack value is named; the loss falls.
local check = require 'check'
local empo = require 'empo'
local pretrain = require 'empo.train.pretrain'
local c = check.new('test_pretrain')

local dir = check.tmpdir()
local docs, lines = {}, {}
for i = 1, 40 do
  docs[i] = string.format('%d plus %d is %d.', i, i + 3, 2 * i + 3)
  lines[i] = empo.json.encode({ text = docs[i] }, { compact = true })
end
empo.fs.write_atomic(dir .. '/corpus.jsonl', table.concat(lines, '\n') .. '\n')
local tok = empo.tokenizer.train{ texts = docs, vocab_size = 280, special_tokens = { '<|endoftext|>' },
                                  eos = '<|endoftext|>', out = dir }

local SEQ = 16
local total, fitting, pos = 0, 0, 0
local lengths = {}
for i, d in ipairs(docs) do lengths[i] = #tok:encode(d) + 1; total = total + lengths[i] end
for i = 1, #docs do
  if pos + SEQ + 1 <= total then fitting = fitting + 1 end
  pos = pos + lengths[i]
end

local function settings(pack, name)
  return pretrain.config{ name = name, out = dir, data = dir .. '/corpus.jsonl', tokenizer = dir .. '/tokenizer.json',
                          seq = SEQ, pack = pack, batch = 4, steps = 30, lr = 3e-3, warmup = 3, threads = 1,
                          log_every = 1000, save_every = 1000,
                          arch = { model_type = 'qwen2', hidden_size = 32, intermediate_size = 64, num_hidden_layers = 1,
                                   num_attention_heads = 2, num_key_value_heads = 1, rope_theta = 10000,
                                   tie_word_embeddings = true } }
end

-- recipes/pretrain.lua in a child, so its stderr line (tokens, windows) can be read
local binary, src = os.getenv('EMPO_BINARY'), os.getenv('EMPO_SOURCE_DIR')
if binary and src then
  local script = src .. '/recipes/pretrain.lua'
  local function run(pack, name)
    local p = io.popen(string.format("'%s' run '%s' name=%s out='%s' data='%s/corpus.jsonl' tokenizer='%s/tokenizer.json' " ..
                                     "seq=%d pack=%s batch=4 steps=30 lr=3e-3 warmup=3 threads=1 log_every=1000 " ..
                                     "save_every=1000 arch.hidden_size=32 arch.intermediate_size=64 " ..
                                     "arch.num_hidden_layers=1 arch.num_attention_heads=2 arch.num_key_value_heads=1 " ..
                                     "2>&1; echo rc=$?", binary, script, name, dir, dir, dir, SEQ, pack))
    local out = p:read('*a')
    p:close()
    return out
  end
  local out = run('documents', 'docs')
  c.ok(out:find(string.format('%d tokens %%(%d windows of %d%%)', total, fitting, SEQ)) ~= nil,
       string.format('every document is its tokens + EOS (%d) and has a window (%d): %s', total, fitting, out))
  out = run('stream', 'stream')
  c.ok(out:find(string.format('%d tokens %%(%d windows of %d%%)', total, math.floor((total - 1) / SEQ), SEQ)) ~= nil,
       'the stream is cut back to back: ' .. out)
  out = run('pages', 'bad')
  c.ok(out:find("pack must be 'stream' or 'documents'", 1, true) and out:find('rc=1', 1, true), 'a bad pack is named')
end

-- in process: the loss falls on a corpus this regular
local model = pretrain.run(settings('documents', 'inproc'))
local m = empo.logger.read_metrics(dir .. '/inproc/metrics.jsonl')
c.ok(m[#m].loss < m[1].loss * 0.7, string.format('the loss falls: %.3f -> %.3f', m[1].loss, m[#m].loss))
c.eq(model.config.vocab_size, tok.vocab_size, 'the model takes the tokenizer\'s vocabulary')
os.execute("rm -rf '" .. dir .. "'")
c.done()
