-- empo.run.log (empo.logger) — what a run shows and keeps: a progress line
-- (step, loss, tokens/s, ETA) on stderr, and metrics appended as JSON
-- lines. (empo.log is the elementwise log op; empo.log.progress etc.
-- still work for one release, with a line on stderr.)
--
--     local bar = log.progress{ total = 1000, every = 10 }
--     bar:update(step, { loss = 2.31, ['tok/s'] = 51234 })
--     local metrics = log.metrics('runs/x/metrics.jsonl')
--     metrics:write{ step = step, loss = 2.31 }
local ffi = require 'ffi'
local json = require 'empo.io.json'

local M = {}

pcall(ffi.cdef, [[
  typedef struct { long tv_sec; long tv_nsec; } empo_timespec;
  int clock_gettime(int clk_id, empo_timespec *tp);
  int isatty(int fd);
]])
local ts = ffi.new('empo_timespec')

-- Wall-clock seconds (monotonic).
function M.clock()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + 1e-9 * tonumber(ts.tv_nsec)
end

-- The process's peak resident set in MB (VmHWM of /proc/self/status), or
-- nil where there is none.
function M.peak_rss_mb()
  local f = io.open('/proc/self/status')
  if not f then return nil end
  local status = f:read('*a')
  f:close()
  local kb = status:match('VmHWM:%s+(%d+)')
  return kb and tonumber(kb) / 1024 or nil
end

local function duration(s)
  if s ~= s or s == math.huge then return '?' end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format('%dh%02dm', s / 3600, (s % 3600) / 60) end
  if s >= 60 then return string.format('%dm%02ds', s / 60, s % 60) end
  return string.format('%ds', s)
end
M.duration = duration

local function fmt(v)
  if type(v) ~= 'number' then return tostring(v) end
  if v == math.floor(v) and math.abs(v) < 1e9 then return string.format('%d', v) end
  if math.abs(v) >= 1000 then return string.format('%.0f', v) end
  if math.abs(v) >= 0.01 then return string.format('%.4f', v) end
  return string.format('%.3e', v)
end

local Progress = {}
Progress.__index = Progress

-- total: steps in the run; every: on a non-terminal, print one line per
-- `every` steps (a terminal gets one line rewritten in place); quiet:
-- print nothing (a rank other than 0 of a job).
function M.progress(opts)
  opts = opts or {}
  return setmetatable({ total = opts.total, every = opts.every or 10, start = M.clock(), first_step = nil,
                        tty = ffi.C.isatty(2) == 1, out = opts.out or io.stderr, keys = opts.keys,
                        quiet = opts.quiet }, Progress)
end

function Progress:update(step, fields)
  if self.quiet then return end
  self.first_step = self.first_step or step - 1
  local now = M.clock()
  local done = step - self.first_step
  local rate = done / math.max(now - self.start, 1e-9)
  local parts = { self.total and string.format('step %d/%d', step, self.total) or string.format('step %d', step) }
  local keys = self.keys
  if not keys then
    keys = {}
    for k in pairs(fields or {}) do keys[#keys + 1] = k end
    table.sort(keys)
  end
  for _, k in ipairs(keys) do
    if fields[k] ~= nil then parts[#parts + 1] = k .. ' ' .. fmt(fields[k]) end
  end
  if self.total then parts[#parts + 1] = 'ETA ' .. duration((self.total - step) / rate) end
  local line = table.concat(parts, ' | ')
  if self.tty then
    self.out:write('\r\27[K', line)
    if self.total and step >= self.total then self.out:write('\n'); line = nil end
    self.out:flush()
    self.line, M.bar = line, self
  elseif step % self.every == 0 or step == self.total or done == 1 then
    self.out:write(line, '\n')
    self.out:flush()
  end
end

function Progress:finish()
  if self.tty and not self.quiet and self.line then self.out:write('\n') end
  self.line = nil
  if M.bar == self then M.bar = nil end
end

-- A line for the person watching (stderr), written above a progress line
-- that a terminal shows in place (which is drawn again below it).
function M.say(text)
  local bar = M.bar
  if bar and bar.line then
    bar.out:write('\r\27[K', text, '\n', bar.line)
    bar.out:flush()
  else
    io.stderr:write(text, '\n')
    io.stderr:flush()
  end
end

local Metrics = {}
Metrics.__index = Metrics

-- Appends to path (the run may be a resumed one).
function M.metrics(path)
  local f, err = io.open(path, 'ab')
  if not f then error(string.format('log.metrics: cannot open %s: %s', path, err), 2) end
  return setmetatable({ f = f, path = path }, Metrics)
end

function Metrics:write(record)
  self.f:write(json.encode(record, { compact = true }), '\n')
  self.f:flush()
end

function Metrics:close() self.f:close() end

-- Reads a metrics.jsonl (or samples.jsonl) back: a list of records, each
-- an object with a numeric step (and, third, each record's line as written). A last line without its newline that is
-- not valid JSON is what a kill in the middle of a write leaves: it is
-- dropped, and its line number returned second (the caller says so). Any
-- other bad line is an error naming path:line.
function M.read_metrics(path)
  local f, err = io.open(path, 'rb')
  if not f then error(string.format('cannot read %s: %s', path, tostring(err)), 0) end
  local text = f:read('*a')
  f:close()
  local out, torn, n, texts = {}, nil, 0, {}
  for line, nl in text:gmatch('([^\n]*)(\n?)') do
    if nl == '' and line == '' then break end
    n = n + 1
    if line:find('%S') then
      local where = string.format('%s:%d', path, n)
      local ok, rec = pcall(json.decode, line, where)
      if not ok and nl == '' then
        torn = n
      elseif not ok then
        error(rec, 0)
      elseif type(rec) ~= 'table' or type(rec.step) ~= 'number' then
        error(string.format('%s: a record must be a JSON object with a numeric "step"', where), 0)
      else
        out[#out + 1], texts[#out + 1] = rec, line
      end
    end
  end
  return out, torn, texts
end

return M
