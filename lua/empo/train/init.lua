-- empo.train — what every training loop needs: the causal-LM loss with a
-- loss mask, learning-rate schedules, and checkpoints that survive a kill
-- at any moment.
--
--     local loss = train.lm_loss(model, ids, mask)       -- mask: which targets count
--     local lr_at = train.schedule.cosine{ lr = 3e-4, warmup = 100, total = 5000 }
--     train.save_checkpoint(run_dir, { model = m, optimizer = opt, step = s,
--                                      data_position = pos, generators = { data = g } })
--     local ck = train.load_checkpoint(run_dir, { model = m, optimizer = opt, generators = { data = g } })
local ffi = require 'ffi'
local empo = require 'empo'
local json = require 'empo.io.json'

local format = string.format
local M = {}

-- Mean negative log-likelihood of ids[:, 2..T] given ids[:, 1..T-1], over
-- the target positions where mask (f32/u8 [B, T], aligned with ids) is
-- nonzero; a nil mask counts every target. Returns loss (scalar, with
-- autograd) and the number of target tokens.
function M.lm_loss(model, ids, mask)
  local B, T = ids:size(1), ids:size(2)
  if T < 2 then error(format('lm_loss: sequences of length %d have no next token to predict', T), 2) end
  local logits = model:forward(ids:narrow(2, 1, T - 1))                 -- [B, T-1, V]
  local V = logits:size(3)
  local targets = ids:narrow(2, 2, T - 1):reshape(B * (T - 1))
  local logp = empo.logprob_entropy(logits:reshape(B * (T - 1), V), targets)
  if mask == nil then
    return -logp:mean(), B * (T - 1)
  end
  local m = mask:narrow(2, 2, T - 1):reshape(B * (T - 1))
  if m:dtype() ~= 'f32' then m = m:to('f32') end
  local count = m:sum():item()
  if count == 0 then error('lm_loss: the mask selects no target token', 2) end
  return -(logp * m):sum() / count, count
end

-- ---- learning-rate schedules: plain functions step -> lr (steps from 1) ----
M.schedule = {}

function M.schedule.constant(cfg)
  local lr = type(cfg) == 'table' and cfg.lr or cfg
  return function() return lr end
end

local function warmup_then(cfg, decay)
  local lr, warmup, total = cfg.lr, cfg.warmup or 0, cfg.total
  if type(lr) ~= 'number' or type(total) ~= 'number' then error('schedule: lr and total are required numbers', 3) end
  local min_lr = cfg.min_lr or 0
  return function(step)
    if step <= warmup then return lr * step / math.max(warmup, 1) end
    local p = math.min(1, (step - warmup) / math.max(total - warmup, 1))
    return min_lr + (lr - min_lr) * decay(p)
  end
end

function M.schedule.linear(cfg) return warmup_then(cfg, function(p) return 1 - p end) end
function M.schedule.cosine(cfg) return warmup_then(cfg, function(p) return 0.5 * (1 + math.cos(math.pi * p)) end) end

-- ---- checkpoints ----
-- A checkpoint is a directory checkpoint-<step>/ holding the model in the
-- Hugging Face layout, optimizer.safetensors (moments by parameter name)
-- and state.json (step, data position, optimizer step count and
-- hyper-parameters, generator states, user fields). It is written under a
-- temporary name and renamed into place, then the file `latest` (also
-- replaced by rename) points at it: a kill at any moment leaves the
-- previous checkpoint and pointer intact.

pcall(ffi.cdef, 'int rename(const char *old, const char *new);')

local function rmtree(path)
  -- only ever called on directories this module created (names it chose)
  os.execute(format("rm -rf '%s'", path:gsub("'", "'\\''")))
end

local function read_text(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('*a')
  f:close()
  return s
end

local function write_text_atomic(path, text)
  local tmp = path .. '.tmp'
  local f = assert(io.open(tmp, 'wb'))
  f:write(text)
  f:close()
  assert(os.rename(tmp, path))
end

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

function M.save_checkpoint(run_dir, s)
  local step = s.step or error('save_checkpoint: step is required', 2)
  local name = format('checkpoint-%d', step)
  local final, tmp = run_dir .. '/' .. name, run_dir .. '/.' .. name .. '.tmp'
  rmtree(tmp)
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
  json.write_file(tmp .. '/state.json', state)
  rmtree(final)
  if ffi.C.rename(tmp, final) ~= 0 then error(format('save_checkpoint: cannot rename %s to %s', tmp, final), 2) end
  write_text_atomic(run_dir .. '/latest', name .. '\n')
  if s.keep then M.prune_checkpoints(run_dir, s.keep) end
  return final
end

-- Keeps the newest `keep` checkpoints.
function M.prune_checkpoints(run_dir, keep)
  local steps = {}
  local p = io.popen(format("ls -1 '%s' 2>/dev/null", run_dir:gsub("'", "'\\''")))
  for line in p:lines() do
    local n = line:match('^checkpoint%-(%d+)$')
    if n then steps[#steps + 1] = tonumber(n) end
  end
  p:close()
  table.sort(steps)
  for i = 1, #steps - keep do rmtree(format('%s/checkpoint-%d', run_dir, steps[i])) end
end

-- The path of the newest complete checkpoint in run_dir, or nil.
function M.latest_checkpoint(run_dir)
  local name = read_text(run_dir .. '/latest')
  if not name then return nil end
  name = name:gsub('%s+$', '')
  local path = run_dir .. '/' .. name
  if not read_text(path .. '/state.json') then
    error(format('checkpoint: %s/latest names %s, which is incomplete or missing', run_dir, name), 2)
  end
  return path
end

-- Restores model, optimizer and generators from the newest checkpoint of
-- run_dir (or from `path` itself when it is a checkpoint directory).
-- Returns the state table (step, data_position, extra) or nil if none.
function M.load_checkpoint(run_dir, s)
  local path = read_text(run_dir .. '/state.json') and run_dir or M.latest_checkpoint(run_dir)
  if not path then return nil end
  local state = json.read_file(path .. '/state.json')
  local weights = empo.safetensors.load(path, { dtype = 'f32' })
  s.model:load_state(weights, { source = path })
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
