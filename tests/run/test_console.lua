-- tests/run/test_console.lua — empo.run.console, what `empo repl` and the
-- sessions of `empo attach` share: values shown as a person reads them,
-- and tab completion from a root table, through __index tables, tensors,
-- strings, and a view's __complete (the attach views of a trainer).
local check = require 'check'
local empo = require 'empo'
local console = require 'empo.run.console'
local c = check.new('test_console')
local function list(t) return table.concat(t, ' ') end

c.eq(console.show('plain'), 'plain', 'a string at the top as it is')
c.eq(console.show({ 1, 'a', x = true }), '{1, "a", x = true}', 'a table: items, then named fields')
local long = {}
for i = 1, 25 do long[i] = i end
c.ok(console.show(long):find(', %.%.%.}$') ~= nil, 'past 20 items: ...')
c.eq(console.show(nil), 'nil', 'nil')

local root = { alpha = 1, alps = 2, beta = { gamma = 3, gap = 4 } }
c.eq(list(console.candidates('al', root)), 'alpha alps', 'names of the root that start so')
c.eq(list(console.candidates('beta.ga', root)), 'beta.gamma beta.gap', 'fields through a dotted path')
c.eq(list(console.candidates('nope.x', root)), '', 'an unknown path: nothing')
local view = setmetatable({}, { __index = function() return nil end,
                                __complete = function() return { 'recipe', 'resume', 'history' } end })
c.eq(list(console.candidates('t:re', { t = view })), 't:recipe t:resume', 'a view completes through __complete')
local env = setmetatable({ t = view }, { __index = _G })
c.eq(list(console.candidates('prin', env)), 'print', 'a session\'s globals include the real ones (__index _G)')
local x = empo.zeros(2)
local methods = console.candidates('x:resh', { x = x })
c.eq(list(methods), 'x:reshape', 'a tensor completes its methods')
c.eq(list(console.candidates('s:up', { s = 'text' })), 's:upper', 'a string its string methods')
c.done()
