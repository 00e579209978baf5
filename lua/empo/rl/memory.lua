-- empo.rl.memory — the memory plan of a run: before the first step, what
-- each part of a step will hold at its largest, from the model's shape and
-- the recipe; the micro-batch size and the checkpointing that fit the
-- recipe's memory_gb; and a refusal naming the largest item and the
-- setting that would help when nothing fits — never the kernel's OOM kill.
--
--     local plan = memory.plan(recipe, cfg, { prompt_tokens = 120 })
--     print(memory.describe(plan))        -- the table the trainer prints
--     plan.micro_batch_tokens, plan.checkpoint, plan.head_chunk, plan.peak
--
-- A step has two phases that never overlap: sampling (the KV cache and a
-- row of logits per sequence) and the update (gradients, the largest
-- micro-batch's activations, the LM head's weight gradient). The weights,
-- the AdamW moments, the frozen model and the runtime are held through
-- both. The peak is the fixed part plus the larger phase; the trainer
-- bounds the allocator's cache and the Lua collector's slack so that the
-- blocks one phase frees are not still held in the other (apply).
--
-- The per-token activation figures were measured on this runtime at
-- Qwen2.5-0.5B's widths (d 896, ffn 4864, 2 KV heads) with 1, 2 and 4
-- layers and fitted: a layer keeps about 4 * (10 d + 4 ffn) bytes a token
-- for backward; with checkpointing it keeps its input and the backward's
-- gradients (4 * 3.2 d) and one layer at a time is recomputed whole.
-- With device 'cuda' the plan is of the card's memory (memory_gb: 90% of it
-- by default), with the same items less the host's runtime; those
-- per-token figures are the CPU's and are not yet measured on a GPU.
local format = string.format

local M = {}

local GB = 2 ^ 30
-- code, LuaJIT heap, thread stacks, and the tokenizer's tables and the
-- sampler's per-token pieces, which grow with the vocabulary: measured
-- 1.0 GB in all with Qwen2.5's 151,936 (docs/results.md)
function M.runtime_bytes(cfg) return 0.3 * GB + cfg.vocab_size * 5000 end

-- Parameters of a stock transformer of config cfg (empo.models.config).
function M.parameter_count(cfg)
  local D, F, L, V = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.vocab_size
  local q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
  local attn = D * q + 2 * D * kv + q * D
  if cfg.qkv_bias then attn = attn + q + 2 * kv end
  if cfg.o_bias then attn = attn + D end
  local layer = attn + 3 * D * F + 2 * D
  return V * D * (cfg.tie_word_embeddings and 1 or 2) + L * layer + D
end

-- Each projection's { in, out } features in a layer of config cfg.
local function projections(cfg)
  local D, F = cfg.hidden_size, cfg.intermediate_size
  local q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
  return { q_proj = { D, q }, k_proj = { D, kv }, v_proj = { D, kv }, o_proj = { q, D }, gate_proj = { D, F },
           up_proj = { D, F }, down_proj = { F, D } }
end

-- Parameters of LoRA adapters (settings s: rank, targets) on config cfg.
function M.adapter_count(cfg, s)
  local dims, n = projections(cfg), 0
  for _, t in ipairs(s.targets) do n = n + s.rank * (dims[t][1] + dims[t][2]) end
  return n * cfg.num_hidden_layers
end

-- Floats a token of each adapted projection's output keeps in a layer
-- under LoRA settings s (nil: none): the base product and the adapter's
-- product are two tensors the graph holds (its edges keep their inputs)
-- until backward, beside their sum (measured at the 0.5B shape: 5.5 MB a
-- token against full fine-tuning's 2.8).
local function lora_floats(cfg, s)
  if not s then return 0 end
  local dims, n = projections(cfg), 0
  for _, t in ipairs(s.targets) do n = n + 2 * dims[t][2] end
  return n
end

-- Bytes of activations a micro-batch of `tokens` padded tokens holds at
-- the peak of its backward (lora: the adapters' settings, or nil).
function M.activation_bytes(cfg, tokens, checkpoint, lora)
  local D, F, L = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
  local layer, outside = 4 * (10 * D + 4 * F + lora_floats(cfg, lora)), 4 * 9 * D
  if checkpoint then return tokens * (outside + layer + L * 4 * 3.2 * D) end
  return tokens * (outside + L * layer)
end

-- The memory a run may use when the recipe does not say: half the
-- machine's; on the GPU (device 'cuda') 90% of the card's.
function M.default_gb(device)
  if device == 'cuda' then
    local bytes = require('empo').cuda_memory_bytes()
    if bytes then return math.floor(bytes / GB * 0.9 * 10) / 10 end
  end
  local f = io.open('/proc/meminfo')
  local kb = f and f:read('*a'):match('MemTotal:%s+(%d+)')
  if f then f:close() end
  return kb and math.floor(tonumber(kb) / 2 ^ 20 * 0.5 * 10) / 10 or 8
end

-- The plan for resolved recipe r and model config cfg. o: prompt_tokens
-- (the longest prompt, in tokens), frozen ('f32', 'bf16' or nil: no
-- frozen model). Returns the plan, or raises the refusal.
function M.plan(r, cfg, o)
  o = o or {}
  local P, V, D = M.parameter_count(cfg), cfg.vocab_size, cfg.hidden_size
  local on_gpu = r.device == 'cuda'   -- the plan of the card's memory: the runtime's host memory is not in it
  local budget = (r.memory_gb or M.default_gb(r.device)) * GB
  local rows = r.prompts_per_step * r.sample.n
  local longest_row = (o.prompt_tokens or 0) + r.sample.max_new_tokens
  local plan = { budget = budget, items = {}, device = r.device }
  local function item(name, bytes, phase, note)
    plan.items[#plan.items + 1] = { name = name, bytes = bytes, phase = phase, note = note }
    return bytes
  end
  local T = P                                     -- the parameters trained
  local fixed
  if o.lora then                                  -- a frozen bf16 base (norms f32) and f32 adapters
    local small = cfg.num_hidden_layers * 2 * D + D
    T = M.adapter_count(cfg, o.lora)
    fixed = item('base weights (bf16, frozen)', 2 * (P - small) + 4 * small, 'all')
    fixed = fixed + item(format('LoRA adapters (f32, rank %d)', o.lora.rank), 4 * T, 'all')
  else
    fixed = item('weights (f32)', 4 * P, 'all')
  end
  fixed = fixed + item('AdamW moments (f32)', 8 * T, 'all')
  if o.frozen then
    fixed = fixed + item(format('frozen starting model (%s)', o.frozen),
                         (o.frozen == 'bf16' and 2 or 4) * (P - cfg.num_hidden_layers * 2 * D - D) +
                         4 * (cfg.num_hidden_layers * 2 * D + D), 'all', o.frozen_why)
  end
  if not on_gpu then fixed = fixed + item('runtime (code, Lua, tokenizer)', M.runtime_bytes(cfg), 'all') end
  if r.precision == 'bf16' then   -- the projections' bf16 copies and the head's (empo.nn.mixed)
    fixed = fixed + item('bf16 copies of the weights (mixed precision)', 2 * P, 'all')
  end
  -- sampling: the KV cache (f32; the sampler batches past its budget) and two rows of logits a sequence
  local ctx = math.min(cfg.max_position_embeddings, longest_row)
  local kv = math.min(rows * ctx * cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * 4,
                      r.sample.max_cache_bytes or 2 ^ 30)
  local sampling = kv + rows * V * 4 * 2
  -- the update: gradients, the head's weight gradient and chunks, then the activations that fit
  local chunk = math.max(1, math.floor(32 * 2 ^ 20 / (4 * V)))
  local head = 4 * V * D + 2 * 4 * chunk * V
  local grads = 4 * T
  -- on the card, attention forms its scores and their gradients a slab at a time (kernels/cuda/fused_attention.cu)
  local scores = on_gpu and 2 * 32 * 2 ^ 20 or 0
  -- dead tensors wait for the collector until this much is garbage (apply)
  local slack = math.max(64 * 2 ^ 20, (budget - fixed) / 16)
  local room = budget - fixed - grads - head - scores - slack
  local plain_tokens = math.floor(room / M.activation_bytes(cfg, 1, false, o.lora))
  local ckpt_tokens = math.floor(room / M.activation_bytes(cfg, 1, true, o.lora))
  local mode = r.checkpoint
  local ckpt
  if mode == true then ckpt = true
  elseif mode == false then ckpt = false
  else ckpt = plain_tokens < longest_row end            -- 'auto': only when one longest row does not fit plainly
  local fit = ckpt and ckpt_tokens or plain_tokens
  plan.checkpoint, plan.head_chunk = ckpt, chunk
  plan.micro_batch_tokens = math.min(r.micro_batch_tokens, math.max(fit, 0))
  plan.lowered = plan.micro_batch_tokens < r.micro_batch_tokens
  local acts = M.activation_bytes(cfg, math.max(plan.micro_batch_tokens, longest_row), ckpt, o.lora)
  item('gradients (f32)', grads, 'update')
  item(format('LM head: %s, %d-row chunks', o.lora and 'widened to f32' or 'weight gradient', chunk), head, 'update')
  item(format('activations, micro-batches of %d tokens%s', plan.micro_batch_tokens,
              ckpt and ', layers checkpointed' or ''), acts, 'update')
  if on_gpu then item('attention scores (a slab of KV groups at a time)', scores, 'update') end
  item('garbage the collector lets wait', slack, 'all')
  fixed = fixed + slack
  plan.slack = slack
  item(format('KV cache and logits (%d sequences)', rows), sampling, 'sampling')
  plan.update, plan.sampling, plan.fixed, plan.grads = grads + head + acts + scores, sampling, fixed, grads
  plan.peak = fixed + math.max(plan.update, sampling)
  if fit < longest_row or plan.peak > budget then M.refuse(plan, r, longest_row, ckpt, ckpt_tokens) end
  return plan
end

-- The refusal: the largest item and what would help.
function M.refuse(plan, r, longest_row, ckpt, ckpt_tokens)
  local big = plan.items[1]
  for _, it in ipairs(plan.items) do if it.bytes > big.bytes then big = it end end
  local help = format('memory_gb=%.1f (if the machine has it), a shorter sample.max_new_tokens (now %d) or a ' ..
                      'smaller model', math.ceil(plan.peak / GB * 10) / 10, r.sample.max_new_tokens)
  if not ckpt and r.checkpoint == false and ckpt_tokens >= longest_row then
    help = 'checkpoint=auto: with each layer recomputed in backward a row fits'
  end
  error(format('memory plan: this run needs about %.1f GB and memory_gb allows %.1f GB (a micro-batch must hold ' ..
               'one row of %d tokens: the longest prompt + sample.max_new_tokens). The largest item is %s, ' ..
               '%.1f GB. Try %s.\n%s', plan.peak / GB, plan.budget / GB, longest_row, big.name, big.bytes / GB, help,
               M.describe(plan)), 0)
end

-- What the plan asks of the runtime while the run lasts: the allocator
-- keeps at most one phase's transient blocks cached (past that they go back to the
-- system; the trainer also empties the cache between the phases, so one
-- phase's blocks are never held in the other), and the collector runs once
-- plan.slack is garbage (a boxed tensor is freed when Lua collects its
-- box; with gigabytes of weights live, the default 1.5x rule would let
-- gigabytes of dead activations wait). Returns a function that puts both back.
function M.apply(plan)
  local empo = require 'empo'
  local limit = empo.set_cache_limit(math.max(plan.update - plan.grads, plan.sampling))
  local factor, min_bytes = empo.gc_policy(1.0, plan.slack)
  return function()
    empo.set_cache_limit(limit)
    empo.gc_policy(factor, min_bytes)
  end
end

-- The plan as the lines the trainer prints.
function M.describe(plan)
  local lines = { format('memory plan (memory_gb %.1f%s):', plan.budget / GB,
                         plan.device == 'cuda' and ', of the GPU' or '') }
  for _, it in ipairs(plan.items) do
    local when = it.phase == 'all' and '' or format(' (%s)', it.phase)
    lines[#lines + 1] = format('  %-52s %6.2f GB%s', it.name .. when, it.bytes / GB, it.note and (' ' .. it.note) or '')
  end
  lines[#lines + 1] = format('  %-52s %6.2f GB (the %s)', 'peak', plan.peak / GB,
                             plan.update >= plan.sampling and 'update' or 'sampling')
  return table.concat(lines, '\n')
end

return M
