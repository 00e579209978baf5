-- empo.optim.grad — parameter lists and whole-model gradient operations:
-- the global gradient norm, clipping to it, zeroing every .grad (each one
-- fused C call over all the parameters). Not an optimizer: see adamw.lua.
--
--     local norm = empo.clip_grad_norm(model, 1.0)     -- also a list or a name -> tensor table
--
-- `params` is a list of tensors, a table name -> tensor (taken in sorted
-- name order), or an object with a :parameters() method returning either.
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

M.handles = handles

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
