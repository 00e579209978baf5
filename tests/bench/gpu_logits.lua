-- tests/bench/gpu_logits.lua DIR — empo's GPU logits against transformers' on the same random
-- checkpoint (tests/bench/gpu_logits_torch.py writes DIR: the model, and reference.safetensors with
-- the ids and PyTorch's f32 logits): the relative error ||empo - torch|| / ||torch|| in f32, in
-- TF32 and with mixed precision (bf16 products: empo.nn.mixed). Prints one line:
--   gpu_logits rel_f32=... rel_tf32=... rel_bf16=...
local empo = require 'empo'
local mixed = require 'empo.nn.mixed'

local dir = assert(arg[1], 'usage: gpu_logits.lua DIR')
local ref = empo.safetensors.load(dir .. '/reference.safetensors')
local model = empo.models.from_pretrained(dir):to('cuda')
local ids, want = ref.ids:cuda(), ref.logits:cuda()

local function rel()
  local got = empo.no_grad(function() return model(ids) end)
  local d = got - want
  local e = math.sqrt((d * d):sum():item() / (want * want):sum():item())
  got:free(); d:free()
  return e
end

local f32 = rel()
local tf32 = 'n/a'   -- (the host emulation has no TF32 products)
if pcall(empo.cuda_allow_tf32, true) then
  tf32 = string.format('%.2e', rel())
  empo.cuda_allow_tf32(false)
end
mixed.attach(model)
local bf16 = rel()
print(string.format('gpu_logits rel_f32=%.2e rel_tf32=%s rel_bf16=%.2e (targets 1e-3, 1e-3, 1e-2)', f32, tf32, bf16))
