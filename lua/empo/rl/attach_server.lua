-- empo.rl.attach_server — the run's end of `empo attach runs/<name>`: a
-- Unix socket in the run directory (runs/<name>/attach.sock, mode 0600,
-- empo.run.channel) that the trainer serves between steps (Trainer:run,
-- through Trainer:between_steps), never during one. Each client gets its
-- own session (empo.rl.attach_session): its chunks run in the trainer's
-- Lua state with the trainer as `t`, printing goes back to it, an error
-- is reported to it and never stops the run. Several clients may attach
-- at once; one that disconnects, even mid-chunk, leaves the run as it
-- was. With nobody attached, serving costs one poll of the socket a step.
--
-- While t:pause() holds, the trainer keeps serving (and answers a stop
-- signal) until a client calls t:resume() (or t:stop()).
local channel = require 'empo.run.channel'
local session_mod = require 'empo.rl.attach_session'
local console = require 'empo.run.console'

local format, ipairs, tostring, select = string.format, ipairs, tostring, select

local M = {}

local Server = {}
Server.__index = Server

local function say(msg) require('empo.run.log').say('empo: ' .. msg) end

-- Opens the socket of trainer's run directory; nil (and a line on
-- stderr) when it cannot: the run goes on without attach.
function M.open(trainer)
  local path = trainer.run_path .. '/attach.sock'
  local srv, how = channel.listen(path)
  if not srv then
    say(format('attach is off for this run: %s', tostring(how)))
    return nil
  end
  if how then say(format('%s was left by a run that ended without closing it; replaced', path)) end
  return setmetatable({ srv = srv, clients = {}, served = 0, path = path }, Server)
end

local function greeting(trainer, n)
  return format('attached to run %s (pid %d) after step %d of %d. `t` is the trainer: t.last, t.history, ' ..
                't.recipe.filter = ..., t.recipe.optim.lr = ...; t:pause() t:resume() t:save() t:stop(). Chunks run ' ..
                'between steps (a chunk may run %g s). Ctrl-D detaches.%s\n',
                trainer.recipe.name, channel.pid(),
                trainer.step_count, trainer.recipe.steps, trainer.recipe.attach.seconds,
                n > 1 and format(' (%d clients are attached)', n) or '')
end

local function shown_values(n, ...)
  local out = {}
  for i = 1, n do out[i] = console.show((select(i, ...))) end
  return table.concat(out, '\t') .. '\n'
end

-- One client's messages that arrived whole, in order; a run followed by
-- a cancel in the same batch is skipped.
local function handle(self, trainer, c, msgs)
  for i, m in ipairs(msgs) do
    if m.kind == 'run' then
      local cancelled = false
      for j = i + 1, #msgs do if msgs[j].kind == 'cancel' then cancelled = true end end
      if cancelled then
        c.conn:send('done', 'cancelled')
      else
        self.served = self.served + 1
        local function pack(...) return select('#', ...), ... end
        local function reply(n, ok, ...)
          if ok then
            if n > 1 then c.conn:send('out', shown_values(n - 1, ...)) end
          else
            c.conn:send('error', tostring((...)) .. '\n')
          end
        end
        reply(pack(c.session:run(m.text)))
        c.conn:send('done', format('step %d', trainer.step_count))
      end
    elseif m.kind == 'complete' then
      local id, text = m.text:match('^(%d+)\n(.*)$')
      local ok, list = pcall(c.session.complete, c.session, text or '')
      c.conn:send('completions', (id or '0') .. '\n' .. (ok and table.concat(list, '\n') or ''))
    elseif m.kind ~= 'cancel' then
      c.conn:send('error', format("unknown message '%s' (is this an empo attach client?)\n", m.kind))
    end
  end
end

-- Accepts the waiting clients and runs what they sent.
function Server:poll(trainer)
  while true do
    local conn = self.srv:accept()
    if not conn then break end
    local c = { conn = conn }
    c.session = session_mod.new(trainer, { limit = trainer.recipe.attach.seconds,
                                           print = function(text) conn:send('out', text) end })
    self.clients[#self.clients + 1] = c
    conn:send('hello', greeting(trainer, #self.clients))
  end
  local still = {}
  for _, c in ipairs(self.clients) do
    local msgs = c.conn:receive()
    handle(self, trainer, c, msgs)
    if not c.conn.closed then still[#still + 1] = c end
  end
  self.clients = still
end

-- Between steps: the clients served; while the run is paused, again and
-- again (a stop signal ends the pause). After a chunk the run waits
-- LINGER seconds for the next one, so that a client's chunks typed or
-- piped one after another do not each wait for a step.
local LINGER = 0.3
function Server:serve(trainer)
  local served = self.served
  self:poll(trainer)
  while self.served > served and #self.clients > 0 and not trainer.paused do
    served = self.served
    local conns = {}
    for i, c in ipairs(self.clients) do conns[i] = c.conn end
    if not self.srv:wait(conns, LINGER) then break end
    self:poll(trainer)
  end
  if trainer.paused then
    say(format('paused after step %d by empo attach; t:resume() from an attached client continues', trainer.step_count))
  end
  while trainer.paused do
    if require('empo.run.stop').requested() then trainer.paused = false; break end
    local conns = {}
    for i, c in ipairs(self.clients) do conns[i] = c.conn end
    self.srv:wait(conns, 0.2)
    self:poll(trainer)
  end
end

-- Says goodbye to the clients and removes the socket.
function Server:close(why)
  for _, c in ipairs(self.clients) do
    c.conn:send('bye', (why or 'the run ended') .. '\n')
    c.conn:close()
  end
  self.clients = {}
  self.srv:close()
end

return M
