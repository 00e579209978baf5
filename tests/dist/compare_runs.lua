-- tests/dist/compare_runs.lua RUN_A RUN_B MODE — two run directories'
-- metrics (all but timings and memory) and weights (the checkpoint or
-- model), MODE 'same' (every bit) or 'close' (step 1 the same samples,
-- the weights within 1e-4). Exits 1, saying what differs, when they do not agree.
local empo = require 'empo'
local log = require 'empo.run.log'
local a, b, mode = arg[1], arg[2], arg[3] or 'same'
local timing = { seconds_sample = true, seconds_update = true, seconds_comm = true, sample_tokens_per_s = true, peak_rss_gb = true }
local ma, mb = log.read_metrics(a .. '/metrics.jsonl'), log.read_metrics(b .. '/metrics.jsonl')
local bad = {}
local function say(fmt, ...) bad[#bad + 1] = string.format(fmt, ...) end
if #ma ~= #mb or #ma == 0 then say('%d metric records against %d', #ma, #mb) end
for i = 1, math.min(#ma, #mb) do
  for k, v in pairs(ma[i]) do
    local w = mb[i][k]
    if not timing[k] then
      if type(v) == 'table' then v, w = empo.json.encode(v), w ~= nil and empo.json.encode(w) or nil end   -- (changes)
      if mode == 'same' and v ~= w then say('step %d %s: %s against %s', i, k, tostring(v), tostring(w)) end
      if mode == 'close' and i == 1 and (k == 'reward' or k == 'entropy') and v ~= w then
        say('step 1 %s: %s against %s (the samples of step 1 should match)', k, tostring(v), tostring(w))
      end
    end
  end
end
local function weights(run)
  local latest = empo.fs.read_text(run .. '/latest')
  local dir = latest and run .. '/' .. latest:gsub('%s+$', '') or run .. '/model'
  return empo.safetensors.load(dir .. '/model.safetensors')
end
local wa, wb = weights(a), weights(b)
local worst, n = 0, 0
for k, t in pairs(wa) do
  n = n + 1
  if not wb[k] then say('%s missing in %s', k, b)
  else worst = math.max(worst, (t - wb[k]):abs():max():item()) end
end
if mode == 'same' and worst ~= 0 then say('weights differ by up to %g', worst) end
if mode == 'close' and worst > 1e-4 then say('weights differ by up to %g (more than 1e-4)', worst) end
if #bad > 0 then
  io.stderr:write('compare_runs: ', a, ' and ', b, ' (', mode, '):\n  ', table.concat(bad, '\n  '), '\n')
  os.exit(1)
end
print(string.format('compare_runs: %s and %s agree (%s): %d steps, %d weight tensors, largest weight difference %g',
                    a, b, mode, #ma, n, worst))
