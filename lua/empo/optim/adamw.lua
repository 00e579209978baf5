-- empo.optim.adamw — AdamW over the fused C step (core/include/empo/optim.h).
--
--     local opt = empo.optim.adamw{ params = model:parameters(), lr = 1e-5,
--                                   betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.01 }
--     loss:backward()
--     empo.clip_grad_norm(opt.params, 1.0)
--     opt:step()
--     opt:zero_grad()
--
-- The optimizer owns the moments m[i], v[i] (f32, the parameters' shapes)
-- and the step count `t`; `opt.lr` etc. may be changed between steps.
-- Learning-rate schedules are empo.train.schedule's.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local grad = require 'empo.optim.grad'
local C = E.C

local check, argerror = T.check, T.argerror
local param_list, handles = grad.param_list, grad.handles

local M = {}

local AdamW = {}
AdamW.__index = AdamW

function M.adamw(cfg)
  if type(cfg) ~= 'table' then argerror('empo.optim.adamw', 1, 'table of options', cfg) end
  local params = param_list(cfg.params, 'empo.optim.adamw')
  local betas = cfg.betas or { 0.9, 0.999 }
  local self = setmetatable({
    params = params,
    lr = cfg.lr or 1e-3,
    beta1 = betas[1], beta2 = betas[2],
    eps = cfg.eps or 1e-8,
    weight_decay = cfg.weight_decay or 0.01,
    t = 0,
    m = {}, v = {},
  }, AdamW)
  for k, x in pairs(cfg) do   -- keep the rest (clip_grad, schedules) for the trainer
    if self[k] == nil and k ~= 'betas' then self[k] = x end
  end
  local n = #params
  for i = 1, n do   -- the moments live where their parameter does
    local shape, device = params[i]:size(), params[i].device
    self.m[i] = T.zeros(shape)
    self.v[i] = T.zeros(shape)
    if device ~= 'cpu' then self.m[i], self.v[i] = self.m[i]:to(device), self.v[i]:to(device) end
  end
  self._p = ffi.new('empo_tensor*[?]', math.max(n, 1))
  self._m = ffi.new('empo_tensor*[?]', math.max(n, 1))
  self._v = ffi.new('empo_tensor*[?]', math.max(n, 1))
  self._cfg = ffi.new('empo_adamw_config')
  return self
end

function AdamW:step()
  local n = #self.params
  local c = self._cfg
  c.lr, c.beta1, c.beta2, c.eps, c.weight_decay = self.lr, self.beta1, self.beta2, self.eps, self.weight_decay
  local t = self.t + 1   -- counted only once the step succeeded
  check(C.empo_adamw_step(n, handles(self._p, self.params, 'adamw:step'), handles(self._m, self.m, 'adamw:step'),
                          handles(self._v, self.v, 'adamw:step'), c, t))
  self.t = t
end

function AdamW:zero_grad()
  check(C.empo_zero_grad(#self.params, handles(self._p, self.params, 'adamw:zero_grad')))
end

-- The moments and step count, e.g. for a checkpoint.
function AdamW:state()
  return { t = self.t, m = self.m, v = self.v }
end

function AdamW:load_state(s)
  self.t = s.t
  for i = 1, #self.params do
    self.m[i]:copy_(s.m[i])
    self.v[i]:copy_(s.v[i])
  end
end

return M
