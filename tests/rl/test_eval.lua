-- tests/rl/test_eval.lua — empo.rl.eval's arithmetic on known completions
-- (the sampler replaced by a stub for the test): greedy accuracy, avg@k,
-- maj@k (the largest cluster, compared with the math rule), pass@k, their
-- bootstrap standard errors, the table; and `empo eval` on a real tiny
-- model directory.
local check = require 'check'
local empo = require 'empo'
local eval = require 'empo.rl.eval'
local c = check.new('test_eval')

local canned = {
  greedy = { '\\boxed{3}', 'so \\boxed{5}', 'no box' },
  sampled = { { '\\boxed{3}', '\\boxed{3}', '\\boxed{4}', '\\boxed{3.0}' },      -- q1: gold 3
              { '\\boxed{7}', '\\boxed{7}', '\\boxed{6}', '\\boxed{6}' },        -- q2: gold 6 (a tie: first cluster 7)
              { '', '\\boxed{9}', '\\boxed{2}', '\\boxed{9}' } },                -- q3: gold 9
}
local real = empo.sample.generate
empo.sample.generate = function(model, tok, prompts, o)
  local out = {}
  for i = 1, #prompts do
    for j = 1, o.n do
      out[#out + 1] = { text = o.temperature == 0 and canned.greedy[i] or canned.sampled[i][j] }
    end
  end
  return out
end
local data = { { question = 'a', answer = '3' }, { question = 'b', answer = '6' }, { question = 'c', answer = '9' } }
local ok, r = pcall(eval.run, {}, {}, data, { k = 4 })
empo.sample.generate = real
c.ok(ok, 'eval ran: ' .. tostring(not ok and r or ''))
if ok then
  c.near(r.greedy, 1 / 3, 1e-12, 'greedy: one of three right')
  c.near(r.avg, (3 / 4 + 2 / 4 + 2 / 4) / 3, 1e-12, 'avg@4: the mean of the samples\' accuracy')
  c.near(r.maj, 2 / 3, 1e-12, 'maj@4: q1 and q3 right; q2 a tie won by the first cluster (7)')
  c.near(r.pass, 1, 1e-12, 'pass@4: every question has a right sample')
  c.ok(r.se.greedy > 0 and r.se.pass == 0, 'bootstrap standard errors')
  c.ok(eval.table(r):find('maj@4 66.7%', 1, true) ~= nil, 'the table: ' .. eval.table(r))
  -- the diagnosis: boxes, answers, entropy, and what the votes say where greedy is wrong (q2, q3)
  c.near(r.boxed, 2 / 3, 1e-12, 'two greedy answers have a box')
  c.near(r.boxed_accuracy, 0.5, 1e-12, 'one of them right')
  c.near(r.answered, 11 / 12, 1e-12, 'the samples\' answer rate')
  local H = function(ps) local h = 0; for _, p in ipairs(ps) do h = h - p * math.log(p) end; return h end
  c.near(r.entropy, (H{ 0.75, 0.25 } + H{ 0.5, 0.5 } + H{ 0.25, 0.5, 0.25 }) / 3, 1e-9,
         'the mean semantic entropy (an empty answer is a cluster of its own)')
  c.eq(r.greedy_wrong, 2, 'greedy is wrong on q2 and q3')
  c.near(r.gold_plurality, 0.5, 1e-12, 'the gold answer is the strict plurality on q3, tied on q2')
  c.near(r.wrong_share, (2 / 4 + 1 / 4) / 2, 1e-12, 'the largest wrong cluster: 7 on q2, 2 on q3')
  c.ok(eval.diagnosis(r):find('on the 2 greedy-wrong: gold is the plurality of 4 samples in 50.0%', 1, true) ~= nil,
       'the diagnosis line: ' .. eval.diagnosis(r))
end
c.raises(function() return eval.run({}, {}, { { question = 'x' } }) end, 'question 1 has no gold answer')

-- `empo eval` on a model directory
local binary = os.getenv('EMPO_BINARY')
if binary then
  local dir = os.tmpname()
  os.remove(dir)
  assert(empo.fs.make_dirs(dir))
  local corpus = {}
  for i = 1, 30 do corpus[i] = string.format('%d and %d make \\boxed{%d}', i, i, 2 * i) end
  local tok = check.tiny_tokenizer(corpus, { vocab_size = 290, out = dir })
  empo.models.new(check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 96 }, 2):save_pretrained(dir)
  empo.fs.write_atomic(dir .. '/q.jsonl', '{"question": "1 and 1 make", "answer": "2"}\n{"question": "2 and 2 make", "answer": 4}\n')
  local p = io.popen(string.format("'%s' eval '%s' '%s/q.jsonl' k=2 max_new_tokens=4 2>&1; echo \"rc=$?\"", binary, dir, dir))
  local out = p:read('*a')
  p:close()
  c.ok(out:find('greedy', 1, true) and out:find('(2 questions)', 1, true) and out:find('rc=0', 1, true),
       'empo eval prints the table: ' .. out)
  p = io.popen(string.format("'%s' eval '%s/none' '%s/q.jsonl' 2>&1; echo \"rc=$?\"", binary, dir, dir))
  out = p:read('*a')
  p:close()
  c.ok(out:find('not found', 1, true) and out:find('rc=1', 1, true) and not out:find('traceback', 1, true),
       'a missing model: one line, exit 1')
  empo.fs.remove_tree(dir)
end

c.done()
