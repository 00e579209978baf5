-- empo.rl.rollout_store — every step's groups kept on disk, to be read
-- back and re-scored offline (`empo rescore`, empo.rl.rescore) without
-- sampling again. Also empo.rollouts:
--
--     local store = empo.rollouts.open('runs/arith')
--     for step, g in store:groups() do print(step, g.question, g.answers[1], g.rewards[1]) end
--
-- The format (docs/rollouts.md): runs/<name>/rollouts/step-<6 digits>.jsonl.gz,
-- one gzip file per step, written whole under a temporary name and renamed
-- (a kill leaves the previous steps intact). Each line is one group, a JSON
-- object:
--   step, index (the question's place in the data), round (0; dynamic
--   sampling's extra rounds 1, 2, ...), question, gold (when the data has
--   it), prompt, prompt_ids, texts, token_ids, finish ("stop", "length"),
--   logprobs (the sampler's, per token, 6 significant digits), answers,
--   ids (cluster ids, 0 = no answer), rewards, advantages, keep,
--   entropy and self_certainty (per completion means, when the reward
--   read them).
-- Python reads it with the standard library only:
--   [json.loads(l) for l in gzip.open(path, 'rt')]
-- The recipe field rollouts = { on = true, max_mb = 1024 } bounds the
-- store: past max_mb the oldest steps' files are removed (said once).
local empo = require 'empo'
local gzip = require 'empo.io.gzip'
local json = require 'empo.io.json'

local type, error, format, ipairs, pairs, tostring = type, error, string.format, ipairs, pairs, tostring

local M = { FORMAT_VERSION = 1 }

local function file_name(step) return format('step-%06d.jsonl.gz', step) end
local function step_of(name) local s = name:match('^step%-(%d+)%.jsonl%.gz$') return s and tonumber(s) end

local function file_size(path)
  local f = io.open(path, 'rb')
  if not f then return 0 end
  local n = f:seek('end')
  f:close()
  return n or 0
end

-- The steps a store directory holds, ascending.
local function steps_in(dir)
  local steps = {}
  for _, name in ipairs(empo.fs.list(dir)) do
    local s = step_of(name)
    if s then steps[#steps + 1] = s end
  end
  table.sort(steps)
  return steps
end

-- ---- writing ----

local function numbers(xs, fmt)
  local out = {}
  for i = 1, #xs do out[i] = format(fmt, xs[i]) end
  return '[' .. table.concat(out, ',') .. ']'
end

-- One group as its JSON line: the plain fields through empo.json, the
-- sampler's per-token log-probs appended with 6 significant digits (the
-- encoder's 17 would triple the store).
function M.encode_group(step, g)
  local texts, token_ids, finish, lps = {}, {}, {}, {}
  for i, c in ipairs(g.samples or {}) do
    texts[i], token_ids[i], finish[i] = c.text or g.completions[i], json.array(c.ids or {}), c.finish or ''
    lps[i] = c.logprobs and numbers(c.logprobs, '%.6g') or '[]'
  end
  local rec = {
    step = step, index = g.index, round = g.round or 0, question = g.question, gold = g.gold, prompt = g.prompt,
    prompt_ids = json.array(g.prompt_ids or {}), texts = json.array(texts), token_ids = json.array(token_ids),
    finish = json.array(finish), answers = json.array(g.answers), ids = json.array(g.ids),
    rewards = json.array(g.rewards), advantages = json.array(g.advantages), keep = g.keep and true or false,
    entropy = g.token_entropy and json.array(g.token_entropy), self_certainty = g.self_certainty and json.array(g.self_certainty),
  }
  local line = json.encode(rec, { compact = true })
  return line:sub(1, -2) .. ',"logprobs":[' .. table.concat(lps, ',') .. ']}'
end

local Writer = {}
Writer.__index = Writer

-- A writer into dir (made when missing), keeping at most max_mb of files.
function M.writer(dir, o)
  o = o or {}
  local ok, err = empo.fs.make_dirs(dir)
  if not ok then error('rollouts: ' .. tostring(err), 0) end
  local w = setmetatable({ dir = dir, max_bytes = (o.max_mb or 1024) * 2^20, sizes = {}, total = 0,
                           say = o.say or function(msg) io.stderr:write('empo: ', msg, '\n') end }, Writer)
  for _, s in ipairs(steps_in(dir)) do
    w.sizes[s] = file_size(dir .. '/' .. file_name(s))
    w.total = w.total + w.sizes[s]
  end
  return w
end

-- Writes a step's groups (as the rollout made them: g.prompt, g.samples,
-- ...); returns the file's size in bytes.
function Writer:write(step, groups)
  local lines = {}
  for i, g in ipairs(groups) do lines[i] = M.encode_group(step, g) end
  local path = self.dir .. '/' .. file_name(step)
  local ok, err = gzip.write(path, table.concat(lines, '\n') .. '\n', 6)
  if not ok then error('rollouts: ' .. tostring(err), 0) end
  self.total = self.total - (self.sizes[step] or 0)
  self.sizes[step] = file_size(path)
  self.total = self.total + self.sizes[step]
  self:bound(step)
  return self.sizes[step]
end

-- Removes the oldest steps' files while the store is over its bound
-- (never the step just written).
function Writer:bound(newest)
  if self.total <= self.max_bytes then return end
  for _, s in ipairs(steps_in(self.dir)) do
    if self.total <= self.max_bytes or s == newest then break end
    os.remove(self.dir .. '/' .. file_name(s))
    self.total = self.total - (self.sizes[s] or 0)
    self.sizes[s] = nil
    if not self.said_bound then
      self.said_bound = true
      self.say(format('rollouts: the store passed rollouts.max_mb=%g; the oldest steps are removed from now on ' ..
                      '(first: step %d)', self.max_bytes / 2^20, s))
    end
  end
end

-- Removes the steps after `step` (a resume from the checkpoint of `step`
-- samples them again).
function Writer:trim(step)
  for _, s in ipairs(steps_in(self.dir)) do
    if s > step then
      os.remove(self.dir .. '/' .. file_name(s))
      self.total = self.total - (self.sizes[s] or 0)
      self.sizes[s] = nil
    end
  end
end

-- ---- reading ----

local Store = {}
Store.__index = Store
Store.__tostring = function(s) return format('rollout store %s (%d steps)', s.dir, #s.steps) end

-- The store of a run directory (or of its rollouts/ directory itself).
function M.open(dir)
  if type(dir) ~= 'string' then error('empo.rollouts.open: expected a run directory, got ' .. type(dir), 2) end
  local d = dir:gsub('/+$', '')
  if not empo.fs.is_dir(d) then error(format('empo.rollouts.open: %s is not a directory', dir), 2) end
  if empo.fs.is_dir(d .. '/rollouts') then d = d .. '/rollouts' end
  local steps = steps_in(d)
  if #steps == 0 then
    error(format('empo.rollouts.open: %s holds no rollouts (a run keeps them with the recipe field rollouts.on = true)', dir), 2)
  end
  return setmetatable({ dir = d, steps = steps }, Store)
end

-- The groups of one step (a list), each line checked.
function Store:step(step)
  local path = self.dir .. '/' .. file_name(step)
  local text, err = gzip.read(path)
  if not text then error('rollouts: ' .. tostring(err), 0) end
  local groups, n = {}, 0
  for line in text:gmatch('[^\n]+') do
    n = n + 1
    local where = format('%s:%d', path, n)
    local ok, g = pcall(json.decode, line, where)
    if not ok then error('rollouts: ' .. tostring(g), 0) end
    if type(g) ~= 'table' or type(g.texts) ~= 'table' or type(g.answers) ~= 'table' or #g.texts ~= #g.answers then
      error(format('rollouts: %s is not a group record (texts and answers of equal length)', where), 0)
    end
    groups[#groups + 1] = g
  end
  return groups
end

-- for step, group in store:groups() do ... end: every stored group, in order.
function Store:groups()
  local si, list, gi = 0, {}, 0
  return function()
    while gi >= #list do
      si = si + 1
      if si > #self.steps then return nil end
      list, gi = self:step(self.steps[si]), 0
    end
    gi = gi + 1
    return self.steps[si], list[gi]
  end
end

-- The store's size on disk in bytes.
function Store:bytes()
  local n = 0
  for _, s in ipairs(self.steps) do n = n + file_size(self.dir .. '/' .. file_name(s)) end
  return n
end

return M
