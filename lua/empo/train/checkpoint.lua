-- empo.train.checkpoint — checkpoints that survive a kill at any moment.
--
--     checkpoint.save(run_dir, { model = m, optimizer = opt, step = s, data_position = pos,
--                                generators = { data = g }, extra = {...}, keep = 2,
--                                files = { 'models/x/tokenizer.json' } })
--     local state = checkpoint.load(run_dir, { model = m, optimizer = opt, generators = { data = g } })
--
-- (empo.train exposes these as save_checkpoint, load_checkpoint,
-- latest_checkpoint and prune_checkpoints.)
--
-- A checkpoint is a directory checkpoint-<step>/ holding the model in the
-- Hugging Face layout, optimizer.safetensors (moments by parameter name)
-- and state.json (step, data position, optimizer step count and
-- hyper-parameters, generator states, user fields), and copies of
-- `files` (the tokenizer: a checkpoint is a model directory that `empo
-- eval` and `empo generate` read). It is written under a
-- temporary name and renamed into place, then the file `latest` (also
-- replaced by rename) points at it: a kill at any moment leaves the
-- previous checkpoint and pointer intact. Not a training loop: the caller
-- decides when to save.
local empo = require 'empo'
local json = require 'empo.io.json'
local fs = require 'empo.io.fs'

local format = string.format
local M = {}

-- The optimizer's slot of parameter p, matched by identity (the optimizer
-- may hold the parameters in another order, e.g. sorted by name).
local function slot_of(opt, p, fname)
  opt._slot = opt._slot or {}
  local j = opt._slot[p.tensor]
  if not j then
    for k, t in ipairs(opt.params) do opt._slot[t] = k end
    j = opt._slot[p.tensor]
  end
  if not j then error(format('%s: parameter %s is not one of the optimizer\'s', fname, p.name), 3) end
  return j
end

function M.save(run_dir, s)
  local step = s.step or error('save_checkpoint: step is required', 2)
  if s.keep ~= nil and (type(s.keep) ~= 'number' or s.keep < 1 or s.keep % 1 ~= 0) then
    error(format('save_checkpoint: keep must be an integer >= 1 (the checkpoints kept), got %s', tostring(s.keep)), 2)
  end
  local name = format('checkpoint-%d', step)
  local final, tmp = run_dir .. '/' .. name, run_dir .. '/.' .. name .. '.tmp'
  fs.remove_tree(tmp)
  s.model:save_pretrained(tmp)
  local state = { step = step, data_position = s.data_position or 0, extra = s.extra, generators = {} }
  if s.optimizer then
    local opt, moments = s.optimizer, {}
    for _, p in ipairs(s.model:named_parameters()) do
      local j = slot_of(opt, p, 'save_checkpoint')
      moments['m.' .. p.name] = opt.m[j]
      moments['v.' .. p.name] = opt.v[j]
    end
    empo.safetensors.save(tmp .. '/optimizer.safetensors', moments)
    state.optimizer = { t = opt.t, lr = opt.lr, beta1 = opt.beta1, beta2 = opt.beta2, eps = opt.eps,
                        weight_decay = opt.weight_decay }
  end
  for k, g in pairs(s.generators or {}) do
    -- exact while below 2^53 (seeds we set and counters of any real run)
    state.generators[k] = json.array{ g:get_state() }
  end
  for _, f in ipairs(s.files or {}) do       -- e.g. the tokenizer: each checkpoint is a usable model directory
    local ok, err = fs.copy_into(tmp, f)
    if not ok then error('save_checkpoint: ' .. err, 2) end
  end
  json.write_file(tmp .. '/state.json', state)
  fs.remove_tree(final)
  if not os.rename(tmp, final) then error(format('save_checkpoint: cannot rename %s to %s', tmp, final), 2) end
  local ok, err = fs.write_atomic(run_dir .. '/latest', name .. '\n')
  if not ok then error('save_checkpoint: ' .. err, 2) end
  if s.keep then M.prune(run_dir, s.keep) end
  return final
end

-- Keeps the newest `keep` (>= 1) checkpoints; never the one `latest` names.
function M.prune(run_dir, keep)
  if type(keep) ~= 'number' or keep < 1 then error(format('prune_checkpoints: keep must be >= 1, got %s', tostring(keep)), 2) end
  local latest = (fs.read_text(run_dir .. '/latest') or ''):gsub('%s+$', '')
  local steps = {}
  for _, name in ipairs(fs.list(run_dir)) do
    local n = name:match('^checkpoint%-(%d+)$')
    if n then steps[#steps + 1] = tonumber(n) end
  end
  table.sort(steps)
  for i = 1, #steps - keep do
    local name = format('checkpoint-%d', steps[i])
    if name ~= latest then fs.remove_tree(run_dir .. '/' .. name) end
  end
end

-- The path of the newest complete checkpoint in run_dir, or nil.
function M.latest(run_dir)
  local name = fs.read_text(run_dir .. '/latest')
  if not name then return nil end
  name = name:gsub('%s+$', '')
  local path = run_dir .. '/' .. name
  if not fs.exists(path .. '/state.json') then
    error(format('checkpoint: %s/latest names %s, which is incomplete or missing', run_dir, name), 2)
  end
  return path
end

-- Restores model, optimizer and generators from the newest checkpoint of
-- run_dir (or from `path` itself when it is a checkpoint directory). A
-- model with a load_pretrained method reads the directory itself.
-- Returns the state table (step, data_position, extra, path) or nil if none.
function M.load(run_dir, s)
  local path = fs.exists(run_dir .. '/state.json') and run_dir or M.latest(run_dir)
  if not path then return nil end
  local state = json.read_file(path .. '/state.json')
  if s.model.load_pretrained then            -- a model that reads its own files (empo.nn.lora's adapters)
    s.model:load_pretrained(path)
  else
    local weights = empo.safetensors.load(path, { dtype = 'f32' })
    s.model:load_state(weights, { source = path })
  end
  if s.optimizer then
    if not state.optimizer then error(format('checkpoint %s holds no optimizer state', path), 2) end
    local moments = empo.safetensors.load(path .. '/optimizer.safetensors')
    local opt = s.optimizer
    for _, p in ipairs(s.model:named_parameters()) do
      local m, v = moments['m.' .. p.name], moments['v.' .. p.name]
      if not m or not v then error(format('checkpoint %s: optimizer state lacks %s', path, p.name), 2) end
      local j = slot_of(opt, p, 'load_checkpoint')
      opt.m[j]:copy_(m)
      opt.v[j]:copy_(v)
    end
    for k, v in pairs(state.optimizer) do opt[k] = v end
  end
  for k, g in pairs(s.generators or {}) do
    local st = state.generators[k]
    if not st then error(format('checkpoint %s: no state for generator %s', path, k), 2) end
    g:set_state(st[1], st[2], st[3])
  end
  state.path = path
  return state
end

return M
