-- empo.nn.checkpoint — activation checkpointing: a function of a tensor
-- (a decoder layer) whose inside is not kept for backward but computed
-- again then, so a forward through L layers holds L layer inputs instead
-- of every activation of every layer.
--
--     local y = checkpoint.run(layer, x, opts)   -- layer(x, opts), no graph inside kept
--     loss:backward()                            -- ... reaches y, then runs layer(x, opts)
--                                                -- again with autograd and goes on into x
--
-- How: run computes fn without autograd and returns its result as a new
-- leaf that requires grad, and notes the segment (fn, its input, that
-- leaf). Every Tensor:backward ends by calling resume (the tensor module's
-- after_backward hook): newest segment first, a segment whose leaf got a
-- gradient runs fn again from its input, with autograd, and backpropagates
-- that gradient through it into the input (into the previous segment's
-- leaf, or the graph before the first). The same inputs give the same
-- values, so the gradients are those of the plain forward (a test checks
-- them to 1e-6). Segments whose leaf got no gradient (a forward never
-- backpropagated) are dropped at the next backward. fn must compute the
-- same thing twice: no dropout or other randomness, no state it changes.
local empo = require 'empo'
local tensor = require 'empo.tensor'

local M = {}

local pending = {}     -- the segments of the graphs built since the last backward, in forward order
local resuming = false -- inside resume: fn runs plainly, and inner backwards do not resume

-- fn(x, ...) with its inside recomputed in backward (plainly when
-- autograd is off, or while a segment is being recomputed).
function M.run(fn, x, ...)
  if resuming or not empo.is_grad_enabled() then return fn(x, ...) end
  local y = empo.no_grad(fn, x, ...):detach():requires_grad_(true)
  pending[#pending + 1] = { fn = fn, x = x, y = y, n = select('#', ...), ... }
  return y
end

-- Backpropagates through the pending segments (see above).
function M.resume()
  if resuming or #pending == 0 then return end
  resuming = true
  local ok, err = pcall(function()
    while #pending > 0 do
      local s = table.remove(pending)
      local g = s.y.grad
      if g then
        local xr = s.x:detach()
        if s.x.requires_grad then xr:requires_grad_(true) end
        local yr = s.fn(xr, unpack(s, 1, s.n))
        yr:backward(g)
        if s.x.requires_grad and xr.grad then s.x:backward(xr.grad) end
      end
    end
  end)
  resuming = false
  if not ok then
    pending = {}
    error(err, 0)
  end
end

-- How many segments wait for a backward (tests and the memory plan).
function M.pending() return #pending end

tensor.after_backward = M.resume

return M
