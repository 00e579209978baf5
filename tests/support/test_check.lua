-- tests/support/test_check.lua — the test harness itself can fail: same()
-- compares named fields as well as the array part, and each check reports
-- a failure (counted, not raised).
local check = require 'check'
local c = check.new('test_check')

c.ok(not check.same({ a = 1 }, { a = 2 }), 'a named field that differs')
c.ok(not check.same({ a = 1 }, { a = 1, b = 2 }), 'a field only on the right')
c.ok(not check.same({ a = 1, b = 2 }, { a = 1 }), 'a field only on the left')
c.ok(not check.same({ 1, 2, a = 1 }, { 1, 2 }), 'an array with a named field more')
c.ok(not check.same({ 1, { b = 2 } }, { 1, { b = 3 } }), 'nested named fields')
c.ok(check.same({ 1, { b = 2 }, c = 'x' }, { 1, { b = 2 }, c = 'x' }), 'equal tables')
c.ok(check.same({ x = 1.0 }, { x = 1.0 + 1e-9 }, 1e-6), 'numbers within tol')
c.ok(not check.same({ x = 1 }, { x = '1' }), 'a number is not its text')
c.ok(check.same(0 / 0, 0 / 0), 'NaN equals NaN (for results that must be NaN)')
c.ok(check.same(math.huge, math.huge) and not check.same(math.huge, -math.huge), 'infinities by sign')

-- a failing check is counted and the run goes on
local inner = check.new('inner')
local stderr = io.stderr
io.stderr = io.open('/dev/null', 'w')
local r1 = inner.eq({ step = '7' }, { step = 7 }, 'a string 7 is not 7')
local r2 = inner.ok(false, 'false fails')
local r3 = inner.raises(function() end, 'anything')
io.stderr:close()
io.stderr = stderr
c.eq({ r1, r2, r3 }, { false, false, nil }, 'each failing check returns a false value')
c.eq(inner.failed, 3, 'and is counted')

c.done()
