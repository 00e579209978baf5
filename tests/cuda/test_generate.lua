-- tests/cuda/test_generate.lua — sampling with the KV cache on the GPU
-- against the CPU: the same model on both devices must draw the same tokens
-- (the same Philox uniforms, logits that agree to float tolerance) with
-- log-probs and token statistics within 1e-5, across model families,
-- settings (greedy, temperature, top-k, top-p, min-p, a restricted
-- vocabulary) and batch limits that force admission and compaction (the
-- cache's rows moving on the device), through the C decoder's GPU step and
-- prefill and through the model's own layers. A bf16 decoder on the GPU
-- (its activations rounded for the tensor cores) gives logits within bf16
-- tolerance of the f32 ones. Also: the sample op's own checks on device
-- tensors, a NaN row named, and the KV-cache ops on the device against the
-- CPU's. In CI on the emulated device; on a GPU by tests/device/check.sh.
local ffi = require 'ffi'
local empo = require 'empo'
local E = require 'empo.tensor.ffi'
local check = require 'check'
local c = check.new('cuda/test_generate')

check.need_cuda()

local PROMPTS = { { 5, 9, 2, 33, 7, 1, 60, 12, 8 }, { 41 }, { 3, 3, 3, 17 }, { 20, 21, 22, 23, 24, 25, 26, 27, 28 } }

local compare = check.compare_samples

-- the same model on both devices, its biases random too (check.random_biases)
local function both(over, seed)
  local cfg = check.tiny_hf({ max_position_embeddings = 96 }, over)
  local cpu, state = check.random_biases(empo.models.new(cfg, seed), seed), {}
  for _, p in ipairs(cpu:named_parameters()) do state[p.name] = p.tensor end
  return cpu, empo.models.new(cfg, seed):load_state(state):to('cuda')
end

-- ---- the same completions on both devices ----
local cases = {
  { 'qwen2, top_p 0.9', {}, { n = 3, temperature = 1.0, top_p = 0.9, token_stats = true } },
  { 'qwen2, greedy with stop ids', {}, { n = 2, temperature = 0, stop = { 7, 30 } } },
  { 'llama, 1 KV head, tied; top_k 5, T 0.7', { model_type = 'llama', num_key_value_heads = 1,
                                                tie_word_embeddings = true },
    { n = 3, temperature = 0.7, top_k = 5 } },
  { 'qwen2, min_p 0.05 and top_p 0.8, max_batch 4', {}, { n = 3, min_p = 0.05, top_p = 0.8, max_batch = 4 } },
}
for _, case in ipairs(cases) do
  local name, over, o = case[1], case[2], case[3]
  o.max_new_tokens, o.seed = 14, 11
  local cpu, gpu = both(over, 3)
  local a = empo.sample.generate(cpu, nil, PROMPTS, o)
  for _, c_decode in ipairs({ true, false }) do
    o.c_decode = c_decode
    local label = name .. (c_decode and ', C decoder' or ", the model's layers")
    local b, st = empo.sample.generate(gpu, nil, PROMPTS, o)
    local same, worst = compare(a, b, o.token_stats)
    c.ok(same, label .. ': the same tokens on cuda as on the cpu')
    c.ok(worst < 1e-5, string.format('%s: log-probs%s within %.1e', label, o.token_stats and ' and token stats' or '',
                                     worst))
    c.eq(st.decode, c_decode and 'c' or 'lua', label .. ': that decoder ran on the device')
  end
end

-- ---- the decode steps as CUDA graphs (EMPO_CUDA_GRAPHS=1): recorded, replayed, the same tokens ----
-- (the emulation records the launches and replays them, and refuses a copy or a wait inside a capture,
-- as CUDA does)
do
  ffi.cdef 'int setenv(const char *name, const char *value, int overwrite); int unsetenv(const char *name);'
  local cpu, gpu = both({}, 3)
  local o = { n = 3, temperature = 1.0, top_p = 0.9, max_new_tokens = 14, seed = 11, max_batch = 4 }
  local a = empo.sample.generate(cpu, nil, PROMPTS, o)
  ffi.C.setenv('EMPO_CUDA_GRAPHS', '1', 1)
  local ok, b, st = pcall(empo.sample.generate, gpu, nil, PROMPTS, o)
  ffi.C.unsetenv('EMPO_CUDA_GRAPHS')
  c.ok(ok, 'generate with graphs: ' .. tostring(ok or b))
  local g = ok and st.cuda_graphs or { recorded = 0, replayed = 0 }
  c.ok(g.recorded > 0 and g.replayed > g.recorded,
       string.format('the steps ran as graphs: %d recorded, %d replayed', g.recorded, g.replayed))
  local same, worst = compare(a, ok and b or {})
  c.ok(same and worst < 1e-5, string.format('graphs: the same tokens as the cpu, log-probs within %.1e', worst))

  -- a step into another logits buffer: its graph is recorded again, not replayed into the old buffer
  local decoder, KVCache = require 'empo.generate.decoder', require 'empo.generate.kv_cache'
  ffi.C.setenv('EMPO_CUDA_GRAPHS', '1', 1)
  local cache = KVCache.new(gpu.config, 2, 1, 9, 4, { max_batch = 2 }, 'cuda')
  local d = decoder.new(gpu, cache, empo.zeros(cache.Bmax, { dtype = 'i64' }), { c_decode = true })
  ffi.C.unsetenv('EMPO_CUDA_GRAPHS')
  d:prefill({ { ids = PROMPTS[1] } }, { 1 })
  for r = 0, 1 do cache:open_row(r, 0) end
  local function step_into(buf)
    E.check(E.C.empo_decoder_step(d.handle, buf.h, 2, d.ids, cache.pos, cache.col, cache.prow, cache.plen))
    return buf:cpu()
  end
  local a = empo.zeros(2, gpu.config.vocab_size):cuda()
  local plain = step_into(a)
  step_into(a)                                           -- recorded
  local b = empo.zeros(2, gpu.config.vocab_size):cuda()
  step_into(b)                                           -- run plainly: the recording starts over
  local moved = step_into(b)                             -- recorded again, for b
  c.ok((moved - plain):abs():max():item() == 0 and d:graph_counts().recorded == 2,
       'a new logits buffer: the step recorded again, its logits written there')
  d:free(); cache:free()
end

-- ---- LoRA adapters (on every projection) in the C decoder's GPU step ----
do
  local lora = require 'empo.nn.lora'
  local cpu, gpu = both({}, 6)
  for _, m in ipairs({ cpu, gpu }) do
    lora.apply(m, { rank = 3, alpha = 6, targets = { 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                                                      'down_proj' } })
    empo.manual_seed(9)   -- the same nonzero B on both (a fresh adapter's B is zero: no change to see)
    for _, p in ipairs(lora.parameters(m)) do p:copy_(empo.randn(p:size()) * 0.2) end
  end
  local o = { n = 2, temperature = 1.0, max_new_tokens = 12, seed = 3 }
  local a, sa = empo.sample.generate(cpu, nil, PROMPTS, o)
  local b, sb = empo.sample.generate(gpu, nil, PROMPTS, o)
  local same, worst = compare(a, b)
  c.ok(sa.decode == 'c' and sb.decode == 'c', 'LoRA: the C decoder on both devices')
  c.ok(same and worst < 1e-5, string.format('LoRA: the same tokens on cuda, log-probs within %.1e', worst))
end

-- ---- a bf16 decoder on the GPU: within bf16 tolerance of f32 ----
do
  local decoder, KVCache = require 'empo.generate.decoder', require 'empo.generate.kv_cache'
  local cfg = check.tiny_hf({ max_position_embeddings = 96, tie_word_embeddings = false })
  local gpu = empo.models.new(cfg, 8):to('cuda')
  local prompts = {}
  for i, p in ipairs(PROMPTS) do prompts[i] = { ids = p } end
  local function prefill_logits(bf16)
    local o = { c_decode = true, bf16_weights = bf16, max_batch = 4, max_cache_bytes = 2 ^ 20 }
    local cache = KVCache.new(gpu.config, 4, #prompts, 9, 4, o, 'cuda')
    local d = decoder.new(gpu, cache, empo.zeros(cache.Bmax, { dtype = 'i64' }), o)
    local logits = d:prefill(prompts, { 1, 2, 3, 4 }):cpu()
    c.eq(d.weights, bf16 and 'bf16' or 'f32', string.format('the C decoder reads %s weights on cuda', d.weights))
    d:free(); cache:free()
    return logits
  end
  local f32, bf = prefill_logits(false), prefill_logits(true)
  local rel = math.sqrt(((bf - f32) * (bf - f32)):sum():item() / (f32 * f32):sum():item())
  c.ok(rel > 0 and rel < 1e-2, string.format('bf16 prefill logits within %.2g of f32 (bf16 tolerance 1e-2)', rel))
end

-- ---- the sample op on device tensors ----
do
  empo.manual_seed(2)
  local logits = empo.randn({ 6, 50 })
  local dl = logits:cuda()
  local s = ffi.new('empo_sampling', { 1.0, 0, 0.9, 0.0, 40 })
  local u = ffi.new('double[6]', { 0.1, 0.5, 0.9, 0.0, 0.99, 0.3 })
  local ids, lp, ref = empo.zeros(6, { dtype = 'i64' }), empo.zeros(6), empo.zeros(6)
  local dids, dlp, dref = ids:cuda(), lp:cuda(), ref:cuda()
  E.check(E.C.empo_sample(ids.h, lp.h, ref.h, logits.h, s, u))
  E.check(E.C.empo_sample(dids.h, dlp.h, dref.h, dl.h, s, u))
  c.eq(dids:cpu():tolist(), ids:tolist(), 'empo_sample on cuda tensors: the cpu tokens (vocab 40 of 50)')
  c.ok((dlp:cpu() - lp):abs():max():item() < 1e-5 and (dref:cpu() - ref):abs():max():item() < 1e-5,
       'and their log-probs')
  c.eq(E.C.empo_sample(ids.h, lp.h, ref.h, dl.h, s, u), E.C.EMPO_E_DEVICE, 'host outputs for device logits: refused')
  c.ok(ffi.string(E.C.empo_last_error()):find('is on cpu but logits', 1, true) ~= nil,
       'naming both devices: ' .. ffi.string(E.C.empo_last_error()))
  local bad = logits:clone()
  bad[{ 4, 7 }] = 0 / 0
  c.eq(E.C.empo_sample(dids.h, dlp.h, dref.h, bad:cuda().h, s, u), E.C.EMPO_E_NUMERIC, 'a NaN row is refused')
  c.ok(ffi.string(E.C.empo_last_error()):find('row 3 ', 1, true) ~= nil,
       'naming its row: ' .. ffi.string(E.C.empo_last_error()))
  local ent, sc, dent, dsc = empo.zeros(6), empo.zeros(6), empo.zeros(6):cuda(), empo.zeros(6):cuda()
  E.check(E.C.empo_sample_token_stats(ent.h, sc.h, logits.h, 0.8, 0))
  E.check(E.C.empo_sample_token_stats(dent.h, dsc.h, dl.h, 0.8, 0))
  c.ok((dent:cpu() - ent):abs():max():item() < 1e-5 and (dsc:cpu() - sc):abs():max():item() < 1e-5,
       'token statistics on cuda: the cpu values')
end

-- ---- the KV-cache ops on the device ----
do
  empo.manual_seed(4)
  local B, H, S, D = 3, 2, 6, 4
  local cache, x = empo.randn({ B + 1, H, S, D }), empo.randn({ B, H, 2, D })
  local dcache = cache:cuda()
  local pos = ffi.new('int64_t[3]', { 1, 1, 3 })
  E.check(E.C.empo_kv_write(cache.h, x.h, pos))
  E.check(E.C.empo_kv_write(dcache.h, x:cuda():transpose(3, 4):contiguous():transpose(3, 4).h, pos))
  c.ok((dcache:cpu() - cache):abs():max():item() == 0, 'kv_write on cuda (a strided x, two rows in step): exact')
  local dst, src = ffi.new('int64_t[2]', { 0, 3 }), ffi.new('int64_t[2]', { 2, 1 })
  E.check(E.C.empo_kv_copy_rows(cache.h, cache.h, 2, dst, src, 4))
  E.check(E.C.empo_kv_copy_rows(dcache.h, dcache.h, 2, dst, src, 4))
  c.ok((dcache:cpu() - cache):abs():max():item() == 0, 'kv_copy_rows within one cache on cuda: exact')
  local bad = ffi.new('int64_t[3]', { 1, 1, 5 })
  c.eq(E.C.empo_kv_write(dcache.h, x:cuda().h, bad), E.C.EMPO_E_INDEX, 'a write past the cache is refused on cuda')
  c.eq(E.C.empo_kv_write(dcache.h, x.h, pos), E.C.EMPO_E_DEVICE, 'x on the cpu, the cache on cuda: refused')
end

c.done()
