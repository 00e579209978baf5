-- empo.nn — modules over the runtime's ops, with Hugging Face parameter
-- names, so a model's state is exactly a checkpoint's tensor dict.
--
--     local nn = require 'empo.nn'                   -- also empo.nn
--     local lin = nn.Linear(4, 3, { bias = true })
--     local y = lin(x)                               -- same as lin:forward(x)
--     for _, p in ipairs(lin:named_parameters()) do print(p.name, p.tensor) end
--
-- One namespace over the folder: module.lua (the protocol: Module, class),
-- layers.lua (Linear, Embedding, RMSNorm, ModuleList), transformer.lua
-- (Attention, MLP, DecoderBlock, Transformer, KVCache: the one definition
-- of the model, for training and sampling). Loading and saving Hugging
-- Face directories is models.lua (empo.models); LoRA adapters lora.lua and
-- mixed precision mixed.lua (required by name: empo.nn.lora, empo.nn.mixed).
local module = require 'empo.nn.module'
local layers = require 'empo.nn.layers'
local transformer = require 'empo.nn.transformer'

local nn = { Module = module.Module, class = module.class }
for k, v in pairs(layers) do nn[k] = v end
for k, v in pairs(transformer) do nn[k] = v end

return nn
