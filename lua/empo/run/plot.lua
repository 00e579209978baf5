-- empo.run.plot — one self-contained HTML page of a run's curves (several
-- runs overlaid, one colour each): a chart per metric of metrics.jsonl
-- against the step, drawn as inline SVG with axes, ticks and a legend; no
-- script, no external file, so the page opens anywhere.
--
--     local html = plot.page({ { name = 'empo', records = recs1 }, { name = 'random', records = recs2 } })
--     empo.fs.write_atomic('runs/empo/plot.html', html)
--
-- Metrics drawn (those present): M.METRICS below, from the in-run test
-- accuracy to the seconds of a step's sampling. This module draws;
-- reading runs is cli.plot's job.
local format = string.format

local M = {}

M.METRICS = {
  { key = 'eval_greedy', title = 'test accuracy, greedy' }, { key = 'eval_avg', title = 'test accuracy, avg@k' },
  { key = 'eval_maj', title = 'test accuracy, maj@k' },
  { key = 'reward', title = 'reward (mean)' }, { key = 'entropy', title = 'semantic entropy (mean)' },
  { key = 'kept', title = 'groups kept' }, { key = 'majority_correct', title = 'largest cluster right (gold)' },
  { key = 'positive_correct', title = 'positive-advantage completions right (gold)' },
  { key = 'clusters', title = 'clusters per group' }, { key = 'answer_rate', title = 'answer rate' },
  { key = 'loss', title = 'policy loss' }, { key = 'clip_frac', title = 'clipped tokens' },
  { key = 'approx_kl', title = 'approx. KL (old to new)' }, { key = 'kl', title = 'KL to the reference' },
  { key = 'grad_norm', title = 'gradient norm' }, { key = 'lr', title = 'learning rate' },
  { key = 'response_length', title = 'response length (tokens)' },
  { key = 'base_nll', title = 'NLL a token under the starting model' },
  { key = 'seconds_sample', title = 'seconds a step: sampling and scoring' },
}
local COLOURS = { '#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2' }
local W, H, LEFT, RIGHT, TOP, BOTTOM = 420, 240, 58, 12, 28, 34

local function escape(s)
  return (tostring(s):gsub('[&<>"]', { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;' }))
end

-- Round tick positions covering [lo, hi].
local function ticks(lo, hi, n)
  if hi <= lo then hi = lo + 1 end
  local raw = (hi - lo) / n
  local mag = 10 ^ math.floor(math.log10(raw))
  local step = mag
  for _, m in ipairs({ 1, 2, 5, 10 }) do
    if m * mag >= raw then step = m * mag; break end
  end
  local out, v = {}, math.ceil(lo / step) * step
  while v <= hi + step * 1e-9 do
    out[#out + 1] = math.abs(v) < step * 1e-9 and 0 or v
    v = v + step
  end
  return out
end

local function label(v)
  if v == 0 then return '0' end
  local a = math.abs(v)
  if a >= 1e4 or a < 1e-3 then return format('%.1e', v) end
  return (format('%.4g', v))
end

-- One chart: the series (runs) of one metric; nil when no run has it.
local function chart(metric, runs)
  local x0, x1, y0, y1, any = math.huge, -math.huge, math.huge, -math.huge, false
  for _, run in ipairs(runs) do
    for _, r in ipairs(run.records) do
      local y = r[metric.key]
      if type(y) == 'number' and y == y and math.abs(y) ~= math.huge then
        any = true
        x0, x1 = math.min(x0, r.step), math.max(x1, r.step)
        y0, y1 = math.min(y0, y), math.max(y1, y)
      end
    end
  end
  if not any then return nil end
  if y1 == y0 then                             -- a constant: a band around it, not around 0
    local half = y0 ~= 0 and math.abs(y0) * 0.1 or 0.5
    y0, y1 = y0 - half, y1 + half
  end
  if x1 == x0 then x1 = x0 + 1 end
  local pad = (y1 - y0) * 0.05
  y0, y1 = y0 - pad, y1 + pad
  local pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
  local function X(x) return LEFT + (x - x0) / (x1 - x0) * pw end
  local function Y(y) return TOP + (1 - (y - y0) / (y1 - y0)) * ph end
  local parts = { format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">', W, H,
                         W, H),
                  format('<text x="%d" y="16" class="title">%s</text>', LEFT, escape(metric.title)),
                  format('<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>', LEFT, TOP, pw, ph) }
  for _, t in ipairs(ticks(y0, y1, 4)) do
    if t >= y0 and t <= y1 then
      parts[#parts + 1] = format('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>', LEFT, LEFT + pw, Y(t), Y(t))
      parts[#parts + 1] = format('<text x="%d" y="%.1f" class="ytick">%s</text>', LEFT - 6, Y(t) + 4, label(t))
    end
  end
  for _, t in ipairs(ticks(x0, x1, 5)) do
    if t >= x0 and t <= x1 and t % 1 == 0 then
      parts[#parts + 1] = format('<text x="%.1f" y="%d" class="xtick">%d</text>', X(t), TOP + ph + 16, t)
    end
  end
  parts[#parts + 1] = format('<text x="%d" y="%d" class="xlabel">step</text>', LEFT + pw, H - 2)
  for i, run in ipairs(runs) do
    local pts = {}
    for _, r in ipairs(run.records) do
      local y = r[metric.key]
      if type(y) == 'number' and y == y and math.abs(y) ~= math.huge then
        pts[#pts + 1] = format('%.1f,%.1f', X(r.step), Y(y))
      end
    end
    local colour = COLOURS[(i - 1) % #COLOURS + 1]
    if #pts == 1 then
      local x, y = pts[1]:match('([^,]+),(.+)')
      parts[#parts + 1] = format('<circle cx="%s" cy="%s" r="3" fill="%s"/>', x, y, colour)
    elseif #pts > 1 then
      -- later runs dashed, so that a run drawn over an equal one still shows
      parts[#parts + 1] = format('<polyline points="%s" stroke="%s" class="line"%s/>', table.concat(pts, ' '), colour,
                                 i > 1 and format(' stroke-dasharray="%d %d"', 2 + 4 * (i - 1), 3) or '')
    end
  end
  parts[#parts + 1] = '</svg>'
  return table.concat(parts, '\n')
end

local STYLE = {
  'svg text { font: 11px "DejaVu Sans", Arial, sans-serif; fill: #444; } svg .title { font-size: 13px; fill: #222; }',
  '.ytick { text-anchor: end; } .xtick { text-anchor: middle; } .xlabel { text-anchor: end; fill: #777; }',
  '.frame { fill: none; stroke: #bbb; } .grid { stroke: #eee; } .line { fill: none; stroke-width: 1.8; }',
}

-- The whole page for runs = { { name =, records = {...} }, ... }.
function M.page(runs, title)
  local legend = {}
  for i, run in ipairs(runs) do
    local n = #run.records
    legend[#legend + 1] = format('<span class="key"><span class="swatch" style="background:%s"></span>%s ' ..
                                 '<span class="steps">(%d step%s)</span></span>', COLOURS[(i - 1) % #COLOURS + 1],
                                 escape(run.name), n, n == 1 and '' or 's')
  end
  local charts = {}
  for _, m in ipairs(M.METRICS) do
    local svg = chart(m, runs)
    if svg then charts[#charts + 1] = '<div class="chart">' .. svg .. '</div>' end
  end
  return table.concat({
    '<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
    '<title>' .. escape(title or 'empo runs') .. '</title>',
    '<style>',
    'body { font: 14px/1.4 "DejaVu Sans", Arial, sans-serif; margin: 24px; color: #222; background: #fff; }',
    'h1 { font-size: 20px; margin: 0 0 8px; } .legend { margin: 0 0 16px; }',
    '.key { margin-right: 18px; white-space: nowrap; } .steps { color: #777; }',
    '.swatch { display: inline-block; width: 14px; height: 4px; margin: 0 6px 3px 0; vertical-align: middle; }',
    '.grid-of-charts { display: flex; flex-wrap: wrap; gap: 12px; } .chart { border: 1px solid #ddd; }',
    table.concat(STYLE, '\n'),
    '</style></head><body>',
    '<h1>' .. escape(title or 'empo runs') .. '</h1>',
    '<div class="legend">' .. table.concat(legend) .. '</div>',
    '<div class="grid-of-charts">' .. table.concat(charts, '\n') .. '</div>',
    '</body></html>', '',
  }, '\n')
end


-- One standalone SVG (for a page or a README): the charts of `keys`
-- (metric keys of M.METRICS) side by side, `columns` per row, with the
-- legend above them.
function M.figure(runs, keys, title, columns)
  columns = columns or 3
  local by_key = {}
  for _, m in ipairs(M.METRICS) do by_key[m.key] = m end
  local charts = {}
  for _, k in ipairs(keys) do
    local svg = by_key[k] and chart(by_key[k], runs)
    if svg then charts[#charts + 1] = svg end
  end
  local legend_h = 24 + 18 * math.ceil(#runs / 4)
  local rows = math.ceil(#charts / columns)
  local width, height = columns * (W + 8), legend_h + rows * (H + 8)
  local parts = { format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">',
                         width, height, width, height),
                  '<style>' .. table.concat(STYLE, ' ') .. '</style>',
                  format('<rect width="%d" height="%d" fill="#fff"/>', width, height),
                  format('<text x="8" y="18" class="title">%s</text>', escape(title or 'empo runs')) }
  for i, run in ipairs(runs) do
    local x, y = 8 + ((i - 1) % 4) * 260, 38 + 18 * math.floor((i - 1) / 4)
    parts[#parts + 1] = format('<rect x="%d" y="%d" width="14" height="4" fill="%s"/><text x="%d" y="%d">%s</text>', x,
                               y - 4, COLOURS[(i - 1) % #COLOURS + 1], x + 20, y, escape(run.name))
  end
  for i, svg in ipairs(charts) do
    local x, y = ((i - 1) % columns) * (W + 8), legend_h + math.floor((i - 1) / columns) * (H + 8)
    parts[#parts + 1] = (svg:gsub('^<svg ', format('<svg x="%d" y="%d" ', x, y), 1))
  end
  parts[#parts + 1] = '</svg>'
  return table.concat(parts, '\n') .. '\n'
end

return M
