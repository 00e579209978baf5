-- tests/world/test_compare.lua — recipes/arith/compare.lua end to end on
-- the committed base, cut to 2 steps and 20 test questions: the section it
-- writes between its markers (every method's row, the gains, the figure),
-- the text around the markers kept, the curves (SVG, HTML), results.json,
-- and render_only=true writing the same section again without training.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_compare')

local src, binary = os.getenv('EMPO_SOURCE_DIR'), os.getenv('EMPO_BINARY')
if not (src and binary) then print('skipped: needs EMPO_SOURCE_DIR and EMPO_BINARY (run under ctest)'); c.done() end

local dir = check.tmpdir()
local lines = {}
for line in io.lines(src .. '/data/arith/test.jsonl') do
  if #lines < 20 then lines[#lines + 1] = line end
end
empo.fs.write_atomic(dir .. '/test.jsonl', table.concat(lines, '\n') .. '\n')
local doc = dir .. '/results.md'
empo.fs.write_atomic(doc, '# Results\n\nbefore\n\n<!-- arith:begin -->\nold table\n<!-- arith:end -->\n\nafter\n')

local function run(extra)
  local cmd = string.format("cd '%s' && '%s' run '%s/recipes/arith/compare.lua' methods=math,random_reward seeds=1 " ..
                            "steps=2 eval_every=1 eval='%s/test.jsonl' doc='%s' figure='%s/curves.svg' out='%s/runs' %s " ..
                            "2>&1; echo rc=$?", dir, binary, src, dir, doc, dir, dir, extra or '')
  local p = io.popen(cmd)
  local out = p:read('*a')
  p:close()
  return out
end

local out = run()
c.ok(out:find('rc=0', 1, true) ~= nil, 'the comparison runs: ' .. out:sub(-400))
local text = empo.fs.read_text(doc)
c.ok(text:find('# Results\n\nbefore\n\n<!-- arith:begin -->', 1, true) ~= nil, 'the text before the markers is kept')
c.ok(text:find('<!-- arith:end -->\n\nafter\n', 1, true) ~= nil, 'and the text after them')
c.ok(not text:find('old table', 1, true), 'the old section is replaced')
for _, piece in ipairs({ '| base |', '| EMPO, seed 1 |', '| random reward, seed 1 |', 'Gains over the base',
                         'the test set is 20 held-out problems',
                         '![Training curves, seed 1 of each method](curves.svg)' }) do
  c.ok(text:find(piece, 1, true) ~= nil, 'the section has ' .. piece)
end
local svg = empo.fs.read_text(dir .. '/curves.svg')
c.ok(svg:find('^<svg') and svg:find('test accuracy, greedy', 1, true) and svg:find('</svg>', 1, true),
     'the figure is a standalone SVG with the accuracy curve')
c.ok(empo.fs.read_text(dir .. '/runs/plot.html'):find('<svg', 1, true) ~= nil, 'every run on the HTML page')
local saved = empo.json.read_file(dir .. '/runs/results.json')
c.ok(saved.base and saved.runs.math and #saved.runs.math == 1, 'results.json keeps the evaluations')

-- render_only: the same section from results.json, no training
empo.fs.write_atomic(doc, '<!-- arith:begin -->\n<!-- arith:end -->\n')
out = run('render_only=true')
c.ok(out:find('rc=0', 1, true) ~= nil and not out:find('step 1/2', 1, true), 'render_only trains nothing')
local again = empo.fs.read_text(doc)
local section = text:match('<!%-%- arith:begin %-%->.-<!%-%- arith:end %-%->')
c.eq(again:match('<!%-%- arith:begin %-%->.-<!%-%- arith:end %-%->'), section, 'and writes the same section')

out = run('guard=sometimes')
c.ok(out:find("guard must be 'on', 'off', 'watch'", 1, true) and out:find('rc=1', 1, true), 'a bad setting is named')
os.execute("rm -rf '" .. dir .. "'")
c.done()
