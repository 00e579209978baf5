-- empo.optim — AdamW over the fused C step, and gradient-norm helpers.
--
--     local opt = empo.optim.adamw{ params = model:parameters(), lr = 1e-5,
--                                   betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0.01 }
--     loss:backward()
--     empo.clip_grad_norm(opt.params, 1.0)
--     opt:step()
--     opt:zero_grad()
--
-- `params` is a list of tensors, a table name -> tensor (taken in sorted
-- name order), or an object with a :parameters() method returning either.
-- The optimizer owns the moments m[i], v[i] (f32, the parameters' shapes)
-- and the step count `t`; `opt.lr` etc. may be changed between steps.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local C = E.C

local format = string.format
local check, argerror = T.check, T.argerror

local M = {}

-- A list of parameter tensors from the forms above.
local function param_list(params, fname)
  if type(params) == 'table' and type(params.parameters) == 'function' then
    params = params:parameters()
  end
  if type(params) ~= 'table' or T.is_tensor(params) then
    argerror(fname, 1, 'list or table of tensors', params)
  end
  local list = {}
  if params[1] ~= nil then
    for i = 1, #params do list[i] = params[i] end
  else
    local names = {}
    for k in pairs(params) do names[#names + 1] = k end
    table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for i, k in ipairs(names) do list[i] = params[k] end
  end
  for i, p in ipairs(list) do
    if not T.is_tensor(p) then
      error(format('%s: parameter %d: expected tensor, got %s', fname, i, T.typename(p)), 3)
    end
  end
  return list
end
M.param_list = param_list

-- Fill a C array with the handles of list (checked: not freed).
local function handles(arr, list, fname)
  for i = 1, #list do
    local h = list[i].h
    if h == nil then error(format('%s: parameter %d was freed', fname, i), 3) end
    arr[i - 1] = h
  end
  return arr
end

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
  for i = 1, n do
    local shape = params[i]:size()
    self.m[i] = T.zeros(shape)
    self.v[i] = T.zeros(shape)
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

-- ---- gradient norms ----

local dbl = ffi.new('double[1]')

local function with_handles(params, fname)
  local list = param_list(params, fname)
  local arr = ffi.new('empo_tensor*[?]', math.max(#list, 1))
  return #list, handles(arr, list, fname)
end

-- Clip every .grad so the global norm is at most max_norm; returns the
-- norm before clipping.
function M.clip_grad_norm(params, max_norm)
  if type(max_norm) ~= 'number' then argerror('empo.clip_grad_norm', 2, 'number', max_norm) end
  local n, arr = with_handles(params, 'empo.clip_grad_norm')
  check(C.empo_clip_grad_norm(n, arr, max_norm, dbl))
  return dbl[0]
end

-- sqrt(sum of squares of every .grad); check_finite raises on NaN/Inf.
function M.grad_norm(params, check_finite)
  local n, arr = with_handles(params, 'empo.grad_norm')
  check(C.empo_grad_norm(n, arr, check_finite and 1 or 0, dbl))
  return dbl[0]
end

function M.zero_grad(params)
  local n, arr = with_handles(params, 'empo.zero_grad')
  check(C.empo_zero_grad(n, arr))
end

return M
