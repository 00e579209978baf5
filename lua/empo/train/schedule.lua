-- empo.train.schedule — learning-rate schedules: plain functions step -> lr
-- (steps count from 1), so a recipe may pass any function of its own.
--
--     local lr_at = empo.train.schedule.cosine{ lr = 3e-4, warmup = 100, total = 5000, min_lr = 0 }
--     opt.lr = lr_at(step)
local M = {}

function M.constant(cfg)
  local lr = type(cfg) == 'table' and cfg.lr or cfg
  return function() return lr end
end

-- Linear warmup from 0 over `warmup` steps, then decay(p) of the way from
-- lr to min_lr, p the fraction of the remaining steps done.
local function warmup_then(cfg, decay)
  local lr, warmup, total = cfg.lr, cfg.warmup or 0, cfg.total
  if type(lr) ~= 'number' or type(total) ~= 'number' then error('schedule: lr and total are required numbers', 3) end
  local min_lr = cfg.min_lr or 0
  local function finite(x) return type(x) == 'number' and x == x and x ~= math.huge and x ~= -math.huge end
  if not (finite(lr) and lr >= 0) then error('schedule: lr must be a finite number >= 0, got ' .. tostring(lr), 3) end
  if not (finite(min_lr) and min_lr >= 0) then error('schedule: min_lr must be a finite number >= 0, got ' .. tostring(min_lr), 3) end
  if not (finite(warmup) and warmup >= 0 and warmup % 1 == 0) then
    error('schedule: warmup must be an integer >= 0, got ' .. tostring(warmup), 3)
  end
  if not (finite(total) and total >= 1) then error('schedule: total must be a number >= 1, got ' .. tostring(total), 3) end
  return function(step)
    if step <= warmup then return lr * step / math.max(warmup, 1) end
    local p = math.min(1, (step - warmup) / math.max(total - warmup, 1))
    return min_lr + (lr - min_lr) * decay(p)
  end
end

function M.linear(cfg) return warmup_then(cfg, function(p) return 1 - p end) end
function M.cosine(cfg) return warmup_then(cfg, function(p) return 0.5 * (1 + math.cos(math.pi * p)) end) end

return M
