-- tests/train/test_datasets.lua — the math datasets users bring, read
-- without a conversion script: the question under question/problem/prompt,
-- the gold answer as the field has it (MATH500's answer), from a worked
-- solution's last \boxed{} (gold = 'boxed'), from the "#### 42" line that
-- ends a GSM8K answer (gold = 'gsm8k'), or from a function; on the two
-- fixtures (tests/train/fixtures/, 20 lines each, written for these tests)
-- and through `empo eval` and a recipe with nothing set but gold=.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_datasets')

local src = os.getenv('EMPO_SOURCE_DIR') or '.'
local gsm8k_file, math_file = src .. '/tests/train/fixtures/gsm8k_style.jsonl', src .. '/tests/train/fixtures/math_style.jsonl'

local gsm = empo.data.jsonl(gsm8k_file, nil, { gold = 'gsm8k', answers = true })
c.eq(gsm:size(), 20, 'every GSM8K-style line')
c.eq(gsm:get(1), { question = 'Fay has 60 pencils. Fay buys 2 packs with 2 pencils in each. How many pencils does Fay have now?',
                   answer = '64' }, 'the question field, and the #### line as gold')
c.eq(gsm:get(8).answer, '1,240', 'a gold with a thousands separator, as GSM8K writes some')
c.ok(empo.cluster.equivalent(gsm:get(8).answer, '1240'), 'which the math rule reads as 1240')

local mth = empo.data.jsonl(math_file, nil, { gold = 'boxed', answers = true })
local plain = empo.data.jsonl(math_file, nil, { answers = true })
c.eq(mth:size(), 20, 'every MATH-style line')
c.eq(mth:get(1).question, 'Solve for $x$: $3x + 9 = 18$.', 'the problem field is the question')
c.eq(mth:get(2).answer, '\\frac{1}{6}', "gold = 'boxed': the solution's last box")
local agree = true
for i = 1, 20 do agree = agree and empo.cluster.equivalent(mth:get(i).answer, plain:get(i).answer) end
c.ok(agree, "on every line the solution's box and the answer field agree (the math rule)")
local fn = empo.data.jsonl(math_file, nil, { gold = function(rec) return rec.unique_id end })
c.eq(fn:get(3).answer, 'test/fixture/2.json', 'gold as a function of the record')

-- refusals name the file:line and what is missing
local dir = check.tmpdir()
local function file(name, text) assert(empo.fs.write_atomic(dir .. '/' .. name, text)); return dir .. '/' .. name end
c.raises(function() return empo.data.jsonl(file('g.jsonl', '{"question": "q", "answer": "42"}\n'), nil, { gold = 'gsm8k' }) end,
         'g.jsonl:1', 'no "#### <answer>" line')
c.raises(function() return empo.data.jsonl(file('b.jsonl', '{"problem": "q", "solution": "it is 4"}\n'), nil, { gold = 'boxed' }) end,
         'b.jsonl:1', 'no \\boxed{} answer')
c.raises(function() return empo.data.jsonl(file('q.jsonl', '{"text": "q"}\n')) end, "no string field 'question' or 'problem' or 'prompt'")
c.raises(function() return empo.data.jsonl(gsm8k_file, nil, { gold = 'last' }) end, "gold must be 'answer', 'boxed', 'gsm8k'")
c.raises(function() return empo.data.jsonl(math_file, nil, { gold = function() return {} end }) end,
         'math_style.jsonl:1', 'the gold function returned a table')
c.eq(empo.data.jsonl(file('two.jsonl', '{"question": "q", "answer": "a\\n#### 1\\nmore\\n#### 2"}\n'), nil,
                     { gold = 'gsm8k' }):get(1).answer, '2', 'the last #### line')
empo.fs.remove_tree(dir)

-- empo eval and a recipe take them with nothing but gold=
local model = src .. '/models/arith-base'
local run = check.empo
local out, rc = run(string.format("eval '%s' '%s' gold=gsm8k k=2 max_new_tokens=8", model, gsm8k_file))
c.ok(rc == 0 and out:find('(20 questions)', 1, true), 'empo eval on the GSM8K-style file: ' .. out:sub(-200))
out, rc = run(string.format("eval '%s' '%s' gold=boxed k=2 max_new_tokens=8", model, math_file))
c.ok(rc == 0 and out:find('(20 questions)', 1, true), 'empo eval on the MATH-style file: ' .. out:sub(-200))
-- the arith base solves some of the GSM8K-style questions (they are its world's kind): a gold read wrongly would score 0
out, rc = run(string.format("run '%s/recipes/math.lua' data='%s' eval='%s' gold=gsm8k steps=0 name=", src, gsm8k_file, gsm8k_file))
local pass = tonumber(out:match('pass@8 ([%d.]+)%%'))
c.ok(rc == 0 and pass and pass > 0, 'a recipe run with gold=gsm8k grades against the #### answers (pass@8 ' ..
     tostring(pass) .. '%)')
c.done()
