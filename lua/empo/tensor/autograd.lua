-- empo.tensor.autograd — the Tensor methods of autograd: requires_grad_,
-- backward (then empo.tensor.after_backward, which runs checkpointed
-- segments: empo.nn.checkpoint), grad_fn, detach, zero_grad and the grad
-- property (core/include/empo/autograd.h). Loaded by empo (lua/empo/init.lua)
-- once empo.tensor is.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local C = E.C

local ffi_string = ffi.string
local H, HO, result, check, new_box, outp = T.handle, T.handle_or_nil, T.result, T.check, T.new_box, T.outp
local methods, props = T.methods, T.props

function methods.requires_grad_(t, on)
  local h = H(t, 'empo.requires_grad_', 1)
  check(C.empo_tensor_set_requires_grad(h, (on == nil or on) and 1 or 0))
  return t
end

function methods.backward(t, grad, retain_graph)   -- (then through checkpointed segments: empo.nn.checkpoint)
  check(C.empo_backward(H(t, 'empo.backward', 1), HO(grad, 'empo.backward', 2), retain_graph and 1 or 0))
  if T.after_backward then T.after_backward() end
end

function methods.grad_fn(t)
  local s = ffi_string(C.empo_tensor_grad_fn(H(t, 'empo.grad_fn', 1)))
  if s == '' then return nil end
  return s
end

function methods.detach(t)
  return result(C.empo_detach(outp, H(t, 'empo.detach', 1)))
end

function methods.zero_grad(t)
  check(C.empo_tensor_set_grad(H(t, 'empo.zero_grad', 1), nil))
  return t
end

function props.grad(t)
  check(C.empo_tensor_grad(outp, H(t, 'empo.Tensor.grad', 1)))
  local g = outp[0]
  if g == nil then return nil end
  return new_box(g)
end
