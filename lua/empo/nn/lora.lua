-- empo.nn.lora — low-rank adapters (LoRA) on a frozen base model, in
-- PEFT's layout:
--
--     local model = empo.models.from_pretrained('models/qwen', { dtype = 'bf16' })   -- the frozen base
--     lora.apply(model, { rank = 16, alpha = 32, targets = { 'q_proj', 'v_proj' } })
--     local opt = empo.optim.adamw{ params = lora.parameters(model) }   -- the adapters only
--     local ref = lora.base_view(model)          -- the base (adapters off): no copy
--     lora.save(model, 'runs/x/adapter')         -- adapter_config.json + adapter_model.safetensors
--     lora.load(model, 'runs/x/adapter')         -- (applies the adapter's settings when needed)
--     lora.merge(model)                          -- back to plain Linear layers, W + s B A
--
-- A targeted projection y = x W^T (+ b) becomes y = x W^T (+ b) + s (x A^T) B^T,
-- A [r, in], B [out, r], s = alpha / r (alpha / sqrt(r) with use_rslora).
-- B starts at zero, so a fresh adapter's model is its base exactly. The
-- base weights (W, b, norms, embedding) never require grad; with
-- from_pretrained's dtype='bf16' the matrices are stored in bf16 and
-- widened for each product (f32 arithmetic).
local empo = require 'empo'
local module = require 'empo.nn.module'
local layers = require 'empo.nn.layers'
local json = require 'empo.io.json'
local fs = require 'empo.io.fs'

local Module, class, Linear, f32 = module.Module, module.class, layers.Linear, layers.f32
local format = string.format

local M = {}

-- the projections a decoder block has, and the block part each is in
M.PARTS = { q_proj = 'self_attn', k_proj = 'self_attn', v_proj = 'self_attn', o_proj = 'self_attn',
            gate_proj = 'mlp', up_proj = 'mlp', down_proj = 'mlp' }
M.ALL = { 'q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj' }
M.DEFAULTS = { rank = 16, alpha = 32, dropout = 0, targets = M.ALL, rslora = false }

-- PEFT's names: the adapter file's tensors are the model's parameter names
-- under this prefix (the "default" adapter's name left out, as PEFT saves).
M.PREFIX = 'base_model.model.'

-- ---- the adapted layer ----

local LoraLinear = class('LoraLinear')
M.LoraLinear = LoraLinear

-- LoraLinear(base, o): base (a Linear) keeps its weight and bias, under
-- the same names (so a base checkpoint still loads), frozen; lora_A
-- [r, in] is uniform in +-1/sqrt(in) (PEFT's default, Kaiming's with
-- a = sqrt(5)) from generator o.gen, lora_B [out, r] zero.
setmetatable(LoraLinear, { __index = Module, __call = function(cls, base, o)
  local self = Module.init(setmetatable({}, cls))
  local nin, nout = base.weight:size(2), base.weight:size(1)
  self.in_features, self.out_features = nin, nout
  self:param('weight', base.weight)
  if base.bias then self:param('bias', base.bias) end
  for _, n in ipairs(self._param_names) do
    if self[n]:dtype() == 'f32' then self[n]:requires_grad_(false) end
  end
  local bound = 1 / math.sqrt(nin)
  local u = o.gen:rand(o.rank, nin)
  local a = Linear(nin, o.rank, { empty = 'f32' })
  empo.no_grad(function() a.weight:copy_(u * (2 * bound) - bound) end)
  u:free()
  local b = Linear(o.rank, nout, { empty = 'f32' })
  empo.no_grad(function() b.weight:fill_(0) end)
  local device = self.weight.device   -- (a model already on the GPU gets its adapters there)
  if device ~= 'cpu' then a:to(device); b:to(device) end
  self:child('lora_A', a)
  self:child('lora_B', b)
  self.rank, self.scaling, self.dropout = o.rank, o.scaling, o.dropout
  self.gen = o.gen
  self.enabled = true
  return self
end })

-- x with each element zeroed with probability p and the rest scaled by
-- 1/(1-p) (inverted dropout), from the adapter's generator
local function dropout(x, p, gen)
  local keep = gen:rand(unpack(x:size())):lt(1 - p):float()
  if x.device ~= 'cpu' then keep = keep:to(x.device) end
  return x * keep * (1 / (1 - p))
end

function LoraLinear:forward(x)
  local y = empo.linear(x, self.weight, self.bias)
  if not self.enabled then return y end
  local xa = (self.training and self.dropout > 0) and dropout(x, self.dropout, self.gen) or x
  -- the scaling on the rank-r side: a product by a number keeps its input
  -- for backward, and [tokens, r] is what this costs, not [tokens, out]
  -- (2.6x the plan's activations at 0.5B before)
  return y + self.lora_B(self.lora_A(xa) * self.scaling)
end

-- W + s B A [out, in] in f32 (a new tensor, no autograd)
function LoraLinear:merged_weight()
  return empo.no_grad(function()
    local ba = empo.matmul(self.lora_B.weight, self.lora_A.weight)
    local sba = ba * self.scaling
    local w = f32(self.weight) + sba     -- a new tensor: the caller owns it
    ba:free(); sba:free()
    return w
  end)
end

-- ---- settings ----

-- fields besides the defaults': from (an adapter directory to start
-- from), seed (lora_A's stream), base (the base model's path, recorded in
-- adapter_config.json), scaling (derived: a settings table passed again)
M.OTHER_FIELDS = { from = true, seed = true, base = true, scaling = true }

local function is_list(t) return type(t) == 'table' and #t > 0 end

-- o (a recipe's `lora` table, or an adapter config's settings) with the
-- defaults filled in, checked; errors name `where`.
function M.settings(o, where)
  where = where or 'lora'
  if type(o) ~= 'table' then error(format('%s: expected a table of LoRA settings, got %s', where, type(o)), 2) end
  local s = {}
  for k, v in pairs(M.DEFAULTS) do
    if o[k] == nil then s[k] = v else s[k] = o[k] end
  end
  for k in pairs(o) do
    if M.DEFAULTS[k] == nil and not M.OTHER_FIELDS[k] then
      error(format('%s: unknown field %s (fields: rank, alpha, dropout, targets, rslora, seed, from)', where,
                   tostring(k)), 2)
    end
  end
  s.from, s.seed, s.base = o.from, o.seed, o.base
  if type(s.rank) ~= 'number' or s.rank < 1 or s.rank % 1 ~= 0 then
    error(format('%s: rank must be a whole number >= 1, got %s', where, tostring(s.rank)), 2)
  end
  if type(s.alpha) ~= 'number' or not (s.alpha > 0) then
    error(format('%s: alpha must be a number > 0, got %s', where, tostring(s.alpha)), 2)
  end
  if type(s.dropout) ~= 'number' or not (s.dropout >= 0 and s.dropout < 1) then
    error(format('%s: dropout must be in [0, 1), got %s', where, tostring(s.dropout)), 2)
  end
  if type(s.targets) == 'string' then s.targets = { s.targets } end
  if not is_list(s.targets) then error(format('%s: targets must be a list of projection names', where), 2) end
  local seen, targets = {}, {}
  for _, t in ipairs(s.targets) do
    if not M.PARTS[t] then
      error(format('%s: target %s is not a projection of a decoder block (%s)', where, tostring(t),
                   table.concat(M.ALL, ', ')), 2)
    end
    if not seen[t] then seen[t], targets[#targets + 1] = true, t end
  end
  table.sort(targets)     -- one order, whatever the recipe's: files and parameter lists stay stable
  s.targets = targets
  if type(s.rslora) ~= 'boolean' then error(format('%s: rslora must be true or false', where), 2) end
  s.scaling = s.rslora and s.alpha / math.sqrt(s.rank) or s.alpha / s.rank
  return s
end

-- ---- the model ----

-- (block, part, name) of every targeted projection, layer by layer
local function each_target(model, targets, f)
  for l = 1, model.config.num_hidden_layers do
    local block = model.model.layers:at(l)
    for _, name in ipairs(targets) do f(l, block[M.PARTS[name]], name) end
  end
end

-- Puts adapters on the model's targeted projections (in place; returns
-- the model). Every base parameter stops requiring grad. opts: rank,
-- alpha, dropout, targets, rslora (M.DEFAULTS), seed (lora_A's stream).
function M.apply(model, opts)
  if model.lora then error('lora.apply: the model has adapters already', 2) end
  local s = M.settings(opts, 'lora')
  for _, p in ipairs(model:parameters()) do
    if p:dtype() == 'f32' then p:requires_grad_(false) end
  end
  local gen = empo.Generator(opts.seed or 0, 7)
  each_target(model, s.targets, function(_, part, name)
    part[name] = LoraLinear(part[name], { rank = s.rank, scaling = s.scaling, dropout = s.dropout, gen = gen })
  end)
  model.lora = s
  model.decoder_spec = M.decoder_spec
  return model
end

function M.has(model) return type(model) == 'table' and model.lora ~= nil end

-- {name, tensor} of the adapters' parameters (the trainable ones), in the
-- model's order
function M.named_parameters(model)
  local out = {}
  for _, p in ipairs(model:named_parameters()) do
    if p.name:match('%.lora_[AB]%.weight$') then out[#out + 1] = p end
  end
  return out
end

function M.parameters(model)
  local list = {}
  for i, p in ipairs(M.named_parameters(model)) do list[i] = p.tensor end
  return list
end

-- Runs f(...) with every adapter switched off (the base model) and back on.
function M.without_adapters(model, f, ...)
  local function set(on)
    each_target(model, model.lora.targets, function(_, part, name) part[name].enabled = on end)
  end
  set(false)
  local out = { pcall(f, ...) }
  set(true)
  if not out[1] then error(out[2], 0) end
  return unpack(out, 2)
end

-- A model object that is the base (adapters off) and shares every tensor
-- with the adapted model: the KL reference and the guard's drift scorer
-- without a copy. A shallow copy of the module tree whose adapted
-- projections are plain Linear layers over the same base weight and bias.
local function shallow(m)
  local c = setmetatable({}, getmetatable(m))
  for k, v in pairs(m) do c[k] = v end
  for _, n in ipairs(m._child_names) do c[n] = shallow(m[n]) end
  return c
end

function M.base_view(model)
  local view = shallow(model)
  view.lora, view.decoder_spec = nil, nil
  each_target(view, model.lora.targets, function(_, part, name)
    local a = part[name]
    local lin = Module.init(setmetatable({}, Linear))
    lin.in_features, lin.out_features = a.in_features, a.out_features
    lin._param_names[1], lin.weight = 'weight', a.weight
    if a.bias then lin._param_names[2], lin.bias = 'bias', a.bias end
    part[name] = lin
  end)
  return view
end

-- The model as the C decoder takes it (Transformer:decoder_spec, with each
-- adapter's A and B by projection slot: q k v o gate up down = 0 .. 6),
-- or nil when the model is not the stock one with stock adapters: the
-- sampler then runs the Lua model. Set on each model apply() adapts.
local SLOT = {}
for i, name in ipairs(M.ALL) do SLOT[name] = i - 1 end   -- (M.ALL is in the decoder's EMPO_LORA_* order)
local stock_forward = LoraLinear.forward

function M.decoder_spec(model)
  if not model.lora or LoraLinear.forward ~= stock_forward then return nil end
  local spec = M.base_view(model):decoder_spec()
  if not spec then return nil end
  local stock = true
  each_target(model, model.lora.targets, function(l, part, name)
    local a = part[name]
    if getmetatable(a) ~= LoraLinear or rawget(a, 'forward') ~= nil or not a.enabled then   -- (no dropout: sampling)
      stock = false
      return
    end
    local w = spec.layer[l]
    w.lora = w.lora or {}
    w.lora[SLOT[name]] = { a = a.lora_A.weight, b = a.lora_B.weight }
  end)
  if not stock then return nil end
  spec.lora_scaling = model.lora.scaling
  return spec
end

-- Every adapted projection back to a plain Linear with W + s B A (f32):
-- the merged model (then an ordinary checkpoint: save_pretrained).
function M.merge(model)
  each_target(model, model.lora.targets, function(_, part, name)
    local a = part[name]
    local lin = Module.init(setmetatable({}, Linear))
    lin.in_features, lin.out_features = a.in_features, a.out_features
    lin:param('weight', a:merged_weight())
    if a.bias then lin:param('bias', a.bias) end
    part[name] = lin
  end)
  model.lora, model.decoder_spec = nil, nil
  return model
end

-- The model's adapters as checkpoints (empo.train.checkpoint) and the
-- trainer take a model: save_pretrained writes the adapter directory,
-- load_pretrained reads one, named_parameters lists the adapters (whose
-- AdamW moments a checkpoint keeps). A checkpoint of a LoRA run is its
-- adapter, not a copy of the base.
function M.adapters(model)
  return {
    lora = model.lora,
    save_pretrained = function(_, dir) return M.save(model, dir) end,
    load_pretrained = function(_, dir) return M.load_weights(model, dir) end,
    named_parameters = function() return M.named_parameters(model) end,
  }
end

-- ---- PEFT's files ----

-- adapter_config.json's fields, as PEFT (0.x, LoraConfig) writes them
function M.adapter_config(s, base)
  return {
    peft_type = 'LORA', task_type = 'CAUSAL_LM', r = s.rank, lora_alpha = s.alpha, lora_dropout = s.dropout,
    target_modules = json.array(s.targets), use_rslora = s.rslora, use_dora = false, bias = 'none',
    fan_in_fan_out = false, inference_mode = true, init_lora_weights = true,
    base_model_name_or_path = base or json.null, revision = json.null, modules_to_save = json.null,
    layers_to_transform = json.null, layers_pattern = json.null, rank_pattern = {},
    alpha_pattern = {},
  }
end

-- The adapter file's tensors: PEFT's name -> tensor
function M.state(model)
  local s = {}
  for _, p in ipairs(M.named_parameters(model)) do s[M.PREFIX .. p.name] = p.tensor end
  return s
end

-- Writes dir/adapter_config.json and dir/adapter_model.safetensors (each
-- atomically). opts.base: the base model's path, recorded as PEFT does.
function M.save(model, dir, opts)
  if not M.has(model) then error('lora.save: the model has no adapters', 2) end
  local ok, err = fs.make_dirs(dir)
  if not ok then error('lora.save: ' .. err, 2) end
  json.write_file(dir .. '/adapter_config.json', M.adapter_config(model.lora, opts and opts.base or model.lora.base))
  empo.safetensors.save(dir .. '/adapter_model.safetensors', M.state(model), { format = 'pt' })
  return dir
end

-- The settings of an adapter directory's adapter_config.json, refusing
-- what empo does not do (DoRA, fan_in_fan_out, trained biases, per-module
-- ranks, layer subsets) by name.
function M.read_config(dir)
  local path = dir .. '/adapter_config.json'
  if not fs.exists(path) then error(format('%s not found (is %s a PEFT adapter directory?)', path, dir), 2) end
  local c = json.read_file(path)
  if type(c) ~= 'table' then error(format('%s: expected a JSON object', path), 2) end
  if c.peft_type ~= 'LORA' then error(format('%s: peft_type %s is not LORA', path, tostring(c.peft_type)), 2) end
  local function empty(v) return v == nil or v == json.null or (type(v) == 'table' and next(v) == nil) end
  local refuse = { use_dora = c.use_dora == true, fan_in_fan_out = c.fan_in_fan_out == true,
                   bias = c.bias ~= nil and c.bias ~= 'none', rank_pattern = not empty(c.rank_pattern),
                   alpha_pattern = not empty(c.alpha_pattern), layers_to_transform = not empty(c.layers_to_transform),
                   modules_to_save = not empty(c.modules_to_save) }
  for _, k in ipairs({ 'use_dora', 'fan_in_fan_out', 'bias', 'rank_pattern', 'alpha_pattern', 'layers_to_transform',
                       'modules_to_save' }) do
    if refuse[k] then error(format('%s: %s = %s is not supported by empo', path, k, json.encode(c[k], { compact = true })), 2) end
  end
  local targets = c.target_modules
  if type(targets) == 'string' then
    if not M.PARTS[targets] then
      error(format('%s: target_modules %q (a regular expression) is not supported: list the projections', path,
                   targets), 2)
    end
    targets = { targets }
  end
  local ok, s = pcall(M.settings, { rank = c.r, alpha = c.lora_alpha, dropout = c.lora_dropout or 0,
                                    targets = targets, rslora = c.use_rslora == true }, path)
  if not ok then error(s, 2) end
  return s, c
end

-- Loads a PEFT adapter directory into the model: applies its settings
-- when the model has no adapters (opts.seed, as apply's), else checks
-- they are the model's; every adapter tensor must be present with its
-- shape, and the file may hold no other. Returns the model.
function M.load(model, dir, opts)
  local s = M.read_config(dir)
  if not M.has(model) then
    s.seed = opts and opts.seed
    M.apply(model, s)
  else
    local have = model.lora
    if have.rank ~= s.rank or have.scaling ~= s.scaling or table.concat(have.targets, ',') ~= table.concat(s.targets, ',') then
      error(format('%s: rank %d, scaling %g, targets %s; the model\'s adapters have rank %d, scaling %g, targets %s',
                   dir, s.rank, s.scaling, table.concat(s.targets, ','), have.rank, have.scaling,
                   table.concat(have.targets, ',')), 2)
    end
  end
  M.load_weights(model, dir)
  return model
end

-- The adapter tensors of dir/adapter_model.safetensors into the model's
-- adapters (their settings already the model's).
function M.load_weights(model, dir)
  local path = dir .. '/adapter_model.safetensors'
  if not fs.exists(path) then error(format('%s not found', path), 2) end
  local f = empo.safetensors.open(path)
  local want, missing = {}, {}
  empo.no_grad(function()
    for _, p in ipairs(M.named_parameters(model)) do
      local name = M.PREFIX .. p.name
      want[name] = true
      if not f:has(name) then
        missing[#missing + 1] = name
      else
        local info = f:info(name)
        if table.concat(info.shape, 'x') ~= table.concat(p.tensor:size(), 'x') then
          error(format('%s: %s is [%s], the model expects [%s]', path, name, table.concat(info.shape, ' x '),
                       table.concat(p.tensor:size(), ' x ')), 0)
        end
        local t = f:get(name, 'f32')
        p.tensor:copy_(t)
        t:free()
      end
    end
  end)
  if #missing > 0 then
    error(format('%s: missing %d tensor(s): %s', path, #missing, table.concat(missing, ', ', 1, math.min(#missing, 4))), 2)
  end
  local extra = {}
  for _, n in ipairs(f:names()) do if not want[n] then extra[#extra + 1] = n end end
  f:close()
  if #extra > 0 then
    table.sort(extra)
    error(format('%s: %d tensor(s) this model has no adapter for: %s', path, #extra,
                 table.concat(extra, ', ', 1, math.min(#extra, 4))), 2)
  end
end

return M
