-- empo.rl.cluster_models — the clusterers that need a language model:
-- by_model (a verifier asked whether answer b means answer a, deciding by
-- its next-token scores for "Yes" vs "No", as the reference implementation
-- does for free-form answers; model_verifier makes one of an empo model)
-- and by_embedding (cosine similarity of embeddings). They are installed
-- into empo.cluster (this file returns the function that does it, given
-- the cluster module and its helpers), so users reach them as
-- empo.cluster.by_model and friends.

local type, tostring, error, ipairs, pairs = type, tostring, error, ipairs, pairs

return function(M, helpers)
local is_empty, number_clusters, argerror = helpers.is_empty, helpers.number_clusters, helpers.argerror

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

-- yes - no, checked to be two numbers
local function margin(yes, no, fn)
  if type(yes) ~= 'number' or type(no) ~= 'number' then
    error(string.format('%s: the verifier must return two numbers (yes, no), got %s, %s', fn, type(yes), type(no)), 0)
  end
  return yes - no
end

-- How a pair's two orders decide (opts.orders): 'one' asks (a, b) only;
-- the others also ask (b, a): 'either' merges when either says yes,
-- 'both' when both do (bidirectional entailment), 'mean' when the mean
-- of the two margins (yes - no) is above 0.
local DECIDE = {
  one = function(m) return m[1] > 0 end,
  either = function(m) return m[1] > 0 or m[2] > 0 end,
  both = function(m) return m[1] > 0 and m[2] > 0 end,
  mean = function(m) return m[1] + m[2] > 0 end,
}
M.ORDERS = DECIDE     -- (rule -> function({ margin(a, b), margin(b, a) }) -> merged?)

-- A verifier language model asked whether answer b is equivalent to answer a
-- for the question, deciding by its next-token scores for "Yes" vs "No" (as
-- the reference implementation does for free-form answers).
--   verifier: verifier:yes_no(prompt) -> yes, no (logits, log-probs or
--             probabilities of the two tokens), or a function(prompt) -> yes, no;
--             optional verifier:yes_no_batch(prompts) -> yes[], no[] lets a
--             group (and, with prepare, a step) be judged in one batched call.
--   template: a prompt with {question}, {a}, {b} (default M.default_template).
--   opts.orders: 'one' (default), 'either', 'both' or 'mean' (DECIDE above).
-- Identical strings are equivalent without asking.
function M.by_model(verifier, template, opts)
  local fn = 'empo.cluster.by_model'
  local ask = method_or_function(verifier, 'yes_no', fn)
  template = template or M.default_template
  if type(template) ~= 'string' then argerror(fn, 2, 'a template string', template) end
  opts = opts or {}
  if type(opts) ~= 'table' then argerror(fn, 3, 'an options table', opts) end
  local orders = opts.orders or 'one'
  local decide = DECIDE[orders]
  if not decide then
    error(string.format("%s: orders must be 'one', 'either', 'both' or 'mean', got %s", fn, tostring(orders)), 2)
  end
  local function prompt(a, b, question) return M.fill(template, { question = question or '', a = a, b = b }) end
  -- the prompts a pair is judged by: (a, b), and (b, a) unless orders is 'one'
  local function pair_prompts(a, b, question)
    if orders == 'one' then return { prompt(a, b, question) } end
    return { prompt(a, b, question), prompt(b, a, question) }
  end
  local function equal(a, b, question)
    if a == b then return true end
    local m = {}
    for k, p in ipairs(pair_prompts(a, b, question)) do
      local yes, no = ask(p)
      m[k] = margin(yes, no, fn)
    end
    return decide(m)
  end
  if type(verifier) ~= 'table' or type(verifier.yes_no_batch) ~= 'function' then
    return M.clusterer('by_model', equal)
  end
  -- With yes_no_batch: a group asks about its distinct pairs in one call,
  -- and prepare asks about a whole step's groups' pairs in one call; the
  -- groups then read those margins (kept until the next prepare).
  local prepared = {}
  local function ask_batch(prompts)
    local yes, no = {}, {}
    if #prompts > 0 then yes, no = verifier:yes_no_batch(prompts) end
    if type(yes) ~= 'table' or type(no) ~= 'table' or #yes ~= #prompts or #no ~= #prompts then
      error(string.format('%s: yes_no_batch must return two arrays of %d numbers', fn, #prompts), 0)
    end
    local out = {}
    for k = 1, #prompts do out[k] = margin(yes[k], no[k], fn) end
    return out
  end
  -- each distinct pair (u < v) of a group's distinct answers, with its prompts
  local function each_pair(uniq, question, f)
    for u = 1, #uniq do
      for v = u + 1, #uniq do f(u, v, pair_prompts(uniq[u], uniq[v], question)) end
    end
  end
  -- the margins of prompts: those prepared, the rest asked in one call
  local function margins_of(prompts)
    local known, todo, seen = {}, {}, {}
    for _, p in ipairs(prompts) do
      if prepared[p] ~= nil then known[p] = prepared[p]
      elseif not seen[p] then seen[p] = true; todo[#todo + 1] = p end
    end
    local fresh = ask_batch(todo)
    for k, p in ipairs(todo) do known[p] = fresh[k] end
    return known
  end
  local function group(answers, question)
    local uniq, where = distinct_answers(answers)
    local all, of_pair = {}, {}
    each_pair(uniq, question, function(u, v, ps)
      of_pair[(u - 1) * #uniq + v] = ps
      for _, p in ipairs(ps) do all[#all + 1] = p end
    end)
    local known = margins_of(all)
    return cluster_distinct(answers, uniq, where, function(u, v)
      local m = {}
      for k, p in ipairs(of_pair[(u - 1) * #uniq + v]) do m[k] = known[p] end
      return decide(m)
    end)
  end
  local function prepare(groups)
    local all = {}
    for i, g in ipairs(groups) do
      if type(g) ~= 'table' or type(g.answers) ~= 'table' then
        error(string.format('empo.cluster.prepare: group %d must be a table with answers', i), 0)
      end
      each_pair((distinct_answers(g.answers)), g.question, function(_, _, ps)
        for _, p in ipairs(ps) do all[#all + 1] = p end
      end)
    end
    prepared = {}                       -- (this step's answers only)
    prepared = margins_of(all)
  end
  return M.clusterer('by_model', equal, group, prepare)
end

-- A verifier for by_model from a language model: the next-token logits of
-- " Yes" and " No" (their first tokens) after the prompt. `model` is a
-- Hugging Face directory (loaded on first use, with its tokenizer) or a
-- model object with `tokenizer` given; opts.yes / opts.no change the words;
-- opts.cache bounds the decisions kept by prompt (v.cache_hits, v.cache_misses).
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
  -- Decisions already made, by prompt (opts.cache entries at most, default
  -- 100000; 0: none): a template without the question repeats its pairs
  -- from group to group and step to step.
  local cache, cached, cache_max = {}, 0, opts.cache or 100000
  v.cache_hits, v.cache_misses = 0, 0
  -- the last position's logits of each prompt, in one right-padded batch
  -- (the prompts already decided come from the cache)
  function v:yes_no_batch(prompts)
    local yes, no, todo = {}, {}, {}
    for i, p in ipairs(prompts) do
      local hit = cache[p]
      if hit then yes[i], no[i] = hit[1], hit[2] else todo[#todo + 1] = i end
    end
    self.cache_hits, self.cache_misses = self.cache_hits + #prompts - #todo, self.cache_misses + #todo
    if #todo == 0 then return yes, no end
    local fresh = {}
    for k, i in ipairs(todo) do fresh[k] = prompts[i] end
    local y, n = self:forward(fresh)
    for k, i in ipairs(todo) do
      yes[i], no[i] = y[k], n[k]
      if cache_max > 0 then
        if cached >= cache_max then cache, cached = {}, 0 end        -- (full: start again)
        cache[prompts[i]], cached = { y[k], n[k] }, cached + 1
      end
    end
    return yes, no
  end
  -- The two words' logits after each prompt, in right-padded batches of
  -- at most opts.batch_tokens tokens (default 2048: on this project's
  -- 2-core CPU, batches of 1-2k tokens ran faster than 4k or 16k ones, and
  -- a real model's activations stay small). A
  -- stock model computes its last layer and its head for each prompt's
  -- last position and the two words alone; any other model's logits are
  -- cut to those after its forward.
  local batch_tokens = opts.batch_tokens or 2048
  local function forward_batch(ids)
    local empo = require 'empo'
    local L, last = 0, {}
    for i, row in ipairs(ids) do L = math.max(L, #row); last[i] = #row - 1 end
    for _, row in ipairs(ids) do for k = #row + 1, L do row[k] = 0 end end
    local words = empo.tensor({ v.yes_id, v.no_id }, 'i64')
    local m, B = v.model, #ids
    local pair = empo.no_grad(function()
      local x = empo.tensor(ids, 'i64')
      local head = type(m.head_rows) == 'function' and type(m.hidden) == 'function' and m:head_rows(words)
      if head then
        local h = m:hidden(x, { last = last })                     -- [B, 1, D]
        return empo.linear(h:view(B, h:size(3)), head)
      end
      local logits = m(x)
      local V, rows = logits:size(3), {}
      for i = 1, B do rows[i] = (i - 1) * L + last[i] end
      return logits:reshape(B * L, V):index_select(1, empo.tensor(rows, 'i64')):index_select(2, words)
    end):tolist()
    return pair
  end
  -- (the prompts go in order of length, so that a batch pads little)
  function v:forward(prompts)
    load()
    local rows, order = {}, {}
    for i, p in ipairs(prompts) do
      rows[i], order[i] = self.tok:encode(p), i
      if #rows[i] == 0 then error('empo.cluster.model_verifier: a prompt encodes to no tokens', 0) end
    end
    table.sort(order, function(a, b) return #rows[a] < #rows[b] or (#rows[a] == #rows[b] and a < b) end)
    local yes, no, chunk, at, longest = {}, {}, {}, {}, 0
    local function flush()
      if #chunk == 0 then return end
      for k, r in ipairs(forward_batch(chunk)) do yes[at[k]], no[at[k]] = r[1], r[2] end
      chunk, at, longest = {}, {}, 0
    end
    for _, i in ipairs(order) do
      local row = rows[i]
      if #chunk > 0 and (#chunk + 1) * math.max(longest, #row) > batch_tokens then flush() end
      chunk[#chunk + 1], at[#chunk + 1], longest = row, i, math.max(longest, #row)
    end
    flush()
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

end
