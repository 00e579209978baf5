-- cli.attach — the `empo attach RUN_DIR` command: a REPL connected to a
-- running `empo run` of RUN_DIR through RUN_DIR/attach.sock
-- (empo.rl.attach_server serves it). Line editing, history and tab
-- completion as in `empo repl` (cli.repl); completion asks the run, and
-- gets no answer while a step is in progress. Each chunk is sent whole and
-- runs in the run's Lua state between two steps; what it prints, its
-- values and its errors come back here. Ctrl-C while waiting cancels a
-- chunk the run has not started; Ctrl-D (or `exit`) detaches. Part of the
-- command, not of the library.
local ffi = require 'ffi'
local channel = require 'empo.run.channel'
local repl = require 'cli.repl'

local format = string.format

local USAGE = [[
usage: empo attach RUN_DIR

A Lua prompt inside the running `empo run` whose run directory is RUN_DIR
(through RUN_DIR/attach.sock, which only its owner can open). Chunks run
between the run's steps, with the trainer as `t`:
  t.last.groups[1], t.history[#t.history], t.step_count     inspect
  t.recipe.filter = empo.filter.confidence{ low = 0.4 }      change a field
  t.recipe.optim.lr = 5e-6                                     (from the next step on)
  t:pause()  t:resume()  t:save()  t:stop()
Every change is checked as the recipe field is, noted in the next step's
record of metrics.jsonl and kept in RUN_DIR/recipe.json, so resume=true
replays it at the same step. A chunk may run attach.seconds (recipe field,
default 10 s). Ctrl-D or `exit` detaches; the run goes on.
]]

local function out(text) io.stdout:write(text); io.stdout:flush() end
local function err(text) io.stderr:write(text); io.stderr:flush() end

-- Why nothing can be reached at RUN_DIR's socket, in the user's words.
local function unreachable(dir, path, e, msg)
  if e == channel.ENOENT then
    return format('%s has no attach.sock: no `empo run` of this directory is running (or it runs with ' ..
                  'attach.on=false, or has not reached its first step yet)', dir)
  end
  if e == channel.ECONNREFUSED then
    return format('nothing serves %s: the run that made it has ended (the file is left over; the next run of ' ..
                  'this directory replaces it)', path)
  end
  return 'cannot connect: ' .. tostring(msg)
end

return function(...)
  local args = { ... }
  if args[1] == '-h' or args[1] == '--help' then io.write(USAGE); return 0 end
  if #args ~= 1 then err(USAGE); return 2 end
  local dir = args[1]:gsub('/+$', '')
  if not require('empo.io.fs').is_dir(dir) then err(format('empo attach: %s is not a directory\n', dir)); return 1 end
  local path = dir .. '/attach.sock'
  local conn, msg, e = channel.connect(path)
  if not conn then err('empo attach: ' .. unreachable(dir, path, e, msg) .. '\n'); return 1 end

  local interactive = ffi.C.isatty(0) ~= 0
  local pending = {}                  -- messages that came while waiting for another
  local next_id, ended = 0, nil

  -- Shows a message from the run; returns 'done' or 'bye' when it ends a wait.
  local function show(m)
    if m.kind == 'out' or m.kind == 'note' then out(m.text)
    elseif m.kind == 'hello' then if interactive then out(m.text) end
    elseif m.kind == 'error' then err(m.text)
    elseif m.kind == 'bye' then ended = m.text; err('empo attach: ' .. m.text); return 'bye'
    elseif m.kind == 'done' then return 'done' end
  end

  -- Waits for one message of `kind` (or the run's end); others are shown.
  local function wait_for(kind, o)
    o = o or {}
    local waited, said = 0, false
    while true do
      for _, m in ipairs(pending) do if show(m) == 'bye' then pending = {}; return nil end end
      pending = {}
      for _, m in ipairs(conn:receive()) do
        if m.kind == kind and (not o.match or o.match(m)) then return m end
        if show(m) == 'bye' then return nil end
      end
      if conn.closed then ended = ended or 'the run closed the connection\n'; return nil end
      if o.timeout and waited >= o.timeout then return nil end
      conn:wait(0.25)
      waited = waited + 0.25
      if o.patience and waited >= o.patience and not said then
        said = true
        err(o.patience_note)
      end
      if o.cancel and repl.take_interrupt() then
        conn:send('cancel', '')
        err('\n(cancelled, unless the run has started the chunk)\n')
      end
    end
  end

  local function complete(text)
    if ended then return {} end
    next_id = next_id + 1
    local id = tostring(next_id)
    conn:send('complete', id .. '\n' .. text)
    local m = wait_for('completions', { timeout = 0.3, match = function(x) return x.text:match('^(%d+)\n') == id end })
    if not m then return {} end
    local list = {}
    for name in m.text:gmatch('\n([^\n]+)') do list[#list + 1] = name end
    return list
  end

  repl.sigint_mode(1)
  local hello = wait_for('hello', { patience = 0.5, cancel = false,
                                    patience_note = '(connected; the run answers when its step in progress ends)\n' })
  if not hello then err('empo attach: ' .. (ended or 'the run went away\n')); return 1 end
  if interactive then out(hello.text) end
  local read, close = repl.reader(interactive, complete)
  local name = dir:match('[^/]+$')
  local buffer
  while not ended do
    local line = read(buffer and '>> ' or ('attach:' .. name .. '> '))
    if repl.take_interrupt() then
      if interactive then out('^C\n') end
      buffer, line = nil, ''
    elseif line == nil then
      if interactive then out('\n') end
      break
    end
    if buffer == nil and (line == 'exit' or line == 'quit') then break end
    local src = buffer and (buffer .. '\n' .. line) or line
    if src:find('%S') then
      local _, why = repl.compile(src)
      if why == 'incomplete' then
        buffer = src
      else
        buffer = nil
        if not conn:send('run', src) then ended = 'the run closed the connection\n'; break end
        wait_for('done', { patience = 1, cancel = true,
                           patience_note = '(the run is in a step; the chunk runs when it ends)\n' })
      end
    end
  end
  close()
  repl.sigint_mode(0)
  conn:close()
  return 0
end
