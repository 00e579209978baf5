-- tests/run/test_attach.lua — `empo attach` against real background runs
-- of a tiny model: a client pauses the run at a step it reads, changes the
-- learning rate (a plain value) and the filter (a Lua function it
-- defined), resumes and detaches; the next step's record notes the
-- changes and uses them; a run resumed from a checkpoint before the change
-- replays it and ends with the uninterrupted run's metrics and weights.
-- Then hostile clients: a syntax error, a loop that never ends (the time
-- limit stops the chunk), a client killed mid-chunk, two clients at once,
-- a socket file left by a crashed run, a directory nobody runs, a field
-- that cannot change; the run goes on through all of them. And t:stop().
local check = require 'check'
local empo = require 'empo'
local channel = require 'empo.run.channel'
local c = check.new('test_attach')

local binary = os.getenv('EMPO_BINARY') or 'empo'
local dir = check.tmpdir()
check.tiny_world(dir, 8)
local STEPS = 10
assert(empo.fs.write_atomic(dir .. '/recipe.lua', string.format([[
local empo = require 'empo'
return empo.recipe{ out = %q, model = %q, data = %q, sample = { n = 4, max_new_tokens = 6 },
  prompts_per_step = 2, steps = %d, save_every = 1, keep = 100, attach = { seconds = 1 },
  optim = { lr = 1e-3 },
  reward = function(g)            -- slow enough for a client to attach before the run ends
    local t = os.clock() while os.clock() - t < 0.05 do end
    local r = {} for i, s in ipairs(g.completions) do r[i] = #s %% 3 end return r
  end }
]], dir .. '/runs', dir .. '/model', dir .. '/q.jsonl', STEPS)))

local sh = check.sh
local function start(name, extra)
  local p = io.popen(string.format("'%s' run '%s' name=%s %s > '%s/%s.log' 2>&1 & echo $!", binary, dir .. '/recipe.lua',
                                   name, extra or '', dir, name))
  local pid = p:read('*l')
  p:close()
  return pid
end
local function wait_exit(pid)
  os.execute(string.format('while kill -0 %s 2>/dev/null; do sleep 0.05; done', pid))
end
local function log_of(name) return empo.fs.read_text(dir .. '/' .. name .. '.log') or '' end

-- A raw client: connects once the socket is there, returns the connection and the greeting.
local function connect(name, tries)
  local path = dir .. '/runs/' .. name .. '/attach.sock'
  for _ = 1, tries or 400 do
    local conn = channel.connect(path)
    if conn then
      for _ = 1, 400 do
        for _, m in ipairs(conn:receive()) do if m.kind == 'hello' then return conn, m.text end end
        conn:wait(0.05)
      end
      return conn, nil
    end
    os.execute('sleep 0.05')
  end
end
-- Sends a chunk; returns what came back (out and error text) once it is done.
local function ask(conn, src)
  conn:send('run', src)
  local out, err = {}, {}
  for _ = 1, 600 do
    for _, m in ipairs(conn:receive()) do
      if m.kind == 'out' then out[#out + 1] = m.text
      elseif m.kind == 'error' then err[#err + 1] = m.text
      elseif m.kind == 'done' or m.kind == 'bye' then return table.concat(out), table.concat(err), m.kind end
    end
    if conn.closed then return table.concat(out), table.concat(err), 'closed' end
    conn:wait(0.05)
  end
  return table.concat(out), table.concat(err), 'timeout'
end

-- ---- the change, live ----
local pid = start('live')
local conn, hello = connect('live')
c.ok(conn and hello and hello:find('attached to run live', 1, true), 'a client attaches and is greeted')
local mode = io.popen("stat -c %a '" .. dir .. "/runs/live/attach.sock'"):read('*l')
c.eq(mode, '600', 'the socket is its owner\'s only (mode 0600)')
local at
for _ = 1, 200 do                         -- pause at a step >= 2 (so a checkpoint before it exists)
  local out = ask(conn, 'if t.step_count >= 2 then t:pause() end; return t.step_count, t.paused')
  local s, paused = out:match('^(%d+)\t(%a+)')
  if paused == 'true' then at = tonumber(s); break end
end
c.ok(at and at >= 2 and at < STEPS, 'the client paused the run after a step it read: ' .. tostring(at))
local _, e1 = ask(conn, 't.recipe.optim.lr = 2e-3')
local _, e2 = ask(conn, 'odd = function(g) return #g.completions[1] % 2 == 1 end')
local _, e3 = ask(conn, 't.recipe.filter = odd')
c.ok(e1 == '' and e2 == '' and e3 == '', 'the changes are accepted: ' .. e1 .. e2 .. e3)
local out = ask(conn, 'return t.step_count')
c.eq(tonumber(out), at, 'paused: no step ran meanwhile')
local _, err = ask(conn, 't.recipe.sample.n = 16')
c.ok(err:find('sample.n cannot change during a run', 1, true), 'a field that cannot change is refused by name: ' .. err)
_, err = ask(conn, 't.recipe.optim.lr = -1')
c.ok(err:find('optim.lr must be a finite number >= 0, got -1', 1, true), 'a bad value is refused as the recipe would: ' .. err)
_, err = ask(conn, 't.recipe.reward = function(g) return g.nothing.here end')
c.ok(err:find("reward = function", 1, true) and err:find("fails on the last step's first group", 1, true),
     'a piece that fails on the last step\'s group is refused before it can fail the run: ' .. err)
_, err = ask(conn, 't.recipe.filtr = odd')
c.ok(err:find("unknown setting 'filtr'", 1, true) and err:find("did you mean 'filter'", 1, true),
     'a misspelt field is refused with the closest name: ' .. err)
ask(conn, 't:resume()')
conn:close()
wait_exit(pid)
local live_log = log_of('live')
c.ok(live_log:find(string.format('after step %d: optim.lr = 0.002 (empo attach)', at), 1, true),
     'the run says the change on its stderr')
local recs = empo.logger.read_metrics(dir .. '/runs/live/metrics.jsonl')
c.eq(#recs, STEPS, 'the run finished every step')
local noted = recs[at + 1] and recs[at + 1].changes
c.ok(type(noted) == 'table' and noted[1] == 'optim.lr = 0.002' and noted[2]:find('^filter = function'),
     'the record of the next step notes both changes')
c.ok(recs[at].changes == nil, 'and the step before has none')
c.ok(math.abs(recs[at].lr - 1e-3) < 1e-12 and math.abs(recs[at + 1].lr - 2e-3) < 1e-12, 'the learning rate changes at that step')
local saved = empo.json.read_file(dir .. '/runs/live/recipe.json')
c.ok(#saved.changes == 2 and saved.changes[1].after_step == at and saved.changes[1].value == 2e-3 and
     type(saved.changes[2].lua) == 'table' and #saved.changes[2].lua == 3 and saved.changes[2].lua[2]:find('^odd = function'),
     'recipe.json keeps the changes (the Lua one as the chunks that made it)')

-- ---- resumed from a checkpoint before the change: replayed, the same run ----
os.execute(string.format("cp -r '%s/runs/live' '%s/runs/again'", dir, dir))
local back = at - 1
for s = back + 1, STEPS do empo.fs.remove_tree(string.format('%s/runs/again/checkpoint-%d', dir, s)) end
empo.fs.remove_tree(dir .. '/runs/again/model')
assert(empo.fs.write_atomic(dir .. '/runs/again/latest', 'checkpoint-' .. back .. '\n'))
local rout, rrc = sh(string.format("'%s' run '%s' name=again resume=true", binary, dir .. '/recipe.lua'))
c.eq(rrc, 0, 'the resumed run finishes')
if rrc ~= 0 then io.stderr:write(rout, '\n') end
local timing = { seconds_sample = true, seconds_update = true, sample_tokens_per_s = true, peak_rss_gb = true }
local again = empo.logger.read_metrics(dir .. '/runs/again/metrics.jsonl')
local same = #again == #recs
for i = 1, math.min(#again, #recs) do
  for k, v in pairs(recs[i]) do
    if not timing[k] and empo.json.encode(v) ~= empo.json.encode(again[i][k]) then
      same = false
      io.stderr:write(string.format('step %d %s: %s against %s\n', i, k, empo.json.encode(v), empo.json.encode(again[i][k])))
    end
  end
end
c.ok(same, string.format('resumed from step %d, the changes replay at step %d: every record as the live run\'s', back, at + 1))
local wa = empo.safetensors.load(dir .. '/runs/live/checkpoint-' .. STEPS .. '/model.safetensors')
local wb = empo.safetensors.load(dir .. '/runs/again/checkpoint-' .. STEPS .. '/model.safetensors')
local worst = 0
for k, t in pairs(wa) do worst = math.max(worst, (t - wb[k]):abs():max():item()) end
c.eq(worst, 0, 'and the same weights, bit for bit')

-- ---- hostile clients: the run goes on ----
local aout, arc = sh(string.format("'%s' attach '%s/runs' < /dev/null", binary, dir))
c.ok(arc == 1 and aout:find('no attach.sock', 1, true), 'a directory nobody runs is said so: ' .. aout)
pid = start('hostile', 'steps=400')
local a1, h1 = connect('hostile')
local a2, h2 = connect('hostile')
c.ok(a1 and a2 and h1 and h2 and h2:find('2 clients are attached', 1, true), 'two clients attach at once')
local o, e = ask(a1, 'return (')
c.ok(e:find("unexpected symbol", 1, true) or e:find('incomplete', 1, true), 'a syntax error is reported: ' .. e)
o, e = ask(a1, 'local n = 0 while true do n = n + 1 end')
c.ok(e:find('stopped after 1 s', 1, true), 'a loop that never ends is stopped by the time limit: ' .. e)
o, e = ask(a2, 'error("boom")')
c.ok(e:find('boom', 1, true), 'an error in a chunk is reported to its client')
o = ask(a2, 'x = 41; return x + 1')
c.eq(o, '42\n', 'the second client\'s session works, with its own globals')
o = ask(a1, 'return x')
c.eq(o, 'nil\n', 'the first client does not see the second\'s globals')
a1:send('complete', '7\nt.rec')
local comp
for _ = 1, 100 do
  for _, m in ipairs(a1:receive()) do if m.kind == 'completions' then comp = m.text end end
  if comp then break end
  a1:wait(0.05)
end
c.eq(comp, '7\nt.recipe', 'tab completion asks the run: t.rec -> t.recipe')
o = ask(a1, 'return t:save()')
c.ok(o:find('checkpoint%-%d+') and empo.fs.exists(o:gsub('%s+$', '') .. '/model.safetensors'), 't:save() writes a checkpoint now: ' .. o)
o, e = ask(a1, 't:step()')
c.ok(e:find('belongs to the run itself', 1, true), 'a chunk cannot step the run: ' .. e)
a2:send('run', 'local t0 = os.clock() while os.clock() - t0 < 0.5 do end print("late")')
a2:close()                                        -- gone before (or while) its chunk runs
local killer = io.popen(string.format("(printf 'local t0 = os.clock() while os.clock() - t0 < 0.7 do end\\n'; sleep 5) | " ..
                                      "'%s' attach '%s/runs/hostile' > /dev/null 2>&1 & p=$!; sleep 0.4; kill -9 $p; echo killed",
                                      binary, dir))
killer:read('*a'); killer:close()
a1:send('garbage', '')
local a3 = connect('hostile')
local claim = 'run 99999999999\n'                 -- a length no chunk has: the connection is closed
require('ffi').C.send(a3.fd, claim, #claim, 0x4000)
o = ask(a1, 'return t.step_count > 0')
c.eq(o, 'true\n', 'after a killed client, a vanished one and a bad message, the run still serves')
local pipe_out = sh(string.format("printf 'print(\"from a pipe\", 1 + 1)\\nreturn t.recipe.name\\n' | '%s' attach '%s/runs/hostile'",
                                  binary, dir))
c.ok(pipe_out:find('from a pipe\t2', 1, true) and pipe_out:find('hostile', 1, true), 'empo attach driven through a pipe: ' .. pipe_out)
a1:close()
os.execute('kill -9 ' .. pid)                     -- a crash: the socket file stays
wait_exit(pid)
local function is_socket(path) return os.execute("test -S '" .. path .. "'") == 0 end
c.ok(is_socket(dir .. '/runs/hostile/attach.sock'), 'a killed run leaves its socket file')
aout, arc = sh(string.format("'%s' attach '%s/runs/hostile' < /dev/null", binary, dir))
c.ok(arc == 1 and aout:find('nothing serves', 1, true), 'attaching to a left-over socket says the run has ended: ' .. aout)
pid = start('hostile', 'steps=400 resume=true')
a1 = connect('hostile')
c.ok(a1 ~= nil, 'the resumed run serves a new socket')
o, e = ask(a1, 't:stop()')
wait_exit(pid)
local hlog = log_of('hostile')
c.ok(hlog:find('was left by a run that ended without closing it; replaced', 1, true), 'the run replaced the left-over socket')
c.ok(hlog:find('stopped by t:stop() from empo attach', 1, true), 't:stop() stops the run with a checkpoint: ' .. hlog:sub(-300))
local hrecs = empo.logger.read_metrics(dir .. '/runs/hostile/metrics.jsonl')
c.ok(#hrecs < 400 and empo.fs.exists(string.format('%s/runs/hostile/checkpoint-%d/model.safetensors', dir, #hrecs)),
     'the last step is checkpointed')
c.ok(not is_socket(dir .. '/runs/hostile/attach.sock'), 'the socket is removed when the run ends')

empo.fs.remove_tree(dir)
c.done()
