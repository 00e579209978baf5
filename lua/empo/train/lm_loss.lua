-- empo.train.lm_loss — the causal language-model loss with a loss mask, the
-- objective of pretraining and SFT (EMPO's policy loss is empo.rl's).
--
--     local loss, n = empo.train.lm_loss(model, ids, mask)   -- mask: which targets count
local empo = require 'empo'

local format = string.format
local M = {}

-- Mean negative log-likelihood of ids[:, 2..T] given ids[:, 1..T-1], over
-- the target positions where mask (f32/u8 [B, T], aligned with ids) is
-- nonzero; a nil mask counts every target. Returns loss (scalar, with
-- autograd) and the number of target tokens.
function M.lm_loss(model, ids, mask)
  local B, T = ids:size(1), ids:size(2)
  if T < 2 then error(format('lm_loss: sequences of length %d have no next token to predict', T), 2) end
  local targets = ids:narrow(2, 2, T - 1):reshape(B * (T - 1))
  local head = type(model.fused_head) == 'function' and model:fused_head()
  local logp
  if head then                    -- the head fused with the log-softmax: no [B, T-1, V] logits (empo.head_logprob)
    local h = model:hidden(ids:narrow(2, 1, T - 1))
    logp = empo.head_logprob(h:reshape(B * (T - 1), h:size(3)), head, targets)
  else
    local logits = model:forward(ids:narrow(2, 1, T - 1))               -- [B, T-1, V]
    logp = empo.logprob_entropy(logits:reshape(B * (T - 1), logits:size(3)), targets)
  end
  if mask == nil then
    return -logp:mean(), B * (T - 1)
  end
  local m = mask:narrow(2, 2, T - 1):reshape(B * (T - 1))
  if m:dtype() ~= 'f32' then m = m:to('f32') end
  local count = m:sum():item()
  if count == 0 then error('lm_loss: the mask selects no target token', 2) end
  return -(logp * m):sum() / count, count
end

return M
