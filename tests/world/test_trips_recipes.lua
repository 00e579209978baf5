-- tests/world/test_trips_recipes.lua — the trips world's recipes end to
-- end at a tiny size, in a temporary directory: generate the files,
-- pretrain a base model for a few steps, diagnose it (the three
-- clusterings' votes), train a verifier for a few steps and measure it.
-- What they print is checked for shape, not for quality (a few steps
-- learn nothing); the sizes that matter are measured in docs/.
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_trips_recipes')

local root = os.getenv('EMPO_SOURCE_DIR') or '.'
local dir = check.tmpdir()
local function run(recipe, args)
  return check.empo(string.format("run '%s/recipes/trips/%s.lua' %s", root, recipe, args))
end

local out, rc = run('generate', string.format("out='%s/data' test=20 train=40 valid=10 corpus=300", dir))
c.ok(rc == 0 and out:find('20 test, 40 train, 10 valid, 300 corpus', 1, true), 'generate: ' .. out)
out, rc = run('pretrain', string.format("data='%s/data' out='%s/base' runs='%s/runs' steps=3 vocab=300", dir, dir, dir))
c.ok(rc == 0 and empo.fs.exists(dir .. '/base/model.safetensors') and empo.fs.exists(dir .. '/base/PROVENANCE.md'),
     'pretrain writes a model directory with its provenance: ' .. out:sub(-300))
out, rc = check.sh(string.format("cd '%s' && '%s' run '%s/recipes/trips/diagnose.lua' model=base eval=data/test.jsonl k=2 n=6",
                                  dir, os.getenv('EMPO_BINARY') or 'empo', root))
c.ok(rc == 0 and out:find('greedy', 1, true) and out:find('exact strings', 1, true) and
     out:find('meaning (oracle)', 1, true), 'diagnose prints the votes of the three clusterings: ' .. out:sub(-600))
c.ok(not empo.fs.is_dir(dir .. '/runs/natural'), 'and writes no run directory')
out, rc = run('verifier', string.format("data='%s/data' out='%s/verifier' runs='%s/runs' steps=3 vocab=300 pairs=300 from='' " ..
                                        "test_pairs=20", dir, dir, dir))
c.ok(rc == 0 and out:find('test (held-out):', 1, true) and out:find('validation (held-out):', 1, true) and
     out:find('orders = either', 1, true) and out:find('clustering a group of 8 answers', 1, true) and
     out:find('test pairs wrong under orders = one, by held-out form:', 1, true),
     'verifier trains, then measures validation and test pairs under each rule, and a group\'s cost: ' .. out:sub(-400))
local how = empo.json.read_file(dir .. '/verifier/verifier.json')
c.ok(how.template == require('empo.world.trips').VERIFIER_TEMPLATE and empo.cluster.ORDERS[how.orders] ~= nil and
     out:find('orders = ' .. how.orders .. ' +%(chosen'), 'it writes verifier.json: the template and the rule chosen')
local held = 0
for line in io.lines(dir .. '/data/verifier_test.jsonl') do
  local p = empo.json.decode(line)
  if p.a ~= p.b and type(p.same) == 'boolean' then held = held + 1 end
end
c.eq(held, 20, 'the held-out test pairs are written')
-- the comparison, on the committed base model (and verifier), 2 steps a run, 12 test questions
-- (its table into a copy of a page, between markers; the curves to an SVG)
assert(empo.fs.write_atomic(dir .. '/page.md', '# A page\n\nkept above\n'))
out, rc = run('compare', string.format("methods=exact,verifier,grpo_gold seeds=1 steps=2 eval_every=2 questions=12 " ..
                                       "out='%s/cmp' doc='%s/page.md' figure='%s/curves.svg'", dir, dir, dir))
local saved = rc == 0 and empo.json.read_file(dir .. '/cmp/results.json')
c.ok(saved and saved.base.n == 12 and #saved.runs.verifier == 1 and saved.runs.grpo_gold[1].greedy ~= nil and
     out:find('exact-s1:', 1, true), 'compare runs each method and writes results.json: ' .. out:sub(-500))
local page = empo.fs.read_text(dir .. '/page.md') or ''
c.ok(page:find('kept above', 1, true) and page:find('<!-- trips:begin -->', 1, true) and
     page:find('EMPO, learned verifier, seed 1', 1, true) and page:find('| GRPO, gold answers |', 1, true) and
     page:find('EMPO, learned verifier\'s gain as a share of gold-answer GRPO\'s', 1, true) and
     page:find('What a step costs', 1, true), 'compare writes its section into the page: ' .. page:sub(1, 1500))
local svg = empo.fs.read_text(dir .. '/curves.svg') or ''
c.ok(svg:find('<svg', 1, true) and svg:find('test accuracy, greedy', 1, true), 'and the curves (in-run evaluations) as SVG')
local rec = empo.logger.read_metrics(dir .. '/cmp/verifier-s1/metrics.jsonl')
c.ok(rec[2] and rec[2].eval_greedy ~= nil and rec[1].eval_greedy == nil, 'an in-run evaluation every eval_every steps')
empo.fs.remove_tree(dir)
c.done()
