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
local empo = require 'empo'

local type, error, format, tostring = type, error, string.format, tostring

local M = {}

local Dataset = {}
Dataset.__index = Dataset
Dataset.__len = function(self) return #self.records end
Dataset.__tostring = function(self) return format('empo.data (%d questions, %s)', #self.records, self.source) end

local function new(records, source, seed)
  if #records == 0 then error(format('empo.data: %s holds no question', source), 3) end
  return setmetatable({ records = records, source = source, seed = seed or 0, epoch = 0, position = 0,
                        order = nil }, Dataset)
end

-- The order of epoch e: a permutation drawn from Philox(seed, e).
function Dataset:order_of(epoch)
  local n = #self.records
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
    if not self.order or self.position >= #self.records then
      if self.order then self.epoch = self.epoch + 1 end
      self.order, self.position = self:order_of(self.epoch), 0
    end
    self.position = self.position + 1
    local i = self.order[self.position]
    local r = self.records[i]
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

-- Records of a JSONL file: each line one object with the question (and
-- optionally the gold answer) under the given field names.
function M.jsonl(path, fields, opts)
  if type(path) ~= 'string' then error('empo.data.jsonl: path must be a string', 2) end
  fields = fields or {}
  local qf, af = fields.question or 'question', fields.answer or 'answer'
  local f, err = io.open(path, 'r')
  if not f then error(format('empo.data.jsonl: cannot open %s (%s)', path, tostring(err)), 2) end
  local records, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:find('%S') then
      local ok, rec = pcall(empo.json.decode, line, format('%s:%d', path, n))
      if not ok then f:close(); error(format('empo.data.jsonl: %s', rec), 2) end
      if type(rec) ~= 'table' or type(rec[qf]) ~= 'string' then
        f:close()
        error(format("empo.data.jsonl: %s:%d has no string field '%s' (the question)", path, n, qf), 2)
      end
      local answer = rec[af]
      if answer ~= nil and type(answer) ~= 'string' then answer = tostring(answer) end
      records[#records + 1] = { question = rec[qf], answer = answer }
    end
  end
  f:close()
  return new(records, path, opts and opts.seed)
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
  return new(records, 'a list', opts and opts.seed)
end

function M.is_dataset(x) return getmetatable(x) == Dataset end

return M
