-- tests/support/check.lua — a tiny check library for the Lua tests.
--
--     local check = require 'check'            -- found beside the test script
--     local c = check.new('test_tensor')
--     c.eq(t:size(1), 2, 'rows')
--     c.near(x:item(), 0.5, 1e-6)
--     c.raises(function() return a + 'x' end, 'expected tensor or number')
--     c.done()                                  -- prints the count, exits 1 on failure
--
-- A failed check prints its line and what differed, and the run goes on.
local M = {}

local function where(level)
  local info = debug.getinfo(level + 1, 'Sl')
  return info and (info.short_src .. ':' .. info.currentline) or '?'
end

local function show(v)
  if type(v) == 'table' then
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    local keys = {}
    for k in pairs(v) do
      if not (type(k) == 'number' and k >= 1 and k <= #v and k % 1 == 0) then keys[#keys + 1] = k end
    end
    table.sort(keys, function(x, y) return tostring(x) < tostring(y) end)
    for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. ' = ' .. show(v[k]) end
    return '{' .. table.concat(parts, ', ') .. '}'
  elseif type(v) == 'string' then
    return string.format('%q', v)
  end
  return tostring(v)
end
M.show = show

-- Deep equality of numbers/strings/nested tables (every key: the array
-- part and the named fields); numbers within tol.
local function same(a, b, tol)
  if type(a) == 'number' and type(b) == 'number' then
    if a == b or (a ~= a and b ~= b) then return true end        -- also infinities of one sign
    return math.abs(a - b) <= (tol or 0)
  end
  if type(a) == 'table' and type(b) == 'table' then
    if #a ~= #b then return false end
    for k, v in pairs(a) do                       -- every key, not only the array part
      if not same(v, b[k], tol) then return false end
    end
    for k in pairs(b) do
      if a[k] == nil then return false end
    end
    return true
  end
  return a == b
end
M.same = same

function M.new(name)
  local c = { name = name, n = 0, failed = 0 }

  local function fail(msg, detail)
    c.failed = c.failed + 1
    io.stderr:write(string.format('FAIL %s: %s%s\n', where(3), msg or '', detail and (' — ' .. detail) or ''))
  end

  local say = os.getenv('EMPO_TEST_SAY') == '1'   -- every passing check's message too (the figures they name)
  function c.ok(cond, msg)
    c.n = c.n + 1
    if not cond then fail(msg or 'expected a true value')
    elseif say and msg then io.stderr:write('ok   ', msg, '\n') end
    return cond
  end

  function c.eq(got, want, msg)
    c.n = c.n + 1
    if not same(got, want, 0) then fail(msg, 'got ' .. show(got) .. ', want ' .. show(want)); return false end
    return true
  end

  function c.near(got, want, tol, msg)
    c.n = c.n + 1
    if not same(got, want, tol or 1e-6) then
      fail(msg, 'got ' .. show(got) .. ', want ' .. show(want) .. ' (tol ' .. tostring(tol or 1e-6) .. ')')
      return false
    end
    return true
  end

  -- f must raise an error whose message contains every plain-text piece.
  function c.raises(f, ...)
    c.n = c.n + 1
    local ok, err = pcall(f)
    if ok then fail('expected an error', 'none was raised'); return nil end
    err = tostring(err)
    for i = 1, select('#', ...) do
      local piece = select(i, ...)
      if not err:find(piece, 1, true) then
        fail('error message lacks ' .. show(piece), show(err))
        return err
      end
    end
    return err
  end

  -- f must not raise; returns its first result.
  function c.runs(f, msg)
    c.n = c.n + 1
    local ok, r = pcall(f)
    if not ok then fail(msg or 'unexpected error', tostring(r)) end
    return r
  end

  function c.done()
    print(string.format('%s: %d checks, %d failed', c.name, c.n, c.failed))
    io.stdout:flush()
    os.exit(c.failed == 0 and 0 or 1)
  end

  return c
end

-- The Hugging Face config of the tests' small random model (2 layers,
-- hidden 32, 4 query / 2 KV heads, vocabulary 61), with each table of
-- overrides given applied in turn.
-- The tests of tensors on the GPU run where one is (or the emulation is
-- loaded, tests/CMakeLists.txt); elsewhere they exit 77, "skipped".
function M.need_cuda()
  local ok, why = require('empo').cuda_available()
  if not ok then
    print('SKIP: no CUDA device: ' .. why)
    os.exit(77)
  end
end

function M.tiny_hf(...)
  local t = { model_type = 'qwen2', vocab_size = 61, hidden_size = 32, intermediate_size = 48, num_hidden_layers = 2,
              num_attention_heads = 4, num_key_value_heads = 2, rms_norm_eps = 1e-6, rope_theta = 10000,
              max_position_embeddings = 64, initializer_range = 0.1 }
  for i = 1, select('#', ...) do
    for k, v in pairs(select(i, ...) or {}) do t[k] = v end
  end
  return t
end

-- A byte-level BPE tokenizer trained on texts for tests: vocabulary 300
-- and <|endoftext|> as its EOS unless over says otherwise (over.out: also
-- write tokenizer.json there).
function M.tiny_tokenizer(texts, over)
  return require('empo').tokenizer.train(M.with({ texts = texts, vocab_size = 300,
                                                  special_tokens = { '<|endoftext|>' }, eos = '<|endoftext|>' }, over))
end

-- A copy of the table base with the fields of over set (one level:
-- option tables), as recipes merge theirs.
function M.with(base, over) return require('empo.rl.recipe').merged(base, over) end

-- Gives model's biases random values (seeded): a fresh model's are zero, so a
-- decoder that dropped them would pass a comparison. Returns the model.
function M.random_biases(model, seed)
  local empo = require 'empo'
  empo.manual_seed(seed or 1)
  empo.no_grad(function()
    for _, p in ipairs(model:named_parameters()) do
      if p.name:find('bias', 1, true) then p.tensor:copy_(empo.randn(p.tensor:size()) * 0.5) end
    end
  end)
  return model
end

-- Two empo.sample.generate results: whether every completion has the same
-- tokens and finish, and the worst |a - b| of their log-probs (sampling
-- distribution and model), and with stats of their token entropy and
-- self-certainty.
function M.compare_samples(a, b, stats)
  local same, worst = #a == #b, 0
  for i = 1, math.min(#a, #b) do
    same = same and #a[i].ids == #b[i].ids and a[i].finish == b[i].finish
    for t = 1, math.min(#a[i].ids, #b[i].ids) do
      same = same and a[i].ids[t] == b[i].ids[t]
      worst = math.max(worst, math.abs(a[i].logprobs[t] - b[i].logprobs[t]),
                       math.abs(a[i].ref_logprobs[t] - b[i].ref_logprobs[t]))
      if stats then
        worst = math.max(worst, math.abs(a[i].entropy[t] - b[i].entropy[t]),
                         math.abs(a[i].self_certainty[t] - b[i].self_certainty[t]))
      end
    end
  end
  return same, worst
end

-- A shell command's stdout and stderr together, and its exit status.
function M.sh(cmd)
  local p = io.popen(cmd .. ' 2>&1; echo "rc=$?"')
  local out = p:read('*a')
  p:close()
  return out, tonumber(out:match('rc=(%d+)%s*$'))
end

-- The empo command run with args (a shell-quoted string; $EMPO_BINARY, or
-- `empo` on the PATH): its stdout and stderr together, and its exit status.
function M.empo(args, env)
  local binary = os.getenv('EMPO_BINARY') or 'empo'
  return M.sh(string.format("%s '%s' %s", env or '', binary, args))
end

-- The tiny world the run tests share, in dir: a model directory (a
-- tokenizer trained on "i plus i is \boxed{2i}.", a tiny decoder; `hf`
-- changes its config) and n questions "i plus i is" with gold answers.
-- Returns the model directory and the data file.
function M.tiny_world(dir, n, hf)
  local empo = require 'empo'
  local corpus = {}
  for i = 1, 40 do corpus[i] = string.format('%d plus %d is \\boxed{%d}.', i, i, 2 * i) end
  assert(empo.fs.make_dirs(dir .. '/model'))
  local tok = M.tiny_tokenizer(corpus, { out = dir .. '/model' })
  local cfg = { vocab_size = tok.vocab_size }
  for k, v in pairs(hf or {}) do cfg[k] = v end
  empo.models.save_pretrained(empo.models.new(M.tiny_hf(cfg), 4), dir .. '/model')
  local lines = {}
  for i = 1, n do lines[i] = string.format('{"question": "%d plus %d is", "answer": "%d"}', i, i, 2 * i) end
  assert(empo.fs.write_atomic(dir .. '/q.jsonl', table.concat(lines, '\n') .. '\n'))
  return dir .. '/model', dir .. '/q.jsonl'
end

-- ||a - b|| / ||b|| over every element (the oracle tests' measure)
function M.rel_err(a, b)
  local d = a:reshape(-1) - b:reshape(-1)
  local nb = (b * b):sum():sqrt():item()
  return (d * d):sum():sqrt():item() / math.max(nb, 1e-30)
end

-- A new empty directory under the system's temporary folder (the caller removes it).
function M.tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(require('empo').fs.make_dirs(dir))
  return dir
end

return M
