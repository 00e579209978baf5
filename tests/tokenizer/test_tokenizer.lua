-- tests/tokenizer/test_tokenizer.lua — the Lua API of empo.tokenizer and
-- empo.prompt, without the npm oracles: training from texts, files and
-- JSONL; load / encode / decode / encode_batch / tensors; special tokens;
-- BOS/EOS/PAD; errors raised as Lua errors with the C message; chat
-- templates (ChatML, Qwen2.5, Qwen3, plain, custom). Parity with Hugging
-- Face is test_tokenizer_parity.lua.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_tokenizer')

local dir = os.tmpname()
os.remove(dir)
os.execute('mkdir -p ' .. dir)
local function write(name, s)
  local f = assert(io.open(dir .. '/' .. name, 'wb'))
  f:write(s)
  f:close()
  return dir .. '/' .. name
end

-- an arith-like corpus: drills and worked solutions
local lines, jsonl = {}, {}
for i = 1, 300 do
  local a, b = (i * 37) % 100, (i * 53) % 100
  lines[#lines + 1] = string.format('%d+%d=%d. %d*%d=%d.', a, b, a + b, a % 10, b % 10, (a % 10) * (b % 10))
  jsonl[#jsonl + 1] = string.format('{"text": "Question: Tom has %d apples and buys %d more. How many now? Answer: %d + %d = %d, so \\\\boxed{%d}."}',
                                    a, b, a, b, a + b, a + b)
end
local txt = write('drills.txt', table.concat(lines, '\n'))
local js = write('problems.jsonl', table.concat(jsonl, '\n') .. '\n')

local out = dir .. '/model'
local tok = empo.tokenizer.train{ files = { txt, js }, vocab_size = 320, special_tokens = { '<|endoftext|>', '<|im_start|>', '<|im_end|>' },
                                  eos = '<|im_end|>', pad = '<|endoftext|>', out = out }
local tok2 = empo.tokenizer.train{ files = { js }, field = 'text', texts = { 'extra text, one document' }, vocab_size = 330 }
local drills_only = empo.tokenizer.train{ files = { txt }, vocab_size = 400 }
c.ok(drills_only.vocab_size < 300, 'training stops when no pair is left (digits never merge)')
c.eq(tok.vocab_size, 320, 'vocab_size')
c.ok(tok2.vocab_size <= 330, 'a smaller vocab')
c.eq({ tok.bos_id, tok.eos_id, tok.pad_id }, { nil, 2, 0 }, 'bos/eos/pad')
c.ok(tostring(tok):find('vocab 320', 1, true), 'tostring')

-- load back from the directory and from the file
local back = empo.tokenizer.load(out)
local back_file = empo.tokenizer.load(out .. '/tokenizer.json')
local text = '12+34=46. Question: Tom has 3 apples.'
c.eq(back:encode(text), tok:encode(text), 'loading it back gives identical encodings')
c.eq(back_file:encode(text), tok:encode(text), 'the same from the tokenizer.json path')
c.eq(back_file.eos_id, 2, 'tokenizer_config.json beside the file')
c.eq(back:decode(back:encode(text)), text, 'round trip')
for _, id in ipairs(tok:encode('1234567890')) do
  c.ok(#tok:id_to_token(id) == 1, 'digits stay single tokens')
end

-- encode options
local ids = tok:encode('<|im_start|>user\n2+2=?<|im_end|>')
c.eq(ids[1], 1, '<|im_start|> is one token')
c.eq(ids[#ids], 2, '<|im_end|> is one token')
local plain = tok:encode('<|im_start|>', { special = false })
c.ok(#plain > 1, 'special = false splits the special text')
c.eq(tok:decode(plain), '<|im_start|>', 'and it decodes back')
c.eq(tok:decode(ids, { skip_special = true }), 'user\n2+2=?', 'skip_special')
c.ok(tok:is_special(1) and not tok:is_special(10), 'is_special')
c.eq(tok:token_to_id('<|im_end|>'), 2, 'token_to_id of a special token')
c.eq(tok:token_to_id('\xc4\xa0'), tok:encode(' ')[1], 'token_to_id of the byte-level space')
c.eq(tok:token_to_id('no such token'), nil, 'token_to_id: nil when absent')
c.eq(tok:id_to_token(99999), nil, 'id_to_token: nil when out of range')
c.eq(#tok:added_tokens(), 3, 'added_tokens')
c.eq(tok:added_tokens()[3], { id = 2, content = '<|im_end|>', special = true }, 'added token fields')
c.eq(tok:encode(''), {}, 'empty text')

local t = tok:encode(text, { tensor = true })
c.eq(t:dtype(), 'i64', 'tensor ids are i64')
c.eq(t:tolist(), tok:encode(text), 'tensor holds the same ids')
c.eq(tok:decode(t), text, 'decode takes a tensor')
c.eq(tok:decode(empo.tensor({ 5 }, 'i32')), tok:decode({ 5 }), 'decode takes an i32 tensor')

local batch = tok:encode_batch({ text, '', '7*8=56.', '<|endoftext|>' })
c.eq(#batch, 4, 'one list per text')
c.eq(batch[1], tok:encode(text), 'batch == single')
c.eq(batch[2], {}, 'empty text in a batch')
c.eq(batch[4], { 0 }, 'special token in a batch')
c.eq(#tok:encode_batch({}), 0, 'empty batch')

-- lossy and raw decoding of a split character
local cjk = tok:encode('中')
c.ok(#cjk == 3, 'an unseen CJK character is three byte tokens')
c.eq(tok:decode({ cjk[1], cjk[2] }), '\xef\xbf\xbd', 'a cut character decodes to U+FFFD')
c.eq(tok:decode({ cjk[1], cjk[2] }, { raw = true }), '\xe4\xb8', 'raw = true keeps the bytes')
c.eq(tok:decode(tok:encode('e\xcc\x81')), '\xc3\xa9', 'NFC: e + combining acute comes back composed')

-- errors: Lua errors with the C message
c.raises(function() return tok:encode('bad \xff') end, 'tokenizer.encode: invalid UTF-8 at byte 4')
c.raises(function() return tok:decode({ 1, 1e6 }) end, 'tokenizer.decode: id 1000000 (position 2) is out of range')
c.raises(function() return tok:decode({ 1.5 }) end, 'id 1 is not an integer')
c.raises(function() return tok:decode('x') end, 'bad argument #1', 'table of ids or tensor')
c.raises(function() return tok:encode(42) end, 'bad argument #1', 'string expected')
c.raises(function() return tok:encode_batch({ 'a', 3 }) end, 'text 2 is a number')
c.raises(function() return tok:encode_batch({ 'a', '\xff' }) end, 'invalid UTF-8', 'text 2 of the batch')
c.raises(function() return empo.tokenizer.load(dir .. '/nope') end, 'does not exist')
c.raises(function() return empo.tokenizer.load(dir) end, 'cannot open', 'tokenizer.json')
c.raises(function() return empo.tokenizer.from_json('{"model": {"type": "Unigram", "vocab": []}}', nil, 'x.json') end,
         'x.json', "model type 'Unigram' is not supported")
c.raises(function() return empo.tokenizer.from_json('{oops', nil, 'y.json') end, 'y.json', 'invalid JSON')
c.raises(function() return empo.tokenizer.train{ texts = { 'a' } } end, 'vocab_size (an integer) is required')
c.raises(function() return empo.tokenizer.train{ vocab_size = 300 } end, 'give files or texts')
c.raises(function() return empo.tokenizer.train{ vocab_size = 10, texts = { 'a' } } end, 'below the 0 special + 256 byte tokens')
c.raises(function() return empo.tokenizer.train{ vocab_size = 300, files = { dir .. '/missing.txt' } } end, 'cannot open')
c.raises(function() return empo.tokenizer.train{ vocab_size = 300, files = { js }, field = 'nope' } end, 'no string field "nope"')
c.raises(function() return empo.tokenizer.train{ vocab_size = 300, texts = { 'a' }, eos = '<x>' } end, "eos token '<x>'")
c.ok(tok:encode('still works after errors')[1] ~= nil, 'the tokenizer survives errors')
back:free()
c.raises(function() return back:encode('x') end, 'tokenizer was freed')
back:free()   -- idempotent

-- ---- chat templates ----
local P = empo.prompt
local chatml = P.chatml{ system = 'Be brief.' }
c.eq(chatml('2+3?'), '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+3?<|im_end|>\n<|im_start|>assistant\n', 'chatml')
c.eq(P.chatml()('hi'), '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', 'chatml without a system prompt')
c.eq(P.chatml{ add_generation_prompt = false }{ { role = 'user', content = 'a' }, { role = 'assistant', content = 'b' } },
     '<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n', 'a conversation, no generation prompt')
c.eq(P.qwen2_5()('x'), '<|im_start|>system\n' .. P.QWEN2_5_SYSTEM .. '<|im_end|>\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n',
     'qwen2_5 default system prompt')
c.eq(P.qwen2_5(){ { role = 'system', content = 'S' }, { role = 'user', content = 'x' } },
     '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n', 'a system turn replaces the default')
c.eq(P.qwen3{ enable_thinking = false }('x'), '<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
     'qwen3 without thinking')
c.eq(chatml.stop, { '<|im_end|>', '<|endoftext|>' }, 'chatml stop strings')
local plain_t = P.plain{ prefix = 'Q: ', suffix = '\nA:' }
c.eq(plain_t('2+3?'), 'Q: 2+3?\nA:', 'plain')
c.eq(plain_t{ { role = 'system', content = 'Solve.' }, { role = 'user', content = '1+1?' }, { role = 'assistant', content = '2' },
              { role = 'user', content = '2+2?' } }, 'Solve.\n\nQ: 1+1?\nA: 2\n\nQ: 2+2?\nA:', 'plain few-shot')
c.eq(plain_t.stop, { '\n\nQ: ' }, 'plain stop string')
local custom = P.custom(function(q) return q .. ' = ' end, { stop = { '\n' } })
c.eq(custom('2+3'), '2+3 = ', 'custom template')
c.eq(P.render(function(q) return '[' .. q .. ']' end, 'x'), '[x]', 'render a plain function')
c.eq(P.render('chatml', 'x'), P.chatml()('x'), 'render by name')
c.ok(P.is_template(P.wrap(chatml)) and P.wrap(chatml) == chatml, 'wrap keeps a template')
c.raises(function() return P.wrap(42) end, 'expected a template')
c.raises(function() return P.chatml{ sytem = 'typo' } end, "unknown option 'sytem'")
c.raises(function() return chatml(42) end, 'expected a question (string) or a list of messages')
c.raises(function() return chatml{ { role = 'user' } } end, 'message 1 must be')
c.raises(function() return P.custom(function() return 1 end)('x') end, 'returned a number')
-- a rendered prompt tokenizes with its special tokens
local p_ids = tok:encode(chatml('2+3?'))
c.eq(p_ids[1], 1, 'the prompt starts with <|im_start|>')
c.eq(tok:decode(p_ids), chatml('2+3?'), 'the prompt round-trips')

os.execute('rm -rf ' .. dir)
c.done()
