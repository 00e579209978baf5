-- empo.run.rundir — a run's directory (<out>/<name>/), owned by one run at
-- a time and never mixed with another run's files:
--
--     local rd = rundir.open{ out = 'runs', name = 'math', resume = false, overwrite = false }
--     rd.path                       -- 'runs/math', or 'runs/math-2' when runs/math holds an earlier run
--     rd:trim('metrics.jsonl', step) -- on resume: the records past the checkpoint's step dropped
--     rd:release()                  -- (also at exit, however the process ends)
--
-- Ownership is an advisory lock (flock) on <dir>/lock, which holds the
-- owner's PID: the kernel releases it when the process ends, even by
-- SIGKILL, so a lock file left by a dead process is found unlocked and
-- taken over (and said). A second process on a locked directory is
-- refused with one message naming the PID. A fresh run (resume=false)
-- never writes into a directory that holds an earlier run: it takes the
-- first free <name>-2, <name>-3, ... and says so; overwrite=true removes
-- the earlier run instead; resume=true continues it.
local ffi = require 'ffi'
local fs = require 'empo.io.fs'
local log = require 'empo.run.log'

pcall(ffi.cdef, [[
  int open(const char *path, int flags, int mode);
  int close(int fd);
  int flock(int fd, int operation);
  int ftruncate(int fd, long length);
  long pwrite(int fd, const void *buf, size_t count, long offset);
  int getpid(void);
  int poll(void *fds, unsigned long nfds, int timeout);
]])

local format = string.format
local O_RDWR, O_CREAT, O_CLOEXEC = 2, 0x40, 0x80000
local LOCK_EX, LOCK_NB = 2, 4

local M = {}

local Rundir = {}
Rundir.__index = Rundir

-- locks this process holds, by directory: two trainers of one process
-- (a REPL that resumes its own run) share the lock
local held = setmetatable({}, { __mode = 'v' })

local function close_lock(box)
  if box[0] >= 0 then
    ffi.C.ftruncate(box[0], 0)               -- an empty lock file: released cleanly
    ffi.C.close(box[0])
    box[0] = -1
  end
end

-- One holder of h lets go; the last one releases the lock.
local function let_go(h)
  h.refs = h.refs - 1
  if h.refs <= 0 then
    if held[h.path] == h then held[h.path] = nil end
    close_lock(h.fd)
  end
end

local function to_stderr(msg) io.stderr:write('empo: ', msg, '\n') end

-- The lock of dir: a handle (and true when this process already held it),
-- or nil and the PID written in the lock file by its holder.
local function lock(dir)
  local path = dir .. '/lock'
  local mine = held[path]
  if mine and mine.fd[0] >= 0 then mine.refs = mine.refs + 1; return mine, nil, true end
  local fd = ffi.C.open(path, O_RDWR + O_CREAT + O_CLOEXEC, tonumber('644', 8))
  if fd < 0 then error(format('cannot create %s (is the directory writable?)', path), 0) end
  local before = fs.read_text(path) or ''
  -- a few tries: a holder killed a moment ago may have a child between
  -- fork and exec that still shares the lock for a few microseconds
  local tries = 0
  while ffi.C.flock(fd, LOCK_EX + LOCK_NB) ~= 0 do
    tries = tries + 1
    if tries > 5 then
      ffi.C.close(fd)
      return nil, before:match('%d+') or '?'
    end
    ffi.C.poll(nil, 0, 50)
  end
  local stale = before:match('%d+')
  local pid = tostring(ffi.C.getpid())
  ffi.C.ftruncate(fd, 0)
  ffi.C.pwrite(fd, pid .. '\n', #pid + 1, 0)
  local h = { path = path, fd = ffi.gc(ffi.new('int[1]', fd), close_lock), stale = stale ~= pid and stale or nil,
              refs = 1 }
  held[path] = h
  return h
end

-- Whether dir holds an earlier run's files (anything but its lock).
local function holds_run(dir)
  for _, name in ipairs(fs.list(dir)) do
    if name ~= 'lock' then return true end
  end
  return false
end

local function clear(dir)
  for _, name in ipairs(fs.list(dir, { hidden = true })) do      -- a killed checkpoint's .tmp too
    if name ~= 'lock' then fs.remove_tree(dir .. '/' .. name) end
  end
end

-- Opens (and locks) the run directory for o = { out, name, resume,
-- overwrite }; what it does beyond the plain case (a numbered directory,
-- an earlier run removed, a stale lock taken over) goes to o.say (default:
-- stderr). Raises one message when the directory cannot be had.
function M.open(o)
  local say = o.say or to_stderr
  local note                                  -- why a fresh run does not write under its own name
  local ok, err = fs.make_dirs(o.out)
  if not ok then error(format('out=%s: %s', o.out, err), 0) end
  local base = o.out .. '/' .. o.name
  for i = 1, 1000 do
    local dir = i == 1 and base or format('%s-%d', base, i)
    local made, merr = fs.make_dirs(dir)
    if not made then error(format('run directory %s: %s', dir, merr), 0) end
    local h, pid, ours = lock(dir)
    if h and ours and not o.resume then
      -- another trainer of this process has it (a REPL's earlier one): a fresh run goes on to the next name
      let_go(h)
      if i == 1 then note = format('%s is in use by another trainer of this process, so this run writes %%s', dir) end
    elseif not h then
      if i == 1 then
        error(format('run directory %s is in use by another empo run (PID %s): wait for it to end, or give this ' ..
                     'run another name=', dir, pid), 0)
      end
      -- a numbered directory another fresh run just claimed: try the next
    else
      if h.stale then say(format('%s/lock was left by PID %s, which is no longer running; taken over', dir, h.stale)) end
      local earlier = holds_run(dir)
      if earlier and o.overwrite and not o.resume then
        clear(dir)
        say(format('overwrite=true: the earlier run in %s was removed', dir))
      end
      if o.resume or o.overwrite or not earlier then
        if note then say(format(note, dir)) end
        return setmetatable({ path = dir, name = dir:match('[^/]+$'), handle = h }, Rundir)
      end
      if i == 1 then
        note = format('%s holds an earlier run, so this one writes %%s (resume=true continues %s; ' ..
                      'overwrite=true replaces it; name= chooses another)', dir, dir)
      end
      let_go(h)
    end
  end
  error(format('no free run directory from %s-2 to %s-1000: choose another name=', base, base), 0)
end

-- (two trainers of one process may share the lock: the last to let go
-- releases it)
function Rundir:release()
  if self.handle then
    let_go(self.handle)
    self.handle = nil
  end
end

-- Rewrites a JSONL log of the run keeping the records of steps <= step
-- (a torn last line is dropped and said). Returns the records kept.
function Rundir:trim(file, step, say)
  local path = self.path .. '/' .. file
  if not fs.exists(path) then return {} end
  local records, torn, texts = log.read_metrics(path)
  if torn then (say or to_stderr)(format('%s:%d is a torn line (a write cut off by a kill); dropped', path, torn)) end
  local kept, lines = {}, {}
  for i, rec in ipairs(records) do
    if rec.step <= step then kept[#kept + 1], lines[#lines + 1] = rec, texts[i] end    -- the lines as written
  end
  local ok, err = fs.write_atomic(path, #lines > 0 and table.concat(lines, '\n') .. '\n' or '')
  if not ok then error(err, 0) end
  return kept
end

return M
