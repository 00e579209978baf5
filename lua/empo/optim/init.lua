-- empo.optim — optimizers (adamw.lua) and the gradient operations they
-- share with training loops (grad.lua: norms, clipping, zeroing).
--
--     local opt = empo.optim.adamw{ params = model:parameters(), lr = 1e-5 }
--     empo.clip_grad_norm(opt.params, 1.0); opt:step(); opt:zero_grad()
--
-- The umbrella exposes empo.optim.adamw and empo.clip_grad_norm,
-- empo.grad_norm, empo.zero_grad from here.
local adamw = require 'empo.optim.adamw'
local grad = require 'empo.optim.grad'

return {
  adamw = adamw.adamw,
  param_list = grad.param_list,
  clip_grad_norm = grad.clip_grad_norm,
  grad_norm = grad.grad_norm,
  zero_grad = grad.zero_grad,
}
