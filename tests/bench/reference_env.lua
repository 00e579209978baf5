-- tests/bench/reference_env.lua — the environment a benchmark gives its
-- PyTorch (reference) process, and only that process: OpenBLAS can
-- misdetect the CPU (an AVX-512 Xeon taken for a Prescott runs PyTorch's
-- products 4x slower), so the core is named from the CPU's own flags.
-- Never for tests or CI. Returns { prefix = 'OPENBLAS_CORETYPE=X ', core = 'X' }.
local f = io.open('/proc/cpuinfo')
local info = f and f:read('*a') or ''
if f then f:close() end
local flags = ' ' .. (info:match('\nflags%s*:%s*([^\n]*)') or '') .. ' '
local amd = info:find('AuthenticAMD', 1, true) ~= nil
local core
if flags:find(' avx512f ', 1, true) then core = 'SKYLAKEX'
elseif flags:find(' avx2 ', 1, true) then core = amd and 'ZEN' or 'HASWELL'
end
return { prefix = core and ('OPENBLAS_CORETYPE=' .. core .. ' ') or '', core = core or 'as detected' }
