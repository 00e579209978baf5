-- tests/cli/test_plot.lua — empo.run.plot's page (a chart per metric that
-- some run has, one line per run, constant and single-point series, NaN
-- skipped, names escaped) and the `empo plot` command (writes the page,
-- refuses a directory without metrics). The page itself was looked at in
-- Chromium (headless screenshot) when it was written.
local check = require 'check'
local empo = require 'empo'
local plot = require 'empo.run.plot'
local c = check.new('test_plot')

local a, b = {}, {}
for s = 1, 10 do
  a[s] = { step = s, reward = s / 10, entropy = 1.2, lr = 1e-5, kl = s == 5 and 0 / 0 or s * 1e-3 }
  b[s] = { step = s, reward = 1 - s / 10, entropy = 1.0 }
end
local html = plot.page({ { name = 'empo <a&b>', records = a }, { name = 'random', records = b } }, 'test')
local charts = select(2, html:gsub('<svg ', ''))
c.eq(charts, 4, 'a chart per metric present: reward, entropy, kl, lr')
c.eq(select(2, html:gsub('<polyline', '')), 6, 'a line per run in each chart that has it')
c.ok(html:find('empo &lt;a&amp;b&gt;', 1, true) ~= nil and not html:find('<a&b>', 1, true), 'names are escaped')
c.ok(html:find('stroke-dasharray', 1, true) ~= nil, 'later runs dashed')
c.ok(not html:find('nan', 1, true) and not html:find('inf', 1, true), 'no NaN or inf reaches the page')
c.ok(html:find('1.1e-05', 1, true) ~= nil or html:find('1.05e-05', 1, true) ~= nil, 'a constant gets a band around it')
local one = plot.page({ { name = 'x', records = { { step = 3, reward = 0.5 } } } })
c.ok(one:find('<circle', 1, true) ~= nil, 'a single step is a point')
c.ok(html:find('<!DOCTYPE html>', 1, true) == 1 and not html:find('<script', 1, true), 'a self-contained page')

local binary = os.getenv('EMPO_BINARY')
if binary then
  local dir = os.tmpname()
  os.remove(dir)
  assert(empo.fs.make_dirs(dir .. '/run1'))
  local m = empo.logger.metrics(dir .. '/run1/metrics.jsonl')
  for _, r in ipairs(b) do m:write(r) end
  m:close()
  local p = io.popen(string.format("'%s' plot '%s/run1' 2>&1; echo \"rc=$?\"", binary, dir))
  local out = p:read('*a')
  p:close()
  c.ok(out:find('rc=0', 1, true) and empo.fs.exists(dir .. '/run1/plot.html'), 'empo plot writes RUN/plot.html')
  p = io.popen(string.format("'%s' plot '%s/none' 2>&1; echo \"rc=$?\"", binary, dir))
  out = p:read('*a')
  p:close()
  c.ok(out:find('rc=1', 1, true) and out:find('metrics.jsonl', 1, true), 'a directory without metrics: an error')
  empo.fs.remove_tree(dir)
end

c.done()
