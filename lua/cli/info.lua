-- cli.info — the `empo info` command: what this process would run on
-- (version, the kernel table and the best one the CPU runs, threads, the
-- CPU, and the GPU or why there is none). Part of the command, not of the
-- library.
--
--     empo info                 EMPO_ISA=avx2 empo info
local empo = require 'empo'

return function()
  local i = empo.info()
  print(string.format('empo %s (%s)', i.version, jit and jit.version or 'Lua'))
  print(string.format('kernels: %s (the best this CPU runs: %s; EMPO_ISA=avx2|avx512|ref chooses)', i.kernels,
                      i.best))
  print(string.format('threads: %d (OMP_NUM_THREADS, or empo.set_num_threads)', i.threads))
  print('cpu:     ' .. i.cpu)
  local gpu, why = empo.cuda_device()
  print('gpu:     ' .. (gpu or ('none (' .. why .. ')')))
  return 0
end
