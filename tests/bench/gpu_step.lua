-- tests/bench/gpu_step.lua — one training step of a Qwen2 model on the GPU:
-- forward, the next-token loss, backward, gradient clipping and AdamW,
-- timed after warm-up steps; tokens/s and MFU. tests/bench/gpu_step_torch.py
-- is the same step in PyTorch on the same card; tests/device/check.sh runs
-- both and prints them side by side.
--
--     empo run tests/bench/gpu_step.lua [shape] [batch] [seq] [steps] [tf32]
--       shape: qwen05, qwen15 or tiny (tests/bench/gpu_shapes.lua); defaults
--              qwen05 4 512 5 0
-- Prints one line: gpu_step shape=... tokens_per_s=... mfu=... (and the card).
local empo = require 'empo'

local shape, batch, seq = arg[1] or 'qwen05', tonumber(arg[2] or 4), tonumber(arg[3] or 512)
local steps, tf32 = tonumber(arg[4] or 5), (arg[5] or '0') == '1'
local cfg = require('gpu_shapes').config(shape)

local gpu, why = empo.cuda_device()
if not gpu then
  io.stderr:write('gpu_step: no CUDA device: ' .. why .. '\n')
  os.exit(77)
end
if tf32 then empo.cuda_allow_tf32(true) end   -- full f32 is the default

local model = empo.models.new(cfg, 1):to('cuda')
local opt = empo.optim.adamw { params = model:parameters(), lr = 1e-5 }
empo.manual_seed(2)
local ids = empo.randint(0, cfg.vocab_size, batch, seq + 1):cuda()

local function step()
  opt:zero_grad()
  local loss = empo.train.lm_loss(model, ids)
  loss:backward()
  empo.clip_grad_norm(opt.params, 1.0)
  opt:step()
  local value = loss:item()   -- waits for the device
  empo.collect()
  return value
end

for _ = 1, 2 do step() end
local clock = require('empo.run.log').clock
local best, loss = math.huge, nil
for _ = 1, steps do
  local t0 = clock()
  loss = step()
  best = math.min(best, clock() - t0)   -- the fastest step
end

-- FLOPs per token: 6 per weight (forward 2, backward 4) plus the attention
-- scores and values (12 L T d, half of it under the causal mask counted whole,
-- as the usual MFU convention does)
local n_params = 0
for _, p in ipairs(model:parameters()) do n_params = n_params + p:numel() end
local flops_per_token = 6 * n_params + 12 * cfg.num_hidden_layers * seq * cfg.hidden_size
local tokens = batch * seq
local tps = tokens / best
-- dense peaks of the card (FP32 CUDA cores; TF32 tensor cores), TFLOP/s
local pcie = gpu:find('PCIe', 1, true)
local peak = gpu:find('H100', 1, true) and (tf32 and (pcie and 378 or 495) or (pcie and 51 or 67))
             or gpu:find('H200', 1, true) and (tf32 and 495 or 67) or nil
local mfu = peak and flops_per_token * tps / (peak * 1e12) or nil
print(string.format('gpu_step shape=%s batch=%d seq=%d precision=%s tokens_per_s=%.0f step_s=%.3f loss=%.4f '
                    .. 'params=%d mfu=%s gpu="%s"', shape, batch, seq, tf32 and 'tf32' or 'f32', tps, best, loss,
                    n_params, mfu and string.format('%.4f', mfu) or 'n/a', gpu))
