-- empo.rl.loss (empo.loss) — the policy objective of one update: the clipped
-- surrogate of PPO as GRPO, EMPO and GSPO use it, with an optional KL term
-- to a frozen reference, an entropy bonus and every loss aggregation of
-- verl / TRL. The log-probs come in as tensors (autograd through `logp`);
-- computing them from a model is empo.rl.logprob's job.
--
--     local loss = empo.loss.grpo{ clip_low = 0.2, clip_high = 0.28, agg = 'token-mean' }
--     local value, stats = loss{
--       logp = logp,           -- [S, T] current policy's log-probs of the completion tokens (requires grad)
--       old_logp = old,        -- [S, T] the sampler's (the old policy's)
--       adv = adv,             -- [S] one advantage per completion
--       mask = mask,           -- [S, T] 1 for a completion token, 0 for padding / masked
--       ref_logp = ref,        -- [S, T] frozen reference (only when kl > 0)
--       entropy = ent,         -- [S, T] per-token entropy (only when entropy > 0)
--     }
--     value:backward()         -- stats: clip_frac, clip_low_frac, clip_high_frac, dual_frac, approx_kl, kl, ratio_mean
--
-- Per token t of completion i, with r = exp(logp - old_logp):
--   GRPO (ratio = 'token'):     r_t
--   GSPO (ratio = 'sequence'):  the sequence ratio s_i = exp(mean_t (logp - old_logp)), written as
--                               exp(logp - sg(logp) + sg(log s_i)) (verl's form: value s_i, gradient s_i per token)
--   pg_t   = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))
--   dual clip (clip_c = c > 1): pg_t = min(pg_t, -A c) where A < 0
--   loss_t = pg_t + kl * k3(ref, logp) - entropy * H_t,   k3 = exp(ref - logp) - (ref - logp) - 1
-- then aggregated over the masked tokens:
--   'token-mean'               sum(loss * mask) / sum(mask)
--   'seq-mean-token-mean'      mean over completions of their token mean
--   'seq-mean-token-sum'       mean over completions of their token sum
--   'seq-mean-token-sum-norm'  sum(loss * mask) / (S * norm)   (Dr.GRPO; norm: a constant, e.g. max_new_tokens)
local empo = require 'empo'
local configurable = require 'empo.rl.configurable'

local type, error, pairs, tostring, format = type, error, pairs, tostring, string.format

local M = {}

M.AGGREGATIONS = { ['token-mean'] = true, ['seq-mean-token-mean'] = true, ['seq-mean-token-sum'] = true,
                   ['seq-mean-token-sum-norm'] = true }
local DEFAULTS = { clip_low = 0.2, clip_high = 0.2, clip_c = false, ratio = 'token', kl = 0, entropy = 0,
                   agg = 'token-mean', norm = false }
local LOG_RATIO_LIMIT = 20     -- log-ratios are clamped to +-20 before exp (as verl): no inf from a stale token
local KL_LIMIT = 10            -- and the k3 estimate to +-10

local function check_options(name, opts)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do
    if DEFAULTS[k] == nil then
      error(format("%s: unknown option '%s' (options: agg, clip_c, clip_high, clip_low, entropy, kl, norm, ratio)",
                   name, tostring(k)), 3)
    end
    o[k] = v
  end
  local function number(k, ok)
    if type(o[k]) ~= 'number' or not ok(o[k]) then
      error(format('%s: %s must be %s, got %s', name, k, ok == nil and 'a number' or 'a valid number', tostring(o[k])), 3)
    end
  end
  number('clip_low', function(v) return v >= 0 and v < 1 end)
  number('clip_high', function(v) return v >= 0 end)
  number('kl', function(v) return v >= 0 end)
  number('entropy', function(v) return v >= 0 end)
  if o.clip_c ~= false then number('clip_c', function(v) return v > 1 end) end
  if o.ratio ~= 'token' and o.ratio ~= 'sequence' then
    error(format("%s: ratio must be 'token' (GRPO) or 'sequence' (GSPO), got %s", name, tostring(o.ratio)), 3)
  end
  if not M.AGGREGATIONS[o.agg] then
    error(format("%s: agg must be 'token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum' or " ..
                 "'seq-mean-token-sum-norm', got %s", name, tostring(o.agg)), 3)
  end
  if o.agg == 'seq-mean-token-sum-norm' then number('norm', function(v) return v > 0 end) end
  return o
end

local function check_batch(name, b, o)
  if type(b) ~= 'table' then error(name .. ': expected a batch table { logp, old_logp, adv, mask, ... }', 3) end
  for _, k in ipairs({ 'logp', 'old_logp', 'adv', 'mask' }) do
    if not empo.is_tensor(b[k]) then error(format('%s: batch.%s must be a tensor', name, k), 3) end
  end
  local S, T = b.logp:size(1), b.logp:dim() == 2 and b.logp:size(2) or -1
  if b.logp:dim() ~= 2 then error(format('%s: batch.logp must be [S, T], got %s', name, b.logp:describe()), 3) end
  for _, k in ipairs({ 'old_logp', 'mask', o.kl > 0 and 'ref_logp' or nil, o.entropy > 0 and 'entropy' or nil }) do
    local t = b[k]
    if not empo.is_tensor(t) then error(format('%s: batch.%s must be a tensor (needed by the options)', name, k), 3) end
    if t:dim() ~= 2 or t:size(1) ~= S or t:size(2) ~= T then
      error(format('%s: batch.%s is %s, expected [%d, %d] like logp', name, k, t:describe(), S, T), 3)
    end
  end
  if b.adv:numel() ~= S then error(format('%s: batch.adv has %d values for %d completions', name, b.adv:numel(), S), 3) end
  return S, T
end

-- sum(x * mask) over everything, as the aggregation asks
local function aggregate(o, x, mask, S)
  local masked = x * mask
  if o.agg == 'token-mean' then
    return masked:sum() / math.max(mask:sum():item(), 1)
  elseif o.agg == 'seq-mean-token-sum-norm' then
    return masked:sum() / (S * o.norm)
  end
  local per_seq = masked:sum(2)                                 -- [S]
  if o.agg == 'seq-mean-token-mean' then per_seq = per_seq / mask:sum(2):clamp(1, math.huge) end
  return per_seq:mean()
end

local function objective(name, o, b)
  local S, T = check_batch(name, b, o)
  local mask = b.mask:dtype() == 'f32' and b.mask or b.mask:to('f32')
  local adv = b.adv:reshape(S, 1)
  local diff = b.logp - b.old_logp                              -- log r_t, [S, T]
  local log_ratio
  if o.ratio == 'sequence' then                                 -- GSPO
    local log_seq = (diff * mask):sum(2, true) / mask:sum(2, true):clamp(1, math.huge)
    log_ratio = b.logp - b.logp:detach() + log_seq:detach()
  else
    log_ratio = diff
  end
  local ratio = log_ratio:clamp(-LOG_RATIO_LIMIT, LOG_RATIO_LIMIT):exp()
  local pg1 = -adv * ratio
  local pg2 = -adv * ratio:clamp(1 - o.clip_low, 1 + o.clip_high)
  local pg = empo.maximum(pg1, pg2)
  local neg = b.adv:reshape(S):lt(0):to('f32'):reshape(S, 1)
  local stats = {}
  if o.clip_c then                                              -- dual clip for negative advantages
    local pg3 = -adv * o.clip_c
    local dual = empo.minimum(pg, pg3)
    pg = empo.where(neg:expand(S, T), dual, pg)
    local hit = (pg3:expand(S, T) - pg:detach()):eq(0):to('f32') * neg * mask
    stats.dual_frac = hit:sum():item() / math.max(mask:sum():item(), 1)
  end
  local per_token = pg
  if o.kl > 0 then
    local d = b.ref_logp - b.logp
    local k3 = (d:exp() - d - 1):clamp(-KL_LIMIT, KL_LIMIT)
    per_token = per_token + k3 * o.kl
    stats.kl = ((k3:detach() * mask):sum() / math.max(mask:sum():item(), 1)):item()
  end
  if o.entropy > 0 then per_token = per_token - b.entropy * o.entropy end
  local value = aggregate(o, per_token, mask, S)
  -- what the update did, over the masked tokens (no gradient)
  local n = math.max(mask:sum():item(), 1)
  local r = ratio:detach()
  local low = ((r:lt(1 - o.clip_low):to('f32') * neg) * mask):sum():item()
  local high = ((r:gt(1 + o.clip_high):to('f32') * (1 - neg)) * mask):sum():item()
  stats.clip_low_frac, stats.clip_high_frac = low / n, high / n
  stats.clip_frac = (low + high) / n
  stats.approx_kl = ((-diff:detach() * mask):sum() / n):item()
  stats.ratio_mean = ((r * mask):sum() / n):item()
  stats.tokens = mask:sum():item()
  return value, stats
end

-- The policy losses are configured pieces (empo.rl.configurable): called
-- with a batch they compute; called with options (or nothing) they return
-- a copy so configured; bare, they are their defaults.
local function is_batch(x) return type(x) == 'table' and x.logp ~= nil end
local PIECE = { is_data = is_batch, check = check_options, kind = 'loss' }

M.grpo = configurable.new('empo.loss.grpo', DEFAULTS, function(o, batch)
  return objective('empo.loss.grpo', o, batch)
end, PIECE)

-- GSPO: the sequence-level ratio, with the clip range of the reference's
-- verl recipe (3e-4 / 4e-4) unless given, aggregated per sequence.
local GSPO = {}
for k, v in pairs(DEFAULTS) do GSPO[k] = v end
GSPO.ratio, GSPO.clip_low, GSPO.clip_high, GSPO.agg = 'sequence', 3e-4, 4e-4, 'seq-mean-token-mean'
M.gspo = configurable.new('empo.loss.gspo', GSPO, function(o, batch)
  return objective('empo.loss.gspo', o, batch)
end, PIECE)

function M.is_loss(x) return configurable.is(x, 'loss') end

return M
