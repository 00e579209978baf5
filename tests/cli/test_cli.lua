-- tests/cli/test_cli.lua — the `empo` command as a user runs it: --version,
-- --help, -e, scripts with arguments (the arg table and ...), require of
-- modules beside the script, exit codes and file:line error messages, and
-- the REPL driven through a pipe. Spawns $EMPO_BINARY (else arg[-1]).
local check = require 'check'
local c = check.new('test_cli')

local empo_bin = os.getenv('EMPO_BINARY') or arg[-1]

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function slurp(path)
  local f = io.open(path, 'rb')
  if not f then return '' end
  local s = f:read('*a')
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, 'wb'))
  f:write(s)
  f:close()
end

-- Run a shell command line; returns exit code, stdout, stderr.
local function sh(cmdline, stdin)
  local errf = os.tmpname()
  local inf
  local full = cmdline
  if stdin then
    inf = os.tmpname()
    spit(inf, stdin)
    full = full .. ' <' .. inf
  else
    full = full .. ' </dev/null'
  end
  local p = assert(io.popen('(' .. full .. ') 2>' .. errf .. '; echo "__rc=$?"'))
  local out = p:read('*a')
  p:close()
  local rc = tonumber(out:match('__rc=(%d+)%s*$'))
  out = out:gsub('__rc=%d+%s*$', '')
  local err = slurp(errf)
  os.remove(errf)
  if inf then os.remove(inf) end
  return rc, out, err
end

local function empo(args, stdin) return sh(q(empo_bin) .. ' ' .. args, stdin) end

-- a scratch directory with scripts and modules beside them
local dir = os.tmpname()
os.remove(dir)
assert(os.execute('mkdir -p ' .. q(dir .. '/pkg')) == 0 or true)
spit(dir .. '/helper.lua', "return { answer = 42 }\n")
spit(dir .. '/pkg/init.lua', "return { name = 'pkg' }\n")
spit(dir .. '/args.lua', [[
local helper = require 'helper'
local pkg = require 'pkg'
print('arg0=' .. arg[0])
print('arg1=' .. tostring(arg[1]), 'arg2=' .. tostring(arg[2]), 'n=' .. #arg)
print('varargs=' .. select('#', ...), ...)
print('argm1=' .. tostring(arg[-1] ~= nil), 'helper=' .. helper.answer, 'pkg=' .. pkg.name)
]])
spit(dir .. '/boom.lua', "local x = 1\nlocal function f()\n  error('boom here')\nend\nf()\n")
spit(dir .. '/syntax.lua', "local x = = 2\n")
spit(dir .. '/exit3.lua', "os.exit(3)\n")
spit(dir .. '/tensor_err.lua', "local empo = require 'empo'\nlocal a = empo.randn(2, 3)\nlocal b = a:matmul(a)\n")
spit(dir .. '/uses_empo.lua', "local empo = require 'empo'\nprint((empo.ones(2) * 3):sum():item())\n")

-- ---- --version, --help ----
local rc, out, err = empo('--version')
c.eq(rc, 0, '--version exits 0')
c.ok(out:match('^empo %d+%.%d+%.%d+ %(LuaJIT [^)]+%)\n$') ~= nil, '--version prints "empo X.Y.Z (LuaJIT ...)": ' .. out)
rc, out = empo('--help')
c.eq(rc, 0, '--help exits 0')
c.ok(out:find('empo run FILE.lua', 1, true) and out:find('empo repl', 1, true) and out:find('-e CODE', 1, true),
     '--help lists the commands')
rc, out, err = empo('--bogus')
c.eq(rc, 2, 'an unknown option exits 2')
c.ok(err:find("unknown option '--bogus'", 1, true) ~= nil, 'and says which: ' .. err)
rc, out, err = empo('run')
c.eq(rc, 2, 'run without a script exits 2')

-- ---- -e ----
rc, out = empo("-e 'print(1 + 1)'")
c.eq({ rc, out }, { 0, '2\n' }, '-e runs code')
rc, out = empo("-e 'print(select(\"#\", ...), arg[0], arg[1], arg[2], ...)' x 'y z'")
c.eq(out, '2\t-e\tx\ty z\tx\ty z\n', '-e passes arguments as ... and arg')
rc, out = empo("-e 'print((empo.ones(2) + 1):sum():item())'")
c.eq({ rc, out }, { 0, '4\n' }, '-e has a lazily loaded empo global')
rc, out, err = empo("-e 'error(\"bad thing\")'")
c.eq(rc, 1, '-e error exits 1')
c.ok(err:find('bad thing', 1, true) and err:find('stack traceback', 1, true), '-e error message and traceback')
rc, out, err = empo("-e 'x = = 1'")
c.eq(rc, 1, '-e syntax error exits 1')

-- ---- scripts ----
local want_args = 'arg0=' .. dir .. '/args.lua\narg1=a\targ2=b=c\tn=2\nvarargs=2\ta\tb=c\nargm1=true\thelper=42\tpkg=pkg\n'
rc, out, err = empo('run ' .. q(dir .. '/args.lua') .. ' a b=c')
c.eq(rc, 0, 'run exits 0: ' .. err)
c.eq(out, want_args, 'run: arg table, varargs, require beside the script')
rc, out = empo(q(dir .. '/args.lua') .. ' a b=c')
c.eq(out, want_args, 'empo FILE is the same as empo run FILE')
rc, out = sh('cd / && ' .. q(empo_bin) .. ' run ' .. q(dir .. '/args.lua') .. ' a b=c')
c.eq(out, want_args, 'modules beside the script are found from any working directory')
rc, out, err = empo(q(dir .. '/uses_empo.lua'))
c.eq({ rc, out }, { 0, '6\n' }, 'a script requiring empo: ' .. err)

rc, out, err = empo('run ' .. q(dir .. '/boom.lua'))
c.eq(rc, 1, 'a runtime error exits 1')
c.ok(err:find('boom.lua:3: boom here', 1, true) ~= nil, 'file:line: message on stderr: ' .. err)
c.ok(err:find('stack traceback:', 1, true) and err:find('boom.lua:5', 1, true), 'with a traceback')
rc, out, err = empo('run ' .. q(dir .. '/syntax.lua'))
c.eq(rc, 1, 'a syntax error exits 1')
c.ok(err:find('syntax.lua:1:', 1, true) ~= nil, 'syntax error names file:line: ' .. err)
rc, out, err = empo('run ' .. q(dir .. '/missing.lua'))
c.eq(rc, 1, 'a missing script exits 1')
c.ok(err:find('cannot open', 1, true) and err:find('missing.lua', 1, true) and err:find('No such file', 1, true),
     'a missing script says so: ' .. err)
rc, out, err = empo('run ' .. q(dir))
c.eq(rc, 1, 'a directory exits 1')
c.ok(err:find('directory', 1, true) ~= nil, 'a directory says so: ' .. err)
rc = empo('run ' .. q(dir .. '/exit3.lua'))
c.eq(rc, 3, 'os.exit(n) sets the exit code')
rc, out, err = empo('run ' .. q(dir .. '/tensor_err.lua'))
c.eq(rc, 1, 'a tensor error exits 1')
c.ok(err:find('tensor_err.lua:3: matmul', 1, true) ~= nil, 'a tensor error names the line and op: ' .. err)
spit(dir .. '/leaks.lua', [[
local empo = require 'empo'
G = empo.randn(3, 3)                      -- a global, alive at exit
local views = {}
for i = 1, 100 do views[i] = G[1] + i end
local x = empo.ones(2, { requires_grad = true })
Y = (x * x):sum()                         -- a graph alive at exit
local f = empo.ones(2); f:free()
CYCLE = { t = empo.zeros(2) }; CYCLE.self = CYCLE
]])
rc, out, err = sh('EMPO_LEAK_CHECK=1 ' .. q(empo_bin) .. ' run ' .. q(dir .. '/leaks.lua'))
c.eq(rc, 0, 'closing the Lua state releases every tensor: ' .. err)
rc, out, err = sh('EMPO_LEAK_CHECK=1 ' .. q(empo_bin) .. ' -e ' ..
                  q('local C = empo.ffi.C; local o = require("ffi").new("empo_tensor*[1]"); ' ..
                    'C.empo_tensor_zeros(o, 0, nil, 0)'))
c.ok(rc == 1 and err:find('1 tensor(s) still alive at exit', 1, true), 'EMPO_LEAK_CHECK sees a leak: ' .. err)
rc, out = empo('- a', 'print("from stdin", ...)\n')
c.eq({ rc, out }, { 0, 'from stdin\ta\n' }, 'empo - reads the script from stdin')

-- EMPO_LUA_PATH replaces the library's search path
os.execute('mkdir -p ' .. q(dir .. '/alt/empo'))
spit(dir .. '/alt/empo/init.lua', "return { fake = 'yes' }\n")
rc, out = sh('EMPO_LUA_PATH=' .. q(dir .. '/alt/?.lua;' .. dir .. '/alt/?/init.lua') .. ' ' .. q(empo_bin) ..
             " -e 'print(require(\"empo\").fake)'")
c.eq(out, 'yes\n', 'EMPO_LUA_PATH is searched for the library')

-- ---- REPL through a pipe ----
local session = table.concat({
  'x = 40',
  'x + 2',
  'error("oops in repl")',
  'print(x)',
  'for i = 1, 2 do',
  '  print("loop", i)',
  'end',
  't = empo.randn(2, 3)',
  't:backward()',
  'empo.ones(2):sum()',
  'this is not lua',
  '{1, 2, a = "b"}',
  '"str", 3',
  'print("still alive")',
}, '\n') .. '\n'
rc, out, err = sh('EMPO_HISTORY=/dev/null ' .. q(empo_bin) .. ' repl', session)
c.eq(rc, 0, 'the REPL exits 0 at end of input: ' .. err)
c.ok(out:find('^42\n') ~= nil, 'an expression prints its value: ' .. out)
c.ok(out:find('\n40\n', 1, true) ~= nil, 'the REPL survives an error')
c.ok(out:find('loop\t1\nloop\t2\n', 1, true) ~= nil, 'multi-line chunks continue')
c.ok(out:find('2\n[empo.Tensor scalar f32]', 1, true) ~= nil, 'tensors print')
c.ok(out:find('{1, 2, a = "b"}', 1, true) ~= nil, 'tables print readably')
c.ok(out:find('str\t3\n', 1, true) ~= nil, 'several values print')
c.ok(out:find('still alive\n', 1, true) ~= nil, 'the REPL survives everything')
c.ok(err:find('oops in repl', 1, true) ~= nil, 'errors go to stderr: ' .. err)
c.ok(err:find('backward', 1, true) ~= nil, 't:backward() on a non-scalar errors usefully')
c.ok(err:find("syntax error", 1, true) or err:find("near", 1, true), 'syntax errors are reported')
rc, out = sh(q(empo_bin), 'print("bare")\n')
c.eq({ rc, out }, { 0, 'bare\n' }, 'bare empo is the REPL')
rc, out, err = sh(q(empo_bin) .. ' repl', 'for i = 1, 2 do\n')
c.ok(rc == 0 and err:find("'end' expected", 1, true), 'an unfinished chunk at end of input is reported')

-- ---- a plain luajit finds the library from the build tree (EMPO_LIB unset) ----
local src = os.getenv('EMPO_SOURCE_DIR')
local build = empo_bin:match('^(.*)/[^/]*$')
if src and build and sh('command -v luajit') == 0 then
  local path = src .. '/lua/?.lua;' .. src .. '/lua/?/init.lua;' .. build .. '/lua/?.lua;;'
  rc, out, err = sh('LUA_PATH=' .. q(path) .. ' luajit -e ' ..
                    q('local e = require "empo"; print(e.version == require("ffi").string(e.ffi.C.empo_version()), e.ffi.origin ~= "the empo executable")'))
  c.eq(out, 'true\ttrue\n', 'plain luajit loads libempo by ffi.load: ' .. err)
end

os.execute('rm -rf ' .. q(dir))
c.done()
