-- tests/tokenizer/corpus.lua — the strings the tokenizer parity tests
-- check, built deterministically (a fixed seed; files read in sorted
-- order): real English from the machine's docs (licenses, copyright files,
-- man pages), code from this repository, LaTeX math, runs of
-- spaces/tabs/newlines, long digit strings, contractions, Chinese /
-- Japanese / Korean / emoji / combining accents / other scripts, chat
-- template text with special tokens, random Unicode, and edge cases.
--
--     local corpus = require 'corpus'
--     local cases = corpus.build{ source_dir = SRC }   -- { {kind =, text =}, ... }
local M = {}

-- ---- deterministic randomness (Park-Miller; exact in doubles) ----
local function rng(seed)
  local x = seed % 2147483646 + 1
  local r = {}
  function r.next() x = x * 16807 % 2147483647; return x end
  function r.int(lo, hi) return lo + r.next() % (hi - lo + 1) end
  function r.pick(t) return t[r.int(1, #t)] end
  function r.chance(p) return r.next() / 2147483647 < p end
  return r
end
M.rng = rng

local function utf8(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                     0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end
M.utf8 = utf8

-- Strict UTF-8 check (no overlongs, surrogates or > U+10FFFF).
function M.valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, lo, hi = 0, 0x80, 0xBF
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c == 0xE0 then len, lo = 3, 0xA0
    elseif c == 0xED then len, hi = 3, 0x9F
    elseif c >= 0xE1 and c <= 0xEF then len = 3
    elseif c == 0xF0 then len, lo = 4, 0x90
    elseif c == 0xF4 then len, hi = 4, 0x8F
    elseif c >= 0xF1 and c <= 0xF3 then len = 4
    else return false end
    for k = 1, len - 1 do
      local d = s:byte(i + k)
      if not d then return false end
      if k == 1 then
        if d < lo or d > hi then return false end
      elseif d < 0x80 or d > 0xBF then return false end
    end
    i = i + len
  end
  return true
end

local function read(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

local function lines_of(cmd)
  local p = io.popen(cmd)
  if not p then return {} end
  local t = {}
  for l in p:lines() do t[#t + 1] = l end
  p:close()
  return t
end

-- Paragraphs (split on blank lines), trimmed, at most maxlen bytes.
local function paragraphs(text, maxlen, out, limit)
  for para in (text .. '\n\n'):gmatch('(.-)\n[ \t]*\n') do
    if #out >= limit then return end
    para = para:gsub('^%s+', ''):gsub('%s+$', '')
    if #para > 0 then
      if #para > maxlen then
        local cut = maxlen
        while cut > 1 and para:byte(cut + 1) and para:byte(cut + 1) >= 0x80 and para:byte(cut + 1) < 0xC0 do cut = cut - 1 end
        para = para:sub(1, cut)
      end
      if M.valid_utf8(para) then out[#out + 1] = para end
    end
  end
end

-- A few MB of real English text for benchmarks (licenses and copyright files).
function M.english_text(max_bytes)
  local parts, total = {}, 0
  local files = lines_of('ls /usr/share/common-licenses/* 2>/dev/null | sort')
  for _, f in ipairs(lines_of('ls /usr/share/doc/*/copyright 2>/dev/null | sort')) do files[#files + 1] = f end
  for _, f in ipairs(files) do
    local s = read(f)
    if s and M.valid_utf8(s) then
      parts[#parts + 1] = s
      total = total + #s
      if total >= max_bytes then break end
    end
  end
  return table.concat(parts, '\n'):sub(1, max_bytes):gsub('[\128-\191]*$', '')
end

local function english(add)
  local paras = {}
  for _, f in ipairs(lines_of('ls /usr/share/common-licenses/* 2>/dev/null | sort')) do
    paragraphs(read(f) or '', 1500, paras, 450)
  end
  local copyright = lines_of('ls /usr/share/doc/*/copyright 2>/dev/null | sort')
  local step = math.max(1, math.floor(#copyright / 150))
  for i = 1, #copyright, step do paragraphs(read(copyright[i]) or '', 1500, paras, 750) end
  for _, p in ipairs(paras) do add('english', p) end
  -- single lines and sentences too
  local n = 0
  for _, p in ipairs(paras) do
    for line in p:gmatch('[^\n]+') do
      if n >= 250 then break end
      if #line > 20 and line:find('%a') then add('english-line', line); n = n + 1 end
    end
  end
end

local function man_pages(add)
  local pages = { 'ls', 'cp', 'grep', 'sed', 'tar', 'git', 'bash', 'find', 'make', 'gcc' }
  local paras = {}
  for _, name in ipairs(pages) do
    local f = lines_of('ls /usr/share/man/man1/' .. name .. '.1.gz 2>/dev/null')[1]
    if f then
      local p = io.popen('zcat ' .. f .. ' 2>/dev/null')
      local text = p and p:read('*a') or ''
      if p then p:close() end
      paragraphs(text, 1200, paras, #paras + 15)
    end
  end
  for _, p in ipairs(paras) do add('man', p) end
end

local function code(add, src, r)
  local files = lines_of('ls ' .. src .. '/core/*/*.c ' .. src .. '/lua/empo/*.lua ' .. src .. '/lua/empo/*/*.lua ' .. src ..
                         '/tests/parity/*.py ' .. src .. '/tests/tokenizer/*.js 2>/dev/null | sort')
  local n = 0
  for _, f in ipairs(files) do
    local lines = {}
    for l in ((read(f) or '') .. '\n'):gmatch('(.-)\n') do lines[#lines + 1] = l end
    for _ = 1, 6 do
      if #lines > 0 then
        local a = r.int(1, #lines)
        local b = math.min(#lines, a + r.int(0, 14))
        local chunk = table.concat(lines, '\n', a, b)
        if #chunk > 0 and M.valid_utf8(chunk) then add('code', chunk); n = n + 1 end
      end
    end
    if n >= 280 then break end
  end
  local snippets = {
    'def f(x):\n    return x**2 + 2*x + 1\n', 'for (int i = 0; i < n; i++) { sum += a[i]; }',
    'if __name__ == "__main__":\n\tmain()', 'const x = arr.map((v, i) => v * i).filter(Boolean);',
    '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); }', 'SELECT * FROM t WHERE id >= 10;',
    'x := y << 3 | z & 0xFF', "local t = { ['a'] = 1, b = 2 }", '    \t\tindented\t \n', '/* comment */ // another',
  }
  for _, s in ipairs(snippets) do add('code', s) end
end

local function latex(add, r)
  local atoms = { 'x', 'y', 'n', 'a_i', 'b^2', '\\alpha', '\\beta', '\\pi', '\\theta', '42', '3.14', '\\infty', 'e^{i\\pi}' }
  local ops = { '+', '-', '\\cdot', '\\times', '/', '=', '\\le', '\\geq', '\\neq', '\\approx', ' ', '^', '_' }
  local wraps = {
    function(a, b) return '\\frac{' .. a .. '}{' .. b .. '}' end,
    function(a) return '\\sqrt{' .. a .. '}' end,
    function(a, b) return '\\sum_{i=1}^{' .. b .. '} ' .. a end,
    function(a) return '\\int_0^1 ' .. a .. '\\,dx' end,
    function(a) return '\\left(' .. a .. '\\right)' end,
    function(a) return '\\boxed{' .. a .. '}' end,
    function(a, b) return a .. '^{' .. b .. '}' end,
    function(a) return '\\mathbb{R}^{' .. a .. '}' end,
  }
  local function expr(depth)
    if depth == 0 or r.chance(0.3) then return r.pick(atoms) end
    if r.chance(0.5) then return r.pick(wraps)(expr(depth - 1), expr(depth - 1)) end
    return expr(depth - 1) .. ' ' .. r.pick(ops) .. ' ' .. expr(depth - 1)
  end
  for i = 1, 220 do
    local e = expr(r.int(1, 4))
    local form = i % 5
    if form == 0 then e = '$' .. e .. '$'
    elseif form == 1 then e = '\\[ ' .. e .. ' \\]'
    elseif form == 2 then e = 'So the answer is $' .. e .. '$. Therefore \\boxed{' .. r.int(0, 9999) .. '}.'
    elseif form == 3 then e = '\\begin{align}\n  ' .. e .. ' \\\\\n  &= ' .. expr(2) .. '\n\\end{align}' end
    add('latex', e)
  end
  for _, s in ipairs({ '∑ᵢ xᵢ² ≤ ∞', 'α + β = γ → δ', '∫₀¹ f(x) dx ≈ ½', '2 × 3 ÷ 4 ≠ 5', '√2 ≈ 1.414', 'ℝⁿ ⊂ ℂⁿ',
                        '𝔼[X] = μ', '∀ε>0 ∃δ>0', 'x ∈ 𝒜 ∪ ℬ' }) do
    add('latex', s)
  end
end

local function whitespace(add, r)
  local ws = { ' ', '  ', '\t', '\n', '\r\n', '\n\n', '\r', '\v', '\f', utf8(0xA0), utf8(0x3000), utf8(0x85),
               utf8(0x2003), utf8(0x180E), utf8(0x200B), utf8(0x2028), utf8(0xFEFF) }
  local words = { 'word', 'Hello', 'x', '42', '!', '...', '(', ')', 'ok' }
  for i = 1, 220 do
    local parts = {}
    for _ = 1, r.int(1, 12) do
      if r.chance(0.5) then
        local w = r.pick(ws)
        parts[#parts + 1] = w:rep(r.chance(0.3) and r.int(2, 40) or 1)
      else
        parts[#parts + 1] = r.pick(words)
      end
    end
    add('whitespace', table.concat(parts))
  end
  for _, n in ipairs({ 1, 2, 3, 16, 100, 1000, 5000 }) do
    add('whitespace', (' '):rep(n))
    add('whitespace', ('\n'):rep(n))
    add('whitespace', ('\t'):rep(n) .. 'x')
    add('whitespace', 'a' .. (' \n'):rep(n) .. 'b')
  end
end

local function digits(add, r)
  local function num(len)
    local t = {}
    for k = 1, len do t[k] = tostring(r.int(k == 1 and 1 or 0, 9)) end
    return table.concat(t)
  end
  for i = 1, 200 do
    local form = i % 8
    local s
    if form == 0 then s = num(r.int(1, 500))
    elseif form == 1 then s = num(r.int(1, 4)) .. ',' .. num(3) .. ',' .. num(3) .. '.' .. num(2)
    elseif form == 2 then s = '-' .. num(r.int(1, 9)) .. '.' .. num(r.int(1, 9)) .. 'e-' .. num(2)
    elseif form == 3 then s = num(2) .. '+' .. num(2) .. '=' .. num(3) .. '. ' .. num(1) .. '*' .. num(1) .. '=' .. num(2) .. '.'
    elseif form == 4 then s = 'In ' .. num(4) .. ', about ' .. num(r.int(1, 12)) .. ' people (' .. num(2) .. '%) said 0x' .. num(6)
    elseif form == 5 then s = '１２３４５ ' .. '٠١٢٣٤٥٦٧٨٩ ' .. '²³¹ ½ ¾ ⅓ Ⅻ ⅷ ' .. num(3)
    elseif form == 6 then s = num(3) .. ' ' .. num(3) .. '\n' .. num(7)
    else s = 'v' .. num(1) .. '.' .. num(2) .. '.' .. num(1) .. '-rc' .. num(1) end
    add('digits', s)
  end
end

local function contractions(add, r)
  local subj = { "I", "you", "we", "they", "he", "she", "it", "that", "there", "who" }
  local suffix = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL", "'D", "’s", "'ſ" }
  for i = 1, 160 do
    local s = r.pick(subj) .. r.pick(suffix) .. ' ' .. r.pick({ "don't", "can't", "won't", "isn't", "DON'T", "y'all",
      "rock'n'roll", "'tis", "o'clock", "'quoted'", "ain’t" }) .. ' ' .. r.pick(subj) .. r.pick(suffix)
    if i % 3 == 0 then s = s:upper() end
    add('contractions', s)
  end
end

local function multilingual(add, r)
  local bank = {
    '我们在没有标签的情况下训练语言模型。', '今天天气很好，我们去公园散步吧！', '数学题：小明有3个苹果，又买了5个，一共有几个？',
    '机器学习是人工智能的一个分支。', '中文、English 与 数字123 混合。', 'こんにちは、世界！', '東京は日本の首都です。',
    'カタカナとひらがなを混ぜた文章です。', 'ｶﾀｶﾅ半角とＡＢＣ全角', '안녕하세요, 반갑습니다.', '한국어 문장입니다',
    utf8(0x1100) .. utf8(0x1161) .. utf8(0x11A8) .. ' 자모', '👍🏽 great', '👨‍👩‍👧‍👦 family', '🇯🇵🇫🇷🇺🇸', '😀😃😄😁',
    '❤️ love', '🧑‍💻 coding', '1️⃣2️⃣', 'e' .. utf8(0x301) .. 'te' .. utf8(0x301), 'A' .. utf8(0x30A) .. 'ngstro' .. utf8(0x308) .. 'm',
    'n' .. utf8(0x303) .. 'an' .. utf8(0x303) .. 'a', 'a' .. utf8(0x308) .. utf8(0x301), utf8(0x1E9B) .. utf8(0x323),
    utf8(0x2126) .. ' ohm ' .. utf8(0x212B), utf8(0x344) .. ' ' .. utf8(0x340),
    'Tie' .. utf8(0x302) .. utf8(0x301) .. 'ng Vie' .. utf8(0x323) .. utf8(0x302) .. 't', 'Tiếng Việt có dấu',
    'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'สวัสดีชาวโลก', 'Καλημέρα κόσμε', 'Привет, мир!', 'İstanbul ıi Iİ',
    'Straße ß ẞ', 'café naïve résumé', 'ﬁnance ﬂow', 'Ⅸ ㎏ ㍻', '𝐀𝐁𝐂 𝒳', 'ǅungla ǈ',
  }
  for _, s in ipairs(bank) do add('multilingual', s) end
  for _ = 1, 300 - #bank do
    local parts = {}
    for _ = 1, r.int(1, 5) do
      parts[#parts + 1] = r.pick(bank)
      if r.chance(0.5) then parts[#parts + 1] = r.pick({ ' ', '', '\n', ' the ', ', ', '123' }) end
    end
    add('multilingual', table.concat(parts))
  end
end

local function chat(add, r, questions)
  local prompt = require 'empo.text.prompt'
  local tpls = { prompt.chatml{ system = 'Please reason step by step, and put your final answer within \\boxed{}.' },
                 prompt.qwen2_5(), prompt.qwen3{ enable_thinking = false }, prompt.chatml() }
  for i = 1, 170 do
    local q = r.pick(questions)
    local msgs = { { role = 'user', content = q } }
    if i % 3 == 0 then
      msgs[#msgs + 1] = { role = 'assistant', content = 'Let me think. ' .. r.pick(questions) }
      msgs[#msgs + 1] = { role = 'user', content = r.pick(questions) }
    end
    add('chat', r.pick(tpls)(msgs))
  end
  for _, s in ipairs({
    '<|im_start|><|im_end|>', '<|im_start|>assistant\n<think>\n</think>\n\n', 'x<|endoftext|>y',
    '<|im_start', '|im_end|>', '<|im_end|<|im_end|>', '<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>',
    '<tool_call>{"name": "f", "arguments": {}}</tool_call>', '<|im_end|><|im_end|><|im_end|>',
    '  <|im_start|>  user  <|im_end|>  ', '<|endoftext|>', '<|box_start|>(1,2)<|box_end|>', '<<|im_start|>>',
    '<|begin_of_text|>Hello<|eot_id|>', '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>',
  }) do
    add('chat', s)
  end
end

local function random_unicode(add, r)
  local ranges = {
    { 0x20, 0x7E }, { 0x20, 0x7E }, { 0x20, 0x7E }, { 0xA0, 0xFF }, { 0x100, 0x24F }, { 0x300, 0x36F },
    { 0x370, 0x3FF }, { 0x400, 0x4FF }, { 0x600, 0x6FF }, { 0x900, 0x97F }, { 0x4E00, 0x9FFF },
    { 0x3040, 0x30FF }, { 0xAC00, 0xD7A3 }, { 0x1100, 0x11FF }, { 0x1F300, 0x1FAFF }, { 0x200B, 0x200F },
    { 0x2000, 0x206F }, { 0x1, 0x1F }, { 0xE000, 0xE0FF }, { 0xFFF0, 0xFFFD }, { 0xFDD0, 0xFDEF },
    { 0x1D400, 0x1D7FF }, { 0x660, 0x669 }, { 0xFF10, 0xFF5A }, { 0x2150, 0x218B }, { 0x10000, 0x100FF },
    { 0xF0000, 0xF00FF }, { 0x1F1E6, 0x1F1FF }, { 0xFE00, 0xFE0F }, { 0x85, 0x85 }, { 0x180E, 0x180E },
  }
  for _ = 1, 220 do
    local t = {}
    for _ = 1, r.int(1, 60) do
      local rg = r.pick(ranges)
      t[#t + 1] = utf8(r.int(rg[1], rg[2]))
    end
    add('random', table.concat(t))
  end
end

local function edge(add)
  for _, s in ipairs({ '', ' ', 'a', '\n', '\0', 'a\0b', "'", "'s", 'ſ', '😀', utf8(0x10FFFF), utf8(0xFFFD),
                        'A' .. ('b'):rep(3000), ('ab'):rep(2000), ('é'):rep(500), ('中'):rep(1000),
                        ('!'):rep(600), ('.'):rep(301) .. 'x', ('-='):rep(300), 'http://example.com/a?b=c&d=e#f' }) do
    add('edge', s)
  end
end

-- opts.source_dir: the repository root (for code samples).
function M.build(opts)
  opts = opts or {}
  local cases, seen = {}, {}
  local function add(kind, text)
    if seen[text] then return end
    seen[text] = true
    cases[#cases + 1] = { kind = kind, text = text }
  end
  local r = rng(opts.seed or 20240601)
  english(add)
  man_pages(add)
  if opts.source_dir then code(add, opts.source_dir, r) end
  latex(add, r)
  whitespace(add, r)
  digits(add, r)
  contractions(add, r)
  multilingual(add, r)
  local questions = {}
  for _, c in ipairs(cases) do
    if (c.kind == 'english-line' or c.kind == 'latex' or c.kind == 'multilingual') and #c.text < 300 then
      questions[#questions + 1] = c.text
    end
  end
  chat(add, r, questions)
  random_unicode(add, r)
  edge(add)
  return cases
end

-- Counts per kind, as "kind n, kind n, ...".
function M.summary(cases)
  local n, order = {}, {}
  for _, c in ipairs(cases) do
    if not n[c.kind] then order[#order + 1] = c.kind; n[c.kind] = 0 end
    n[c.kind] = n[c.kind] + 1
  end
  local parts = {}
  for _, k in ipairs(order) do parts[#parts + 1] = k .. ' ' .. n[k] end
  return table.concat(parts, ', ')
end

return M
