-- cli.merge — the `empo merge` command: a LoRA adapter directory (PEFT's
-- layout: one empo wrote, or one made elsewhere) merged into its base
-- model, written as a plain Hugging Face checkpoint (f32) with the base's
-- tokenizer, which any tool loads without PEFT. Part of the command, not
-- of the library (empo.nn.lora does the work).
--
--     empo merge models/qwen runs/x/adapter models/qwen-x
local empo = require 'empo'
local lora = require 'empo.nn.lora'

local USAGE = [[
usage: empo merge BASE_DIR ADAPTER_DIR OUT_DIR

Loads the model in BASE_DIR (config.json, safetensors) in f32, applies the
LoRA adapter in ADAPTER_DIR (adapter_config.json, adapter_model.safetensors),
folds each update into its weight (W + alpha/r B A) and writes OUT_DIR
(config.json, model.safetensors, and BASE_DIR's tokenizer files). OUT_DIR
must not hold a model already.
]]

return function(...)
  local args = { ... }
  if args[1] == '-h' or args[1] == '--help' then io.write(USAGE); return 0 end
  if #args ~= 3 then io.stderr:write(USAGE); return 2 end
  local base, adapter, out = args[1], args[2], args[3]
  if empo.fs.exists(out .. '/model.safetensors') or empo.fs.exists(out .. '/config.json') then
    io.stderr:write(string.format('empo merge: %s holds a model already; choose a new directory\n', out))
    return 1
  end
  local ok, err = pcall(function()
    local model = empo.models.from_pretrained(base)
    lora.load(model, adapter)
    lora.merge(model)
    model:save_pretrained(out)
    for _, f in ipairs({ 'tokenizer.json', 'tokenizer_config.json' }) do
      if empo.fs.exists(base .. '/' .. f) then
        local copied, why = empo.fs.copy_into(out, base .. '/' .. f)
        if not copied then error(why, 0) end
      end
    end
  end)
  if not ok then io.stderr:write('empo merge: ', tostring(err), '\n'); return 1 end
  print(string.format('%s + %s -> %s', base, adapter, out))
  return 0
end
