-- empo.train.data (empo.data) — question datasets for training and
-- evaluation: a JSONL file or a Lua list, drawn in a fresh seeded order
-- each epoch, resumable by position. Gold answers, when the records carry
-- them, travel with the questions for metrics; a reward sees them only if
-- it asks (empo.reward.gold).
--
--     local data = empo.data.jsonl('data/arith/train.jsonl', { question = 'question', answer = 'answer' })
--     local batch = data:take(16)       -- { { question = ..., answer = ..., index = i }, ... }
--     local s = data:state()            -- { epoch, position, seed }; data:load_state(s) resumes
--     empo.data.list({ 'What is 2+2?', { question = 'And 3+3?', answer = '6' } })
--
-- A JSONL file over STREAM_BYTES (or with { stream = true }) is streamed:
-- one pass checks every line and keeps only where each starts, and take()
-- reads the records it needs from the file, so memory stays at 8 bytes a
-- question whatever the records hold.
local empo = require 'empo'
local ffi = require 'ffi'
local C = require('empo.tensor.ffi').C

local type, error, format, tostring = type, error, string.format, tostring

local M = {}

local Dataset = {}
Dataset.__index = Dataset
-- (LuaJIT honours __len on tables only in its 5.2 mode: d:size() always works)
Dataset.__len = function(self) return self.n end
function Dataset:size() return self.n end
Dataset.__tostring = function(self)
  return format('empo.data (%d questions, %s%s)', self.n, self.source, self.offsets and ', streamed' or '')
end

M.STREAM_BYTES = 256 * 1024 * 1024

-- records: a list, or nil for a streamed file (offsets[i-1] = where line i starts)
local function new(records, n, source, seed, offsets)
  if n == 0 then error(format('%s holds no question', source), 0) end
  return setmetatable({ records = records, n = n, source = source, seed = seed or 0, epoch = 0, position = 0,
                        order = nil, offsets = offsets }, Dataset)
end

-- The order of epoch e: a permutation drawn from Philox(seed, e).
function Dataset:order_of(epoch)
  local n = self.n
  local g = empo.Generator(self.seed, epoch)
  local keys = empo.rand(n, { generator = g }):tolist()
  local order = {}
  for i = 1, n do order[i] = i end
  table.sort(order, function(a, b) return keys[a] < keys[b] or (keys[a] == keys[b] and a < b) end)
  return order
end

-- The next n records (copies with their index in the dataset), going on
-- into the next epoch's order when this one ends.
function Dataset:take(n)
  if type(n) ~= 'number' or n < 1 or n % 1 ~= 0 then error('empo.data:take: n must be an integer >= 1', 2) end
  local out = {}
  for _ = 1, n do
    if not self.order or self.position >= self.n then
      if self.order then self.epoch = self.epoch + 1 end
      self.order, self.position = self:order_of(self.epoch), 0
    end
    self.position = self.position + 1
    local i = self.order[self.position]
    local r = self:get(i)
    out[#out + 1] = { question = r.question, answer = r.answer, index = i }
  end
  return out
end

function Dataset:state() return { epoch = self.epoch, position = self.position, seed = self.seed } end

function Dataset:load_state(s)
  if type(s) ~= 'table' or type(s.epoch) ~= 'number' or type(s.position) ~= 'number' then
    error('empo.data:load_state: expected { epoch, position, seed }', 2)
  end
  self.seed, self.epoch, self.position = s.seed or self.seed, s.epoch, s.position
  self.order = self:order_of(self.epoch)
end

-- Record i ({ question, answer }), in file order.
function Dataset:get(i)
  if type(i) ~= 'number' or i < 1 or i > self.n or i % 1 ~= 0 then
    error(format('empo.data:get: index %s outside 1..%d', tostring(i), self.n), 2)
  end
  if self.records then return self.records[i] end
  if not self.file then
    self.file = io.open(self.source, 'r') or error(format('empo.data: cannot reopen %s', self.source), 2)
  end
  self.file:seek('set', tonumber(self.offsets[i - 1]))
  local line = self.file:read('*l')
  local rec = line and self.parse(line, format('%s record %d', self.source, i))
  if not rec then error(format('empo.data: %s changed since it was opened (record %d)', self.source, i), 2) end
  return rec
end

-- Where record i came from, for messages: 'path:line' (or 'path record i'
-- for a streamed file, 'item i' of a list).
function Dataset:where(i)
  if self.lines and self.lines[i] then return format('%s:%d', self.source, self.lines[i]) end
  if self.records then return format('item %d of %s', i, self.source) end
  return format('%s record %d', self.source, i)
end

-- The first n records (all by default), in file order: what an evaluation reads.
function Dataset:list(n)
  n = math.min(n or self.n, self.n)
  local out = {}
  for i = 1, n do out[i] = self:get(i) end
  return out
end

-- Position (1-based) of the first byte of s that is not valid UTF-8, or
-- nil: the tokenizer's check (empo_utf8_invalid_at).
local function utf8_invalid_at(s)
  local at = tonumber(C.empo_utf8_invalid_at(s, #s))
  return at >= 0 and at + 1 or nil
end
M.utf8_invalid_at = utf8_invalid_at

-- Where the gold answer comes from (opts.gold of jsonl): the answer field
-- as it is; the last \boxed{} of a worked solution (MATH, NuminaMath,
-- OpenR1-Math); the "#### 42" line that ends a GSM8K answer; or a
-- function(record) -> answer string (or nil: none).
M.GOLD = { answer = true, boxed = true, gsm8k = true }
-- The fields tried, in order, when none is named: the common exports'.
local QUESTION_FIELDS = { 'question', 'problem', 'prompt' }
local ANSWER_FIELDS = { answer = { 'answer' }, boxed = { 'solution', 'answer' }, gsm8k = { 'answer' } }

local function field_of(rec, named, candidates)
  if named then return named end
  for _, f in ipairs(candidates) do if rec[f] ~= nil then return f end end
  return candidates[1]
end

local function gold_of(how, text, rec)
  if type(how) == 'function' then
    local ok, v = pcall(how, rec)
    if not ok then return nil, 'the gold function failed: ' .. tostring(v) end
    if v ~= nil and type(v) ~= 'string' and type(v) ~= 'number' then
      return nil, 'the gold function returned a ' .. type(v) .. ' (a string, a number or nil)'
    end
    return v ~= nil and tostring(v) or nil
  elseif how == 'gsm8k' then
    local last
    for v in (text .. '\n'):gmatch('####%s*([^\n]-)%s*\n') do last = v end
    if not last or last == '' then return nil, 'has no "#### <answer>" line (gold=gsm8k)' end
    return last
  elseif how == 'boxed' then
    local box = empo.cluster.extract(text, { boxes = 'last' })
    if box == '' then return nil, 'has no \\boxed{} answer (gold=boxed)' end
    return box
  end
  return text
end

-- One JSONL line's record { question, answer }, or nil and the message
-- (where names file:line). spec: question, answer (field names; nil: the
-- first of the common ones present), gold ('answer', 'boxed', 'gsm8k' or a
-- function: M.GOLD), answers (true: a gold answer on every line, as an
-- evaluation needs). The line must be valid UTF-8 and JSON, the question
-- a non-empty string, the gold answer a string or a number when present.
function M.record(line, where, spec)
  spec = spec or {}
  local gold = spec.gold or 'answer'
  local bad = utf8_invalid_at(line)
  if bad then return nil, format('%s: byte %d is not valid UTF-8 (the file must be UTF-8 text)', where, bad) end
  local ok, rec = pcall(empo.json.decode, line, where)
  if not ok then return nil, rec end
  if type(rec) ~= 'table' then return nil, format('%s is not a JSON object', where) end
  local qf = field_of(rec, spec.question, QUESTION_FIELDS)
  if not spec.question and rec[qf] ~= nil then spec.question = qf end   -- the first line decides for the file
  if type(rec[qf]) ~= 'string' then
    return nil, format("%s has no string field '%s' (the question)", where,
                       spec.question or table.concat(QUESTION_FIELDS, "' or '"))
  end
  if not rec[qf]:find('%S') then return nil, format("%s: the question ('%s') is empty", where, qf) end
  if utf8_invalid_at(rec[qf]) then        -- a \u escape can decode to a lone surrogate
    return nil, format("%s: the question ('%s') is not valid UTF-8 once its escapes are read", where, qf)
  end
  local af = field_of(rec, spec.answer, ANSWER_FIELDS[gold] or { 'answer' })
  if not spec.answer and rec[af] ~= nil then spec.answer = af end
  local answer = rec[af]
  if answer == nil and type(gold) ~= 'function' then
    if spec.answers then return nil, format("%s has no field '%s' (the gold answer, which evaluation needs)", where, af) end
  elseif type(answer) == 'number' then
    answer = answer % 1 == 0 and math.abs(answer) < 2 ^ 53 and format('%d', answer) or tostring(answer)
  elseif answer ~= nil and type(answer) ~= 'string' then
    return nil, format("%s: the gold answer ('%s') is %s; it must be a string or a number", where, af,
                       answer == empo.json.null and 'null' or 'a ' .. type(answer))
  end
  if answer ~= nil or type(gold) == 'function' then
    local why
    answer, why = gold_of(gold, answer, rec)
    if why then return nil, format("%s: the gold answer ('%s') %s", where, af, why) end
    if answer == nil and spec.answers then return nil, format('%s: the gold function gave no answer', where) end
  end
  if answer ~= nil then
    if not answer:find('%S') then return nil, format("%s: the gold answer ('%s') is empty", where, af) end
    if utf8_invalid_at(answer) then
      return nil, format("%s: the gold answer ('%s') is not valid UTF-8 once its escapes are read", where, af)
    end
  end
  return { question = rec[qf], answer = answer }
end

-- Records of a JSONL file: each line one object with the question (and
-- optionally the gold answer) under the given field names. Every line is
-- checked when the file is opened (valid UTF-8, the question a string, the
-- gold answer a string or a number when present; opts.answers = true:
-- present on every line, as an evaluation needs), each problem an error
-- naming path:line.
function M.jsonl(path, fields, opts)
  if type(path) ~= 'string' then error('empo.data.jsonl: path must be a string', 2) end
  fields, opts = fields or {}, opts or {}
  local gold = opts.gold or 'answer'
  if type(gold) ~= 'function' and not M.GOLD[gold] then
    error(format("gold must be 'answer', 'boxed', 'gsm8k' or a function, got %s", tostring(gold)), 0)
  end
  local spec = { question = fields.question, answer = fields.answer, gold = gold, answers = opts.answers }
  local f, err = io.open(path, 'r')
  if not f then error(format('cannot open %s (%s)', path, tostring(err)), 0) end
  local stream = opts.stream
  if stream == nil then stream = f:seek('end') > M.STREAM_BYTES; f:seek('set') end
  local function parse(line, where) return M.record(line, where, spec) end
  local records, count, line_no = (not stream) and {} or nil, 0, 0
  local lines = {}                                        -- each record's line in the file (read whole)
  local offsets, cap = nil, 0
  while true do
    local at = f:seek()
    local line = f:read('*l')
    if not line then break end
    line_no = line_no + 1
    if line:find('%S') then
      local rec, msg = parse(line, format('%s:%d', path, line_no))
      if not rec then f:close(); error(msg, 0) end
      count = count + 1
      if records then
        records[count], lines[count] = rec, line_no
      else
        if count > cap then                               -- grow the offsets by doubling
          local bigger = ffi.new('int64_t[?]', math.max(1024, 2 * cap))
          if offsets then ffi.copy(bigger, offsets, cap * 8) end
          offsets, cap = bigger, math.max(1024, 2 * cap)
        end
        offsets[count - 1] = at
      end
    end
  end
  f:close()
  local d = new(records, count, path, opts.seed, offsets)
  d.lines = records and lines
  d.parse = offsets and parse
  return d
end

-- Records from a Lua list of question strings or { question =, answer = } tables.
function M.list(items, opts)
  if type(items) ~= 'table' then error('empo.data.list: expected a list of questions', 2) end
  local records = {}
  for i, x in ipairs(items) do
    if type(x) == 'string' then records[i] = { question = x }
    elseif type(x) == 'table' and type(x.question) == 'string' then
      records[i] = { question = x.question, answer = x.answer ~= nil and tostring(x.answer) or nil }
    else
      error(format('empo.data.list: item %d must be a question string or { question =, answer = }', i), 2)
    end
  end
  return new(records, #records, 'a list', opts and opts.seed)
end

function M.is_dataset(x) return getmetatable(x) == Dataset end

return M
