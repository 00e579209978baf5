-- empo.nn.mixed — mixed precision for a model's projections: each Linear
-- of the model (the LM head aside) keeps a bf16 copy of its f32 weight,
-- which its forward multiplies with (empo.linear_bf16: two bf16 operands,
-- f32 sums, the gradient into the f32 weight, which AdamW keeps in f32
-- with f32 moments), and which the sampler's C decoder reads too: one copy
-- for both (empo.generate.decoder asks copy_of). The LM head's copy serves
-- the sampler only; the update's head stays f32 (its log-softmax over the
-- vocabulary is where bf16 would cost the most; the trainer lets its
-- product run in TF32, the recipe's tf32).
--
--     mixed.attach(model)      -- the copies, made now
--     opt:step(); mixed.refresh(model)   -- after every change of the weights
--     mixed.detach(model)      -- f32 products again
local empo = require 'empo'
local layers = require 'empo.nn.layers'

local M = {}

-- f32 weight -> its bf16 copy, for every attached model (weak: a dropped
-- model's copies go with it)
local copies = setmetatable({}, { __mode = 'k' })

-- every Linear of m with an f32 matrix, and the head's weight (lm_head, or
-- the tied embedding), each once
local function weights(model)
  local out, seen = {}, {}
  local function walk(m, name)
    if getmetatable(m) == layers.Linear and name ~= 'lm_head' and m.weight:dtype() == 'f32' and not seen[m] then
      seen[m] = true
      out[#out + 1] = { module = m, weight = m.weight }
    end
    for _, c in ipairs(m._child_names or {}) do walk(m[c], c) end
  end
  walk(model, '')
  local spec = model.decoder_spec and model:decoder_spec()
  if spec and spec.head:dtype() == 'f32' then out[#out + 1] = { weight = spec.head } end
  return out
end

-- Makes the bf16 copies of model's matrices and points its Linears at them.
function M.attach(model)
  for _, w in ipairs(weights(model)) do
    if not copies[w.weight] then copies[w.weight] = empo.no_grad(function() return w.weight:detach():to('bf16') end) end
    if w.module then w.module.weight_bf16 = copies[w.weight] end
  end
  model.mixed_precision = true
  return model
end

function M.attached(model) return model.mixed_precision == true end

-- The copies brought up to the f32 weights (after an optimizer step, a
-- checkpoint load, a rollback); a no-op on a model without them.
function M.refresh(model)
  if not M.attached(model) then return end
  empo.no_grad(function()
    for _, w in ipairs(weights(model)) do
      local c = copies[w.weight]
      if c then c:copy_(w.weight) else M.attach(model) end   -- (a weight replaced since: copied anew)
    end
  end)
end

-- f32 products again; the copies are freed.
function M.detach(model)
  for _, w in ipairs(weights(model)) do
    if w.module then w.module.weight_bf16 = nil end
    local c = copies[w.weight]
    if c then c:free(); copies[w.weight] = nil end
  end
  model.mixed_precision = nil
end

-- The bf16 copy of an attached model's weight t, or nil.
function M.copy_of(t) return copies[t] end

return M
