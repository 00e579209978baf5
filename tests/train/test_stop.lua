-- tests/train/test_stop.lua — empo.stop: inside guard, SIGTERM and SIGINT
-- are only noted; a second one gets the action from before; the handlers
-- from before return after fn, also when fn raises. (The trainer's stop
-- with a checkpoint is in tests/rl/test_recipe_run.lua.)
local check = require 'check'
local empo = require 'empo'
local ffi = require 'ffi'
local c = check.new('test_stop')

ffi.cdef [[
int raise(int sig);
typedef void (*empo_test_sighandler)(int);
empo_test_sighandler signal(int sig, empo_test_sighandler handler);
]]
local SIGINT, SIGTERM = 2, 15
local SIG_IGN = ffi.cast('empo_test_sighandler', 1)
-- "before": ignored, so a signal reaching the old action leaves us alive
ffi.C.signal(SIGTERM, SIG_IGN)
ffi.C.signal(SIGINT, SIG_IGN)

c.eq(empo.stop.requested(), nil, 'nothing requested outside a guard')
local seen = empo.stop.guard(function(a, b)
  c.eq(a + b, 3, 'guard passes its arguments')
  c.eq(empo.stop.requested(), nil, 'nothing requested yet')
  ffi.C.raise(SIGTERM)
  local first = empo.stop.requested()
  ffi.C.raise(SIGTERM)           -- the second goes to the old action (ignored here)
  return first, empo.stop.requested()
end, 1, 2)
c.eq(seen, 'SIGTERM', 'SIGTERM is noted, not fatal')
c.eq(empo.stop.requested(), nil, 'the request ends with the guard')
ffi.C.raise(SIGTERM)
c.eq(empo.stop.requested(), nil, 'after the guard the old action (ignore) is back')

local ok, err = pcall(empo.stop.guard, function() error('boom in the step', 0) end)
c.ok(not ok and tostring(err):find('boom in the step', 1, true) ~= nil, 'an error inside the guard propagates')
ffi.C.raise(SIGINT)
c.eq(empo.stop.requested(), nil, 'and the handlers from before are back after it')

empo.stop.guard(function()
  empo.stop.guard(function() ffi.C.raise(SIGINT) end)
  c.eq(empo.stop.requested(), 'SIGINT', 'a nested guard keeps the outer one armed')
end)
c.eq(empo.stop.exit_status('SIGINT'), 130, 'exit status for SIGINT')
c.eq(empo.stop.exit_status('SIGTERM'), 143, 'exit status for SIGTERM')
c.done()
