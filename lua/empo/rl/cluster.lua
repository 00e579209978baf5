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

-- The phrases a completion without a box states its answer with (fallback
-- 'phrase'): each a Lua pattern, in lower case, for the words before the
-- answer, matched case-insensitively after a non-letter; the match that
-- starts last in the completion wins, and the answer runs from after it
-- (spaces, ':' and '$' skipped) to a period followed by a space, a newline
-- or the end ('$' and a final period trimmed). With last_sentence = true a
-- phrase counts only in the completion's last sentence (so "the total is
-- 5" early in a derivation is not an answer). A recipe changes them with
-- extract = { fallback = 'phrase', phrases = { ... } }.
M.PHRASES = {
  { lead = 'answer is' },                           -- "so the answer is 34", "The final answer is: 34"
  { lead = 'answer:' },                             -- "Answer: 34"
  { lead = 'the [%w ]- is', last_sentence = true }, -- "The largest n is 34."
}

-- Where the last sentence of text starts (after the last '.', '!' or '?'
-- followed by whitespace, or the last newline, before its final words).
local function last_sentence_start(text)
  local e = #text
  while e > 0 and text:sub(e, e):match('[%s%.!?]') do e = e - 1 end
  local head, start = text:sub(1, e), 1
  for i in head:gmatch('()[%.!?]%s') do start = i + 1 end
  for i in head:gmatch('()\n') do if i + 1 > start then start = i + 1 end end
  return start
end

-- The answer a phrase of `phrases` states last in text, or nil.
local function phrase_answer(text, phrases)
  local lower, best_at, best = text:lower(), 0, nil
  local sentence = nil
  for k, ph in ipairs(phrases) do
    if type(ph) ~= 'table' or type(ph.lead) ~= 'string' then
      error(string.format('empo.cluster.extract: phrases[%d] must be { lead = pattern [, last_sentence = true] }', k), 3)
    end
    local init = 1
    while true do
      local i, j = lower:find(ph.lead, init)
      if not i or j < i then break end
      init = i + 1
      local ok_start = i == 1 or not lower:sub(i - 1, i - 1):match('%a')
      if ph.last_sentence then
        sentence = sentence or last_sentence_start(text)
        ok_start = ok_start and i >= sentence
      end
      if ok_start and i > best_at then
        local x = text:sub(j + 1):match('^[%s:%$]*(.*)$')
        x = x:match('^(.-)%.%s') or x:match('^([^\n]*)')
        x = x:gsub('[%$%.%s]+$', '')
        if x ~= '' then best_at, best = i, x end
      end
    end
  end
  return best
end

-- The answer of a completion. Its complete \boxed{...} / \fbox{...}: with
-- opts.boxes = 'all' (the default, as the EMPO reference reads a
-- completion) every one of them, as one set answer when they differ
-- ("\boxed{1} and \boxed{2}" -> '1, 2'; the same box twice is one answer);
-- with 'last' the last one. Without a box, the fallbacks asked for, in
-- this order: opts.fallback = 'phrase' (the last of opts.phrases, default
-- M.PHRASES), 'number' (the last number), 'both' or true (a phrase, else
-- the last number). Returns the answer ('' when none) and where it came
-- from ('boxed', 'phrase', 'number' or nil).
function M.extract(text, opts)
  if type(text) ~= 'string' then argerror('empo.cluster.extract', 1, 'a string', text) end
  local fb = opts and opts.fallback or false
  local flags = fb == true and 3 or (fb and FALLBACK[fb])
  if fb and not flags then
    error("empo.cluster.extract: fallback must be 'phrase', 'number', 'both', true or false, got " .. tostring(fb), 2)
  end
  flags = flags or 0
  local boxes = opts and opts.boxes or 'all'
  if boxes ~= 'all' and boxes ~= 'last' then
    error("empo.cluster.extract: boxes must be 'all' or 'last', got " .. tostring(boxes), 2)
  end
  local answer, how
  if boxes == 'last' then
    E.check(C.empo_cluster_extract(text, #text, 0, span, span + 1, how_buf), 2)
    answer, how = ffi_string(ffi.cast('const char *', text) + span[0], span[1]), HOW[how_buf[0]]
  else
    E.check(C.empo_cluster_extract_all(text, #text, 0, box_at, box_len, MAX_BOXES, box_n, how_buf), 2)
    local base, parts, seen = ffi.cast('const char *', text), {}, {}
    for i = 0, box_n[0] - 1 do
      local s = ffi_string(base + box_at[i], box_len[i])
      if s ~= '' and not seen[s] then seen[s] = true; parts[#parts + 1] = s end
    end
    answer, how = table.concat(parts, ', '), HOW[how_buf[0]]
  end
  if how == 'boxed' then return answer, how end
  if flags % 2 == 1 then                                  -- the phrases, here in Lua so a recipe can change them
    local p = phrase_answer(text, opts and opts.phrases or M.PHRASES)
    if p then return p, 'phrase' end
  end
  if flags >= 2 then
    E.check(C.empo_cluster_extract(text, #text, C.EMPO_EXTRACT_LAST_NUMBER, span, span + 1, how_buf), 2)
    return ffi_string(ffi.cast('const char *', text) + span[0], span[1]), HOW[how_buf[0]]
  end
  return '', nil
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

-- A clusterer from its pairwise test and, optionally, a whole-group one
-- and a whole-step one (prepare: see M.prepare).
function M.clusterer(name, equal, group, prepare)
  if type(equal) ~= 'function' then argerror('empo.cluster.clusterer', 2, 'a function', equal) end
  return setmetatable({ name = name, equal = equal, group = group, prepare = prepare }, Clusterer)
end

-- Tells a clusterer every group it is about to cluster, so that it can do
-- their work at once: by_model asks its verifier about all the groups'
-- pairs in one batched call, and the groups then read its answers.
-- groups: a list of { answers = {...}, question = string }. A clusterer
-- without a prepare function needs nothing (a no-op).
function M.prepare(how, groups)
  if type(how) == 'table' and type(rawget(how, 'prepare')) == 'function' then
    if type(groups) ~= 'table' then argerror('empo.cluster.prepare', 2, 'a list of { answers, question }', groups) end
    how.prepare(groups)
  end
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

-- ---- model-backed clusterers: by_model (a verifier), by_embedding ----
require('empo.rl.cluster_models')(M, { is_empty = is_empty, number_clusters = number_clusters, argerror = argerror })

-- The module is callable: empo.cluster(answers, how, question).
setmetatable(M, { __call = function(_, answers, how, question) return M.cluster(answers, how, question) end })

return M
