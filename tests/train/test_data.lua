-- tests/train/test_data.lua — empo.data: JSONL read whole or streamed (the
-- same questions in the same seeded order, epoch after epoch, resumable by
-- position), gold answers carried, and bad files named by file:line.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_data')

local dir = os.tmpname()
os.remove(dir)
assert(empo.fs.make_dirs(dir))
local lines = {}
for i = 1, 37 do
  local rec = { q = string.format('what is %d plus %d?', i, i), gold = 2 * i, pad = string.rep('x', i * 13) }
  lines[#lines + 1] = empo.json.encode(rec, { compact = true })
  if i % 10 == 0 then lines[#lines + 1] = '   ' end            -- blank lines are skipped
end
local path = dir .. '/train.jsonl'
empo.fs.write_atomic(path, table.concat(lines, '\n') .. '\n')

local fields = { question = 'q', answer = 'gold' }
local whole = empo.data.jsonl(path, fields, { seed = 7, stream = false })
local streamed = empo.data.jsonl(path, fields, { seed = 7, stream = true })
c.eq(whole:size(), 37, 'every non-blank line is a question')
c.eq(streamed:size(), 37, 'the streamed file counts the same')
c.ok(whole.records ~= nil and streamed.records == nil, 'the streamed dataset keeps no records')
c.ok(tostring(streamed):find('streamed', 1, true) ~= nil, 'and says so')
c.eq(streamed:get(37), { question = 'what is 37 plus 37?', answer = '74' }, 'a record read from the file, answer as text')
c.eq(streamed:list(3), whole:list(3), 'the first records in file order')

-- 100 draws go through almost three epochs
local a, b = whole:take(100), streamed:take(100)
c.eq(a, b, 'the same draws, whole or streamed')
local seen = {}
for i = 1, 37 do seen[a[i].index] = true end
local distinct = 0
for _ in pairs(seen) do distinct = distinct + 1 end
c.eq(distinct, 37, 'one epoch draws every question once')
local in_order = true
for i = 1, 37 do if a[i].index ~= i then in_order = false end end
c.ok(not in_order, 'in a shuffled order')
local e1, e2 = {}, {}
for i = 1, 37 do e1[i], e2[i] = a[i].index, a[37 + i].index end
c.ok(table.concat(e1, ',') ~= table.concat(e2, ','), 'a fresh order each epoch')

-- resume by position: a new dataset loading the state continues the draws
local s = streamed:state()
local next_draws = streamed:take(20)
local again = empo.data.jsonl(path, fields, { seed = 7, stream = true })
again:load_state(s)
c.eq(again:take(20), next_draws, 'load_state continues where state() was taken')
c.ok(empo.data.jsonl(path, fields, { seed = 8 }):take(5)[1].index ~= nil, 'another seed draws too')

-- the automatic choice: files over STREAM_BYTES stream
local saved = empo.data.STREAM_BYTES
empo.data.STREAM_BYTES = 100
c.ok(empo.data.jsonl(path, fields).records == nil, 'a file over STREAM_BYTES is streamed')
empo.data.STREAM_BYTES = saved
c.ok(empo.data.jsonl(path, fields).records ~= nil, 'a small one is read whole')

-- bad input names the file and line, in both modes
local function write(name, text)
  local p = dir .. '/' .. name
  empo.fs.write_atomic(p, text)
  return p
end
local broken = write('broken.jsonl', '{"question": "ok?"}\n{"question": "no closing"\n')
local missing = write('missing.jsonl', '{"question": "ok?"}\n{"prompt": "wrong field"}\n')
local empty = write('empty.jsonl', '\n  \n')
for _, stream in ipairs({ false, true }) do
  c.raises(function() return empo.data.jsonl(broken, nil, { stream = stream }) end, 'broken.jsonl:2')
  c.raises(function() return empo.data.jsonl(missing, nil, { stream = stream }) end,
           "missing.jsonl:2 has no string field 'question'")
  c.raises(function() return empo.data.jsonl(empty, nil, { stream = stream }) end, 'holds no question')
end
c.raises(function() return empo.data.jsonl(dir .. '/nope.jsonl') end, 'cannot open')
c.raises(function() return streamed:get(38) end, 'outside 1..37')

-- a streamed file rewritten under the run is an error, not garbage
local moving = write('moving.jsonl', '{"question": "one"}\n{"question": "two"}\n')
local m = empo.data.jsonl(moving, nil, { stream = true })
empo.fs.write_atomic(moving, 'x\n')
c.raises(function() return m:get(2) end, 'changed since it was opened')

empo.fs.remove_tree(dir)
c.done()
