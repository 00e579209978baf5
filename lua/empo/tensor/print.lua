-- empo.tensor.print — tostring(t) in the style of Torch7 (loaded by the
-- tensor type's __tostring at its first use).
--
--      0.1234 -1.5000  2.0000
--      3.0000  4.0000  5.0000
--     [empo.Tensor of size 2x3 f32]
--
-- Rows are the last dim; tensors with more than 2 dims print one matrix per
-- index of the leading dims, headed "(i,j,.,.) =". Past `threshold`
-- elements only the first and last `edge` entries of each dim are shown,
-- with "..." between. Rows wider than `linewidth` wrap (matrices in
-- "Columns a to b" blocks, as Torch7 did). Floats share one format: integers without decimals,
-- %.4f, or %.4e when the magnitudes call for it. A freed tensor prints as
-- "[empo.Tensor (freed)]" rather than raising, so the REPL can show it.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local C = E.C

local format, concat, abs, huge = string.format, table.concat, math.abs, math.huge

local M = { threshold = 1000, edge = 3, linewidth = 80 }

-- Indices shown along a dim of size n: all, or the first and last `edge`
-- with false marking the gap.
local function shown(n, elide, edge)
  local r = {}
  if elide and n > 2 * edge then
    for i = 1, edge do r[#r + 1] = i end
    r[#r + 1] = false
    for i = n - edge + 1, n do r[#r + 1] = i end
  else
    for i = 1, n do r[i] = i end
  end
  return r
end

local function num_text(v, fmt)
  if v ~= v then return 'nan' end
  if v == huge then return 'inf' end
  if v == -huge then return '-inf' end
  return format(fmt, v)
end

-- One format for every value shown.
local function choose_format(vals, is_int)
  if is_int then return '%d' end
  local maxa, integral = 0, true
  for _, v in ipairs(vals) do
    if v == v and v ~= huge and v ~= -huge then
      local a = abs(v)
      if a > maxa then maxa = a end
      if v % 1 ~= 0 then integral = false end
    end
  end
  if integral and maxa < 1e9 then return '%.0f' end
  -- %e only when %.4f would lose the large values' digits or show all zeros;
  -- a tiny value beside larger ones may round to 0.0000, as in Torch
  if maxa >= 1e5 or maxa < 1e-3 then return '%.4e' end
  return '%.4f'
end

function M.format(t)
  if not T.is_tensor(t) then return tostring(t) end
  local h = t.h
  if h == nil then return '[empo.Tensor (freed)]' end
  local nd = C.empo_tensor_ndim(h)
  local sizes, numel = {}, 1
  for i = 1, nd do
    sizes[i] = tonumber(C.empo_tensor_size(h, i - 1))
    numel = numel * sizes[i]
  end
  local dt = C.empo_tensor_dtype(h)
  local is_int = dt >= C.EMPO_I32

  -- footer
  local parts = { '[empo.Tensor ' }
  if nd == 0 then parts[#parts + 1] = 'scalar ' else parts[#parts + 1] = 'of size ' .. concat(sizes, 'x') .. ' ' end
  parts[#parts + 1] = T.DNAME[dt]
  local fn = ffi.string(C.empo_tensor_grad_fn(h))
  if fn ~= '' then
    parts[#parts + 1] = ', grad_fn=<' .. fn .. '>'
  elseif C.empo_tensor_requires_grad(h) ~= 0 then
    parts[#parts + 1] = ', requires_grad'
  end
  parts[#parts + 1] = ']'
  local footer = concat(parts)
  if numel == 0 then return footer end

  -- read the values shown
  local elide = numel > M.threshold
  local all
  if not elide then
    all = ffi.new('double[?]', numel)
    if C.empo_tensor_read_f64(h, all) ~= 0 then return footer .. ' (unreadable: ' .. E.last_error() .. ')' end
  end
  local idx = ffi.new('int64_t[?]', nd > 0 and nd or 1)
  local val = ffi.new('double[1]')
  local strides = {}
  local s = 1
  for d = nd, 1, -1 do strides[d] = s; s = s * sizes[d] end
  local function get(pos)   -- pos: 1-based index per dim
    if all then
      local off = 0
      for d = 1, nd do off = off + (pos[d] - 1) * strides[d] end
      return all[off]
    end
    for d = 1, nd do idx[d - 1] = pos[d] - 1 end
    C.empo_tensor_get(h, idx, val)
    return val[0]
  end

  if nd == 0 then
    if C.empo_tensor_item(h, val) ~= 0 then return footer end
    local v = val[0]
    return num_text(v, choose_format({ v }, is_int)) .. '\n' .. footer
  end

  local lists = {}
  for d = 1, nd do lists[d] = shown(sizes[d], elide, M.edge) end

  -- Walk the shown positions once to gather values and the common format.
  local vals, pos = {}, {}
  local function walk(d, fnc)
    for _, i in ipairs(lists[d]) do
      if i then
        pos[d] = i
        if d == nd then fnc() else walk(d + 1, fnc) end
      end
    end
  end
  walk(1, function() vals[#vals + 1] = get(pos) end)
  local fmt = choose_format(vals, is_int)
  local width = 0
  for _, v in ipairs(vals) do
    local n = #num_text(v, fmt)
    if n > width then width = n end
  end
  local cell = '%' .. width .. 's'

  -- Columns of the last dim in chunks that fit `width` characters.
  local per_line = math.max(1, math.floor((M.linewidth - 1) / (width + 1)))
  local chunks, cur = {}, {}
  for _, j in ipairs(lists[nd]) do
    cur[#cur + 1] = j
    if #cur == per_line then chunks[#chunks + 1] = cur; cur = {} end
  end
  if #cur > 0 then chunks[#chunks + 1] = cur end

  local function row(cols)   -- the last dim at the leading position in pos
    local cells = {}
    for _, j in ipairs(cols) do
      if j then
        pos[nd] = j
        cells[#cells + 1] = format(cell, num_text(get(pos), fmt))
      else
        cells[#cells + 1] = format(cell, '...')
      end
    end
    return ' ' .. concat(cells, ' ')
  end

  local out = {}
  if nd == 1 then
    for _, cols in ipairs(chunks) do out[#out + 1] = row(cols) end
  else
    local function matrix()
      for ci, cols in ipairs(chunks) do
        if #chunks > 1 then
          local first, last
          for _, j in ipairs(cols) do
            if j then first = first or j; last = j end
          end
          if ci > 1 then out[#out + 1] = '' end
          out[#out + 1] = first and ('Columns ' .. first .. ' to ' .. last) or 'Columns ...'
        end
        for _, i in ipairs(lists[nd - 1]) do
          if i then
            pos[nd - 1] = i
            out[#out + 1] = row(cols)
          else
            out[#out + 1] = ' ...'
          end
        end
      end
    end
    if nd == 2 then
      matrix()
    else
      local function lead(d)
        for _, i in ipairs(lists[d]) do
          if i then
            pos[d] = i
            if d == nd - 2 then
              local head = {}
              for k = 1, nd - 2 do head[k] = tostring(pos[k]) end
              if #out > 0 then out[#out + 1] = '' end
              out[#out + 1] = '(' .. concat(head, ',') .. ',.,.) ='
              matrix()
            else
              lead(d + 1)
            end
          else
            if #out > 0 then out[#out + 1] = '' end
            out[#out + 1] = '...'
          end
        end
      end
      lead(1)
    end
  end
  out[#out + 1] = footer
  return concat(out, '\n')
end

return M
