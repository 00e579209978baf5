-- empo.nn.module — the module protocol every layer and model follows, with
-- Hugging Face parameter names, so a model's state is exactly a
-- checkpoint's tensor dict. The layers themselves are layers.lua and
-- transformer.lua.
--
--     local Linear = nn.class('Linear')            -- a class: instances get Module's methods
--     setmetatable(Linear, { __index = nn.Module, __call = function(cls, ...)
--       local self = nn.Module.init(setmetatable({}, cls))
--       self:param('weight', w)                     -- a named parameter (requires grad)
--       return self
--     end })
--
-- A module owns named parameters and named children in a fixed order;
-- forward(self, ...) computes (m(...) calls it); parameters(),
-- named_parameters(), state(), load_state(), train()/eval() walk the tree.
local empo = require 'empo'

local format = string.format
local M = {}

local Module = {}
Module.__index = Module
Module.__call = function(self, ...) return self:forward(...) end
M.Module = Module

-- A new module class whose instances get Module's methods.
function M.class(name)
  local cls = setmetatable({}, { __index = Module })
  cls.__index = cls
  cls.__call = Module.__call
  cls.__tostring = function(m) return m:describe() end
  cls.name = name
  return cls
end

function Module.init(self)
  rawset(self, '_param_names', {})
  rawset(self, '_child_names', {})
  rawset(self, 'training', true)
  return self
end

function Module:param(name, t)
  if not empo.is_tensor(t) then error(format('%s.param: %s: expected tensor', self.name or 'Module', name), 2) end
  if t:dtype() == 'f32' then t:requires_grad_(true) end   -- (a bf16 matrix is a frozen one: empo.nn.lora)
  table.insert(self._param_names, name)
  self[name] = t
  return t
end

function Module:child(name, m)
  table.insert(self._child_names, name)
  self[name] = m
  return m
end

-- Lists {name = ..., tensor = ...} in a fixed order (own parameters, then
-- children depth first), names dotted from the root: model.layers.0.mlp.up_proj.weight
function Module:named_parameters(prefix, out)
  out = out or {}
  prefix = prefix or ''
  for _, n in ipairs(self._param_names) do out[#out + 1] = { name = prefix .. n, tensor = self[n] } end
  for _, c in ipairs(self._child_names) do self[c]:named_parameters(prefix .. c .. '.', out) end
  return out
end

function Module:parameters()
  local list = {}
  for i, p in ipairs(self:named_parameters()) do list[i] = p.tensor end
  return list
end

-- name -> tensor (the live parameters, not copies)
function Module:state()
  local s = {}
  for _, p in ipairs(self:named_parameters()) do s[p.name] = p.tensor end
  return s
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:named_parameters()) do n = n + p.tensor:numel() end
  return n
end

local function shape_str(t)
  return '[' .. table.concat(t:size(), ' x ') .. ']'
end

-- Copies dict's tensors into the parameters (no autograd). Every parameter
-- must be present with its shape; with strict (default) unknown names are
-- errors too. `source` names the origin in messages.
function Module:load_state(dict, opts)
  opts = opts or {}
  local strict = opts.strict ~= false
  local source = opts.source or 'state'
  local used, missing = {}, {}
  empo.no_grad(function()
    for _, p in ipairs(self:named_parameters()) do
      local src = dict[p.name]
      if src == nil then
        missing[#missing + 1] = p.name
      else
        if shape_str(src) ~= shape_str(p.tensor) then
          error(format('%s: tensor %s has shape %s, the model expects %s', source, p.name, shape_str(src),
                       shape_str(p.tensor)), 0)
        end
        p.tensor:copy_(src)
        used[p.name] = true
      end
    end
  end)
  if #missing > 0 then
    error(format('%s: missing %d tensor(s): %s', source, #missing, table.concat(missing, ', ', 1, math.min(#missing, 8))), 2)
  end
  if strict then
    local extra = {}
    for k in pairs(dict) do if not used[k] then extra[#extra + 1] = k end end
    table.sort(extra)
    if #extra > 0 then
      error(format('%s: %d unexpected tensor(s): %s', source, #extra, table.concat(extra, ', ', 1, math.min(#extra, 8))), 2)
    end
  end
  return self
end

-- Like load_state, but the parameters become dict's tensors themselves
-- (no copy; each keeps whether it requires grad): every parameter must be
-- present with its shape and dtype. Names dict lacks are errors naming
-- `source`; names the model lacks are the caller's to check.
function Module:adopt_state(dict, opts, prefix, missing)
  local source = opts and opts.source or 'state'
  local top = missing == nil
  missing, prefix = missing or {}, prefix or ''
  for _, n in ipairs(self._param_names) do
    local old, new = self[n], dict[prefix .. n]
    if new == nil then
      missing[#missing + 1] = prefix .. n
    elseif shape_str(new) ~= shape_str(old) or new:dtype() ~= old:dtype() then
      error(format('%s: tensor %s is %s %s, the model expects %s %s', source, prefix .. n, new:dtype(),
                   shape_str(new), old:dtype(), shape_str(old)), 0)
    else
      self[n] = new:dtype() == 'f32' and new:requires_grad_(old.requires_grad) or new
      old:free()
    end
  end
  for _, c in ipairs(self._child_names) do self[c]:adopt_state(dict, opts, prefix .. c .. '.', missing) end
  if top and #missing > 0 then
    error(format('%s: missing %d tensor(s): %s', source, #missing, table.concat(missing, ', ', 1, math.min(#missing, 8))), 2)
  end
  return self
end

-- Moves every parameter to device ('cpu' or 'cuda'), each new tensor in
-- place of the old (a weight two modules share stays one tensor; whether
-- it requires grad is kept); returns the module. Gradients are not moved:
-- move a model before its optimizer is built.
function Module:to(device, moved)
  moved = moved or {}
  empo.no_grad(function()
    for _, n in ipairs(self._param_names) do
      local t = self[n]
      if not moved[t] then moved[t] = t:detach():to(device):requires_grad_(t.requires_grad) end
      self[n] = moved[t]
    end
  end)
  for _, c in ipairs(self._child_names) do self[c]:to(device, moved) end
  return self
end

-- Where the parameters live: 'cpu' or 'cuda' (the first parameter's; 'cpu'
-- for a module without any).
function Module:device()
  local p = self:parameters()[1]
  return p and p.device or 'cpu'
end

-- The same of any model: a module's device(), else its first parameter's
-- (a model that only has parameters()), else 'cpu'.
function M.device_of(model)
  if type(model.device) == 'function' then return model:device() end
  local p = type(model.parameters) == 'function' and model:parameters()[1]
  return p and p.device or 'cpu'
end

function Module:train(on)
  if on == nil then on = true end
  self.training = on
  for _, c in ipairs(self._child_names) do self[c]:train(on) end
  return self
end

function Module:eval() return self:train(false) end

function Module:describe()
  return format('%s (%d parameters)', self.name or 'Module', self:num_parameters())
end

return M
