-- cli.plot — the `empo plot` command: the curves of one or more runs
-- (their metrics.jsonl), overlaid, as one self-contained HTML page
-- (empo.run.plot). Part of the command, not of the library.
--
--     empo plot runs/math runs/random_reward out=compare.html
local empo = require 'empo'
local plot = require 'empo.run.plot'

local USAGE = [[
usage: empo plot RUN_DIR... [out=FILE.html]

Draws the metrics of each run directory (RUN_DIR/metrics.jsonl, as
`empo run RECIPE` writes it) against the step, the runs overlaid, into one
HTML page of inline SVG charts: FILE.html, or RUN_DIR/plot.html for the
first run. Open it in any browser.
]]

return function(...)
  local dirs, out = {}, nil
  for _, a in ipairs({ ... }) do
    local v = a:match('^out=(.*)$')
    if v then out = v else dirs[#dirs + 1] = a end
  end
  if #dirs == 0 or dirs[1] == '-h' or dirs[1] == '--help' then
    io.stderr:write(USAGE)
    return #dirs == 0 and 2 or 0
  end
  local runs = {}
  for _, d in ipairs(dirs) do
    local path = d:gsub('/+$', '') .. '/metrics.jsonl'
    local ok, records, torn = pcall(empo.logger.read_metrics, path)
    if not ok then io.stderr:write('empo plot: ', tostring(records), '\n'); return 1 end
    if torn then io.stderr:write(string.format('empo plot: %s:%d is a torn line (a write cut off); left out\n', path, torn)) end
    if #records == 0 then io.stderr:write('empo plot: ', path, ' holds no step\n'); return 1 end
    runs[#runs + 1] = { name = d:gsub('/+$', ''):match('[^/]+$'), records = records }
  end
  out = out or (dirs[1]:gsub('/+$', '') .. '/plot.html')
  local names = {}
  for i, r in ipairs(runs) do names[i] = r.name end
  local ok, err = empo.fs.write_atomic(out, plot.page(runs, 'empo: ' .. table.concat(names, ' vs ')))
  if not ok then io.stderr:write('empo plot: ', tostring(err), '\n'); return 1 end
  print(out)
  return 0
end
