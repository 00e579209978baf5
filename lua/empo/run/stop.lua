-- empo.run.stop (empo.stop) — a graceful stop for long jobs. Inside empo.stop.guard(fn),
-- SIGINT (Ctrl-C) and SIGTERM are only noted: fn asks empo.stop.requested()
-- between its steps ('SIGINT', 'SIGTERM' or nil) and ends cleanly, saving
-- what it must; a second signal gets the action from before (the REPL's
-- interrupt, or the default: the process ends). The handlers from before
-- return when fn returns or raises.
--
--     empo.stop.guard(function()
--       for step = 1, n do
--         work(step)
--         if empo.stop.requested() then save(step) break end
--       end
--     end)
local C = require('empo.tensor.ffi').C

local M = {}

local NAMES = { [2] = 'SIGINT', [15] = 'SIGTERM' }

function M.requested()
  local sig = C.empo_stop_requested()
  if sig == 0 then return nil end
  return NAMES[sig] or ('signal ' .. sig)
end

-- The exit status a shell gives a process ended by the signal (130, 143).
function M.exit_status(name)
  for num, n in pairs(NAMES) do if n == name then return 128 + num end end
  return 1
end

function M.guard(fn, ...)
  if C.empo_stop_signals_begin() ~= 0 then error('empo.stop.guard: cannot install the signal handlers', 2) end
  local res = { pcall(fn, ...) }
  C.empo_stop_signals_end()
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

return M
