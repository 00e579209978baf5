-- empo.rl.cluster (empo.cluster) — answers, and which answers mean the
-- same thing. The statistics of a clustering are empo.rl.stats'.
--
--     local cluster = require 'empo.rl.cluster'       -- also empo.cluster
--     cluster.extract('... so the total is \\boxed{\\frac{1}{2}}.')   --> '\frac{1}{2}'
--     cluster.equivalent('\\frac12', '0.5')           --> true
--     local ids, k = cluster.cluster({ '1/2', '0.5', '3', '' })   --> {1, 1, 2, 0}, 2
--     cluster.cluster(answers, function(a, b, question) return a:lower() == b:lower() end, q)
--
-- A clusterer says when two answers are equivalent. It is either any Lua
-- function (a, b, question) -> bool, or a clusterer object: a callable
-- table with the same call plus an optional `group(answers, question) ->
-- ids, k` that clusters a whole group at once (the built-in rules pass the
-- whole group to C in one call). Built-ins: exact (byte-equal after
-- trimming), normalized (equal normalized forms), math (normalization, then
-- numeric/structural comparison; docs/clustering.md lists every rule),
-- by_model (a verifier language model) and by_embedding (cosine similarity).
-- math{ rtol = 1e-4, chains = 'last' | 'text', label = 'drop' | 'keep' }
-- returns a copy with another relative tolerance (for written decimals) or
-- another reading of equation chains (x = 5+5+1 = 11 is 11, or text) and of
-- a label before = (\frac{NO}{BO} = \frac12 meets a bare \frac12, or not);
-- the defaults read answers as the EMPO reference's grader does.
--
-- Cluster ids are 1-based in order of first appearance; an empty answer
-- (only whitespace; for the C rules also an empty normalized form such as
-- "$$") gets id 0 and is never passed to an equivalence function.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local C = E.C
local contract = require 'empo.rl.contract'
local configurable = require 'empo.rl.configurable'
local bit = require 'bit'

local M = {}

local type, tostring, error, ipairs, pairs = type, tostring, error, ipairs, pairs
local ffi_string = ffi.string

local function argerror(fn, i, want, got)
  error(string.format('%s: argument %d must be %s, got %s', fn, i, want, type(got)), 3)
end

-- ---- scratch buffers (one Lua state, single-threaded) ----

local span = ffi.new('int64_t[2]')
local MAX_BOXES = 64
local box_at, box_len, box_n = ffi.new('int64_t[?]', MAX_BOXES), ffi.new('int64_t[?]', MAX_BOXES), ffi.new('int[1]')
local how_buf = ffi.new('int[1]')
local eq_buf = ffi.new('int[1]')
local k_buf = ffi.new('int32_t[1]')
local out_buf, out_cap = nil, 0
local group_cap, ptrs, lens, ids_buf = 0, nil, nil, nil

local function group_buffers(n)
  if n > group_cap then
    group_cap = math.max(n, 64)
    ptrs = ffi.new('const char *[?]', group_cap)
    lens = ffi.new('int64_t[?]', group_cap)
    ids_buf = ffi.new('int32_t[?]', group_cap)
  end
  return ptrs, lens, ids_buf
end

-- ---- extraction and normalization ----

local FALLBACK = { phrase = 1, number = 2, both = 3 }
local HOW = { [1] = 'boxed', [2] = 'phrase', [3] = 'number' }

-- The answer of a completion. Its complete \boxed{...} / \fbox{...}: with
-- opts.boxes = 'all' (the default, as the EMPO reference reads a
-- completion) every one of them, as one set answer when they differ
-- ("\boxed{1} and \boxed{2}" -> '1, 2'; the same box twice is one answer);
-- with 'last' the last one. Without a box, opts.fallback = 'phrase' ("the
-- answer is X"), 'number' (the last number), 'both' or true. Returns the
-- answer ('' when none) and where it came from ('boxed', 'phrase',
-- 'number' or nil).
function M.extract(text, opts)
  if type(text) ~= 'string' then argerror('empo.cluster.extract', 1, 'a string', text) end
  local fb = opts and opts.fallback or false
  local flags = fb == true and 3 or (fb and FALLBACK[fb])
  if fb and not flags then
    error("empo.cluster.extract: fallback must be 'phrase', 'number', 'both', true or false, got " .. tostring(fb), 2)
  end
  local boxes = opts and opts.boxes or 'all'
  if boxes ~= 'all' and boxes ~= 'last' then
    error("empo.cluster.extract: boxes must be 'all' or 'last', got " .. tostring(boxes), 2)
  end
  if boxes == 'last' then
    E.check(C.empo_cluster_extract(text, #text, flags or 0, span, span + 1, how_buf), 2)
    return ffi_string(ffi.cast('const char *', text) + span[0], span[1]), HOW[how_buf[0]]
  end
  E.check(C.empo_cluster_extract_all(text, #text, flags or 0, box_at, box_len, MAX_BOXES, box_n, how_buf), 2)
  local base, parts, seen = ffi.cast('const char *', text), {}, {}
  for i = 0, box_n[0] - 1 do
    local s = ffi_string(base + box_at[i], box_len[i])
    if s ~= '' and not seen[s] then seen[s] = true; parts[#parts + 1] = s end
  end
  return table.concat(parts, ', '), HOW[how_buf[0]]
end

-- The normalized form the math rule starts from (see docs/clustering.md).
function M.normalize(s)
  if type(s) ~= 'string' then argerror('empo.cluster.normalize', 1, 'a string', s) end
  local need = 5 * #s + 65
  if need > out_cap then out_cap = need; out_buf = ffi.new('char[?]', out_cap) end
  E.check(C.empo_cluster_normalize(s, #s, out_buf, out_cap, span), 2)
  return ffi_string(out_buf, span[0])
end

-- True when a and b are equivalent under the math rule (rtol: relative
-- tolerance, default 1e-6).
function M.equivalent(a, b, rtol)
  if type(a) ~= 'string' then argerror('empo.cluster.equivalent', 1, 'a string', a) end
  if type(b) ~= 'string' then argerror('empo.cluster.equivalent', 2, 'a string', b) end
  E.check(C.empo_cluster_equivalent(a, #a, b, #b, rtol or 0, eq_buf), 2)
  return eq_buf[0] ~= 0
end

-- ---- clusterer objects ----

local Clusterer = {}
Clusterer.__index = Clusterer
Clusterer.__call = function(self, a, b, question) return self.equal(a, b, question) end
Clusterer.__tostring = function(self) return 'empo.cluster.' .. self.name end

-- A clusterer from its pairwise test and, optionally, a whole-group one.
function M.clusterer(name, equal, group)
  if type(equal) ~= 'function' then argerror('empo.cluster.clusterer', 2, 'a function', equal) end
  return setmetatable({ name = name, equal = equal, group = group }, Clusterer)
end

function M.is_clusterer(x) return type(x) == 'table' and type(rawget(x, 'equal')) == 'function' end

local function is_empty(s) return s == nil or s == false or not s:find('%S') end

local function check_answers(fn, answers)
  if type(answers) ~= 'table' then argerror(fn, 1, 'a table of answer strings', answers) end
  local n = #answers
  for i = 1, n do
    local s = answers[i]
    if s ~= false and type(s) ~= 'string' then
      error(string.format('%s: answer %d must be a string (or false), got %s', fn, i, type(s)), 3)
    end
  end
  return n
end

local CHAINS = { last = 0, text = C.EMPO_MATH_CHAINS_AS_TEXT }
local LABEL = { drop = 0, keep = C.EMPO_MATH_KEEP_LHS }

-- A rule's options checked: rtol a number >= 0; math's chains and label
-- among their words.
local function check_rule_options(name, opts)
  if type(opts.rtol) ~= 'number' or not (opts.rtol >= 0) then
    error(string.format('%s: rtol must be a number >= 0, got %s', name, tostring(opts.rtol)), 4)
  end
  if opts.chains ~= nil and not CHAINS[opts.chains] then
    error(string.format("%s: chains must be 'last' or 'text', got %s", name, tostring(opts.chains)), 4)
  end
  if opts.label ~= nil and not LABEL[opts.label] then
    error(string.format("%s: label must be 'drop' or 'keep', got %s", name, tostring(opts.label)), 4)
  end
  return opts
end

-- The pairwise test of each configured rule, by its options table.
local equal_of = setmetatable({}, { __mode = 'k' })

-- A rule run wholly in C (EMPO_RULE_*), over the whole group at once: a
-- configured piece (empo.rl.configurable) — called with two answers it
-- compares them, with options (math{ rtol = 1e-4 }) it is a copy so
-- configured — that also offers group(answers) and equal(a, b).
local function c_rule(name, rule, defaults)
  return configurable.new('empo.cluster.' .. name, defaults, function(opts, a, b, question)
    return equal_of[opts](a, b, question)
  end, {
    is_data = function(x) return type(x) == 'string' or x == false end,
    check = check_rule_options,
    kind = 'cluster',
    build = function(obj)
      local o = obj.options
      local bits = bit.bor(rule, CHAINS[o.chains or 'last'], LABEL[o.label or 'drop'])
      function obj.group(answers)
        local n = check_answers(obj.name, answers)
        local p, l, ids = group_buffers(n)
        for i = 1, n do
          local s = answers[i] or ''
          p[i - 1], l[i - 1] = s, #s
        end
        E.check(C.empo_cluster_group(bits, n, p, l, o.rtol, ids, k_buf), 2)
        local out = {}
        for i = 1, n do out[i] = ids[i - 1] + 1 end
        return out, k_buf[0]
      end
      function obj.equal(a, b)
        local ids = obj.group({ a, b })
        return ids[1] ~= 0 and ids[1] == ids[2]
      end
      equal_of[o] = obj.equal
    end,
  })
end

M.exact = c_rule('exact', C.EMPO_RULE_EXACT, { rtol = 0 })
M.normalized = c_rule('normalized', C.EMPO_RULE_NORMALIZED, { rtol = 0 })
M.math = c_rule('math', C.EMPO_RULE_MATH, { rtol = 0, chains = 'last', label = 'drop' })

-- ---- clustering a group ----

-- Union-find over the answers with any equivalence function: pairs already
-- in one cluster are not asked again.
local function union_find(answers, equal, question)
  local n = #answers
  local parent, empty = {}, {}
  for i = 1, n do parent[i] = i; empty[i] = is_empty(answers[i]) end
  local function find(i)
    while parent[i] ~= i do parent[i] = parent[parent[i]]; i = parent[i] end
    return i
  end
  for i = 1, n do
    if not empty[i] then
      for j = i + 1, n do
        if not empty[j] then
          local ri, rj = find(i), find(j)
          if ri ~= rj and contract.boolean('cluster rule', equal, equal(answers[i], answers[j], question)) then
            if ri < rj then parent[rj] = ri else parent[ri] = rj end
          end
        end
      end
    end
  end
  return parent, empty, find
end

-- ids (1-based, 0 for an empty answer) from a union-find forest
local function number_clusters(n, empty, find)
  local ids, id_of, k = {}, {}, 0
  for i = 1, n do
    if empty[i] then ids[i] = 0
    else
      local r = find(i)
      if not id_of[r] then k = k + 1; id_of[r] = k end
      ids[i] = id_of[r]
    end
  end
  return ids, k
end

-- Clusters a group of answers with `how` (a clusterer, any function
-- (a, b, question) -> bool; default cluster.math). Returns ids, k.
function M.cluster(answers, how, question)
  how = how or M.math
  local n = check_answers('empo.cluster.cluster', answers)
  if type(how) == 'table' and type(how.group) == 'function' then
    local ids, k = how.group(answers, question)
    if type(ids) ~= 'table' or #ids ~= n then
      error(string.format('empo.cluster.cluster: %s.group returned %s ids for %d answers', tostring(how),
        type(ids) == 'table' and #ids or type(ids), n), 2)
    end
    return ids, k
  end
  local callable = type(how) == 'function' or (type(how) == 'table' and getmetatable(how) and getmetatable(how).__call)
  if not callable then argerror('empo.cluster.cluster', 2, 'a clusterer or a function (a, b, question) -> bool', how) end
  local _, empty, find = union_find(answers, how, question)
  return number_clusters(n, empty, find)
end

-- ---- model-backed clusterers (need a language model; see the interfaces) ----

-- Our wording of the reference implementation's verifier prompt: the
-- verifier's next token after it should be " Yes" or " No".
M.default_template = [[Question: {question}

Reference answer: {a}

Candidate answer: {b}

Is the candidate answer equivalent to the reference answer? Do not solve the question; only compare the two answers and reply Yes or No.
Decision:]]

-- template with {question}, {a}, {b} filled in (no pattern escapes needed)
function M.fill(template, fields)
  return (template:gsub('{(%w+)}', function(k) return fields[k] end))
end

-- f(obj, ...) for obj:method(...) or a plain function
local function method_or_function(x, method, fn, what)
  if type(x) == 'function' then return x end
  if type(x) == 'table' and type(x[method]) == 'function' then
    return function(...) return x[method](x, ...) end
  end
  error(string.format("%s: expected a function or an object with a '%s' method, got %s", fn, method, type(x)), 3)
end

local function distinct_answers(answers)
  local uniq, index_of, where = {}, {}, {}
  for i = 1, #answers do
    local s = answers[i]
    if not is_empty(s) then
      if not index_of[s] then uniq[#uniq + 1] = s; index_of[s] = #uniq end
      where[i] = index_of[s]
    end
  end
  return uniq, where
end

-- ids over the original answers from edges among distinct strings
local function cluster_distinct(answers, uniq, where, joined)
  local parent = {}
  for u = 1, #uniq do parent[u] = u end
  local function find(u)
    while parent[u] ~= u do parent[u] = parent[parent[u]]; u = parent[u] end
    return u
  end
  for u = 1, #uniq do
    for v = u + 1, #uniq do
      local ru, rv = find(u), find(v)
      if ru ~= rv and joined(u, v) then
        if ru < rv then parent[rv] = ru else parent[ru] = rv end
      end
    end
  end
  local empty = {}
  for i = 1, #answers do empty[i] = where[i] == nil end
  return number_clusters(#answers, empty, function(i) return find(where[i]) end)
end

local function check_scores(yes, no, fn)
  if type(yes) ~= 'number' or type(no) ~= 'number' then
    error(string.format('%s: the verifier must return two numbers (yes, no), got %s, %s', fn, type(yes), type(no)), 0)
  end
  return yes > no
end

-- A verifier language model asked whether answer b is equivalent to answer a
-- for the question, deciding by its next-token scores for "Yes" vs "No" (as
-- the reference implementation does for free-form answers).
--   verifier: verifier:yes_no(prompt) -> yes, no (logits, log-probs or
--             probabilities of the two tokens), or a function(prompt) -> yes, no;
--             optional verifier:yes_no_batch(prompts) -> yes[], no[] lets a
--             group be judged in one batched call.
--   template: a prompt with {question}, {a}, {b} (default M.default_template).
-- Identical strings are equivalent without asking.
function M.by_model(verifier, template)
  local fn = 'empo.cluster.by_model'
  local ask = method_or_function(verifier, 'yes_no', fn)
  template = template or M.default_template
  if type(template) ~= 'string' then argerror(fn, 2, 'a template string', template) end
  local function prompt(a, b, question) return M.fill(template, { question = question or '', a = a, b = b }) end
  local function equal(a, b, question)
    if a == b then return true end
    local yes, no = ask(prompt(a, b, question))
    return check_scores(yes, no, fn)
  end
  local group
  if type(verifier) == 'table' and type(verifier.yes_no_batch) == 'function' then
    group = function(answers, question)
      local uniq, where = distinct_answers(answers)
      local prompts, pair = {}, {}
      for u = 1, #uniq do
        for v = u + 1, #uniq do
          prompts[#prompts + 1] = prompt(uniq[u], uniq[v], question)
          pair[(u - 1) * #uniq + v] = #prompts
        end
      end
      local yes, no = {}, {}
      if #prompts > 0 then yes, no = verifier:yes_no_batch(prompts) end
      if type(yes) ~= 'table' or type(no) ~= 'table' or #yes ~= #prompts or #no ~= #prompts then
        error(string.format('%s: yes_no_batch must return two arrays of %d numbers', fn, #prompts), 0)
      end
      return cluster_distinct(answers, uniq, where, function(u, v)
        local k = pair[(u - 1) * #uniq + v]
        return check_scores(yes[k], no[k], fn)
      end)
    end
  end
  return M.clusterer('by_model', equal, group)
end

-- A verifier for by_model from a language model: the next-token logits of
-- " Yes" and " No" (their first tokens) after the prompt. `model` is a
-- Hugging Face directory (loaded on first use, with its tokenizer) or a
-- model object with `tokenizer` given; opts.yes / opts.no change the words.
--     cluster = empo.cluster.by_model(empo.cluster.model_verifier('models/verifier'))
function M.model_verifier(model, opts)
  opts = opts or {}
  local v = { yes_word = opts.yes or ' Yes', no_word = opts.no or ' No' }
  local function load()
    if v.model then return end
    local empo = require 'empo'
    if type(model) == 'string' then
      v.model, v.tok = empo.models.from_pretrained(model), empo.tokenizer.load(model)
    else
      v.model, v.tok = model, opts.tokenizer
    end
    if type(v.tok) ~= 'table' then error('empo.cluster.model_verifier: needs a tokenizer (opts.tokenizer)', 3) end
    local y, n = v.tok:encode(v.yes_word), v.tok:encode(v.no_word)
    if #y == 0 or #n == 0 or y[1] == n[1] then
      error(string.format('empo.cluster.model_verifier: %q and %q need distinct first tokens', v.yes_word, v.no_word), 3)
    end
    v.yes_id, v.no_id = y[1], n[1]
  end
  -- the last position's logits of each prompt, in one right-padded batch
  function v:yes_no_batch(prompts)
    load()
    local empo = require 'empo'
    local ids, last, L = {}, {}, 0
    for i, p in ipairs(prompts) do
      ids[i] = self.tok:encode(p)
      L = math.max(L, #ids[i])
    end
    for i, row in ipairs(ids) do
      last[i] = #row
      for k = #row + 1, L do row[k] = 0 end
    end
    local logits = empo.no_grad(function() return self.model(empo.tensor(ids, 'i64')) end):tolist()
    local yes, no = {}, {}
    for i = 1, #prompts do
      local row = logits[i][last[i]]
      yes[i], no[i] = row[self.yes_id + 1], row[self.no_id + 1]
    end
    return yes, no
  end
  function v:yes_no(prompt)
    local yes, no = self:yes_no_batch({ prompt })
    return yes[1], no[1]
  end
  return v
end

-- A vector as a Lua array: from an array of numbers or a 1-d (or [1, D]) tensor.
local function as_vector(v, fn)
  if type(v) == 'cdata' then
    local T = require 'empo.tensor'
    if T.is_tensor(v) then
      v = v:tolist()
      if type(v[1]) == 'table' and #v == 1 then v = v[1] end
    end
  end
  if type(v) ~= 'table' or #v == 0 or type(v[1]) ~= 'number' then
    error(fn .. ': the embedding must be a non-empty array of numbers or a 1-d tensor, got ' .. type(v), 0)
  end
  return v
end

local function cosine(x, y, fn)
  if #x ~= #y then error(string.format('%s: embeddings of sizes %d and %d', fn, #x, #y), 0) end
  local dot, nx, ny = 0, 0, 0
  for i = 1, #x do dot = dot + x[i] * y[i]; nx = nx + x[i] * x[i]; ny = ny + y[i] * y[i] end
  if nx == 0 or ny == 0 then return 0 end
  return dot / math.sqrt(nx * ny)
end
M.cosine = function(x, y) return cosine(as_vector(x, 'empo.cluster.cosine'), as_vector(y, 'empo.cluster.cosine'), 'empo.cluster.cosine') end

-- Answers are equivalent when the cosine similarity of their embeddings is
-- at least threshold (default 0.9).
--   model: model:embed(text) -> vector (the mean-pooled hidden states of the
--          text: an array of numbers or a 1-d tensor), or a function(text);
--          optional model:embed_batch(texts) -> vectors.
-- A group embeds each distinct answer once.
function M.by_embedding(model, threshold)
  local fn = 'empo.cluster.by_embedding'
  local embed = method_or_function(model, 'embed', fn)
  threshold = threshold or 0.9
  if type(threshold) ~= 'number' then argerror(fn, 2, 'a number', threshold) end
  local function equal(a, b)
    if a == b then return true end
    return cosine(as_vector(embed(a), fn), as_vector(embed(b), fn), fn) >= threshold
  end
  local function group(answers)
    local uniq, where = distinct_answers(answers)
    local vecs
    if type(model) == 'table' and type(model.embed_batch) == 'function' and #uniq > 0 then
      vecs = model:embed_batch(uniq)
      if type(vecs) ~= 'table' or #vecs ~= #uniq then
        error(string.format('%s: embed_batch must return %d vectors', fn, #uniq), 0)
      end
    else
      vecs = {}
      for u = 1, #uniq do vecs[u] = embed(uniq[u]) end
    end
    for u = 1, #uniq do vecs[u] = as_vector(vecs[u], fn) end
    return cluster_distinct(answers, uniq, where, function(u, v) return cosine(vecs[u], vecs[v], fn) >= threshold end)
  end
  return M.clusterer('by_embedding', equal, group)
end

-- The module is callable: empo.cluster(answers, how, question).
setmetatable(M, { __call = function(_, answers, how, question) return M.cluster(answers, how, question) end })

return M
