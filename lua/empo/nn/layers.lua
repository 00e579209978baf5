-- empo.nn.layers — the layers every decoder is built of: Linear, Embedding,
-- RMSNorm, ModuleList (Hugging Face's numbered layer lists). Each is a
-- module (empo.nn.module) whose forward is one fused op.
--
--     local lin = nn.Linear(4, 3, { bias = true })   -- weight [3, 4], bias [3]
--     local y = lin(x)                                -- x [..., 4] -> [..., 3]
--
-- The transformer's own blocks are transformer.lua.
local empo = require 'empo'
local module = require 'empo.nn.module'

local Module, class = module.Module, module.class

-- ---- initialisation ----

-- normal(0, std) from a Philox generator (the model's init stream)
local function normal(gen, std, ...)
  local t = gen:randn(...)
  local s = t * std
  t:free()
  return s
end

-- A new weight: normal(0, std) from the init stream, or, with opts.empty
-- (a dtype name), an uninitialised tensor of that dtype that a checkpoint's
-- weights are about to replace (empo.nn.models: no random numbers drawn
-- for a model loaded in bf16).
local function weight(opts, ...)
  if opts.empty then
    local dims = { ... }
    dims[#dims + 1] = { dtype = opts.empty }
    return empo.empty(unpack(dims))
  end
  return normal(opts.gen or empo.default_generator(), opts.std or 0.02, ...)
end

-- ---- layers ----

local M = {}

M.Linear = class('Linear')
-- Linear(in, out, {bias=, gen=, std=}): weight [out, in], bias [out]
setmetatable(M.Linear, { __index = Module, __call = function(cls, nin, nout, opts)
  opts = opts or {}
  local self = Module.init(setmetatable({}, cls))
  self.in_features, self.out_features = nin, nout
  self:param('weight', weight(opts, nout, nin))
  if opts.bias then self:param('bias', empo.zeros(nout)) end
  return self
end })
-- A weight stored in bf16 (a frozen model's: Trainer:frozen_copy, a LoRA
-- base) is widened to f32 where an op needs f32 (empo.linear widens it
-- itself, for each product): half the memory, f32 arithmetic.
local function f32(w) return w:dtype() == 'bf16' and w:to('f32') or w end
M.f32 = f32

-- weight_bf16 (empo.nn.mixed): the products in bf16, the gradient to the f32 weight
function M.Linear:forward(x)
  local w16 = self.weight_bf16
  if w16 then return empo.linear_bf16(x, self.weight, w16, self.bias) end
  return empo.linear(x, self.weight, self.bias)
end

M.Embedding = class('Embedding')
setmetatable(M.Embedding, { __index = Module, __call = function(cls, n, d, opts)
  opts = opts or {}
  local self = Module.init(setmetatable({}, cls))
  self:param('weight', weight(opts, n, d))
  return self
end })
function M.Embedding:forward(ids)
  local w = self.weight
  if w:dtype() ~= 'bf16' then return empo.embedding(w, ids) end
  local shape = ids:size()                        -- bf16: the rows looked up, then widened
  shape[#shape + 1] = w:size(2)
  return w:index_select(1, ids:reshape(-1)):to('f32'):reshape(unpack(shape))
end

M.RMSNorm = class('RMSNorm')
setmetatable(M.RMSNorm, { __index = Module, __call = function(cls, d, eps)
  local self = Module.init(setmetatable({}, cls))
  self.eps = eps or 1e-6
  self:param('weight', empo.ones(d))
  return self
end })
function M.RMSNorm:forward(x) return empo.rmsnorm(x, self.weight, self.eps) end

-- Children named "0", "1", ... (Hugging Face's layer lists)
M.ModuleList = class('ModuleList')
setmetatable(M.ModuleList, { __index = Module, __call = function(cls, list)
  local self = Module.init(setmetatable({}, cls))
  for i, m in ipairs(list or {}) do self:child(tostring(i - 1), m) end
  self.n = #(list or {})
  return self
end })
function M.ModuleList:at(i) return self[tostring(i - 1)] end

return M
