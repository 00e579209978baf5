-- tests/tensor/test_public_names.lua — every public empo.X is also
-- `require 'empo.X'` (the same table), in a fresh state too, so both
-- spellings work; and empo.log is the op while empo.logger is the logger
-- (the old empo.log.progress still works, saying the new name once).
local check = require 'check'
local empo = require 'empo'
local c = check.new('test_public_names')

local src = os.getenv('EMPO_SOURCE_DIR') or '.'
local names = {}
local ls = io.popen("ls '" .. src .. "/lua/empo'")
for entry in ls:lines() do
  local n = entry:match('^(.-)%.lua$') or entry
  if n ~= 'init' then names[#names + 1] = n end
end
ls:close()
c.ok(#names >= 20, 'public names found (' .. #names .. ')')
for _, n in ipairs(names) do
  if n ~= 'log' and n ~= 'tensor' and n ~= 'optim' and n ~= 'generate' and n ~= 'io' and n ~= 'text' and n ~= 'run'
     and n ~= 'world' then
    c.ok(require('empo.' .. n) == empo[n], "require 'empo." .. n .. "' is empo." .. n)
  end
end
c.ok(require('empo.log') == empo.logger, "require 'empo.log' is the logger (its old path)")
c.eq(empo.log(empo.tensor({ 1 })):item(), 0, 'empo.log(x) is the elementwise op')
c.eq(empo.logger.duration(75), '1m15s', 'empo.logger is the run logger')

-- a fresh process: require 'empo.reward' first, without require 'empo'
local binary = os.getenv('EMPO_BINARY') or 'empo'
local p = io.popen(string.format("'%s' -e \"local r = require('empo.reward') print(type(r.cluster_share))\" 2>&1", binary))
local out = p:read('*a')
p:close()
c.ok(out:find('table', 1, true) or out:find('function', 1, true), "require 'empo.reward' first, in a fresh state: " .. out)
p = io.popen(string.format("'%s' -e \"print(empo.log.duration(5)) print(empo.log.duration(6))\" 2>&1", binary))
out = p:read('*a')
p:close()
local _, said = out:gsub('is now empo.logger.duration', '')
c.ok(out:find('5s', 1, true) and said == 1, 'the old empo.log.duration works, said once: ' .. out)
c.done()
