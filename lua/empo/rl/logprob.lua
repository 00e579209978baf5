-- empo.rl.logprob — the policy's log-probs (and entropies) of sampled
-- completions, teacher-forced through the same model object that sampled
-- them, with autograd: what the policy update differentiates.
--
--     local rows = { { prompt = { 5, 9, 2 }, completion = { 7, 1, 60 } }, ... }
--     local lp = logprob.completions(model, rows, { temperature = 1.0 })
--     -- lp.logp, lp.entropy: [S, Tmax] (row i's token t at [i, t]); lp.mask: 1 where t <= #completion
--     -- with { self_certainty = true }: lp.self_certainty [S, Tmax], KL(uniform || p) per token
--     local batches = logprob.micro_batches(rows, 4096)   -- lists of row indices, each <= 4096 tokens
--     -- { shared_prompt = true }: rows with the same prompt run it once (the update's
--     -- G completions of a question); 'auto' when it saves enough; the same values to rounding
--
-- The log-prob of completion token t is log_softmax(logits / T)[token] at
-- the position before it, T the sampling temperature (as verl and TRL
-- compute it), so before the first update it equals what the sampler
-- returned as the token's log-prob when nothing truncates the distribution
-- (top_k = 0, top_p = 1, min_p = 0). Rows are right-padded to one length:
-- with causal attention, padding after a row's tokens changes none of them.
-- With shared prompts the prompts are right-padded among themselves, each
-- row's tokens follow its own prompt's length (per-row rope positions and
-- a key mask over the prompt padding: Transformer:shared_prompt_hidden).
-- The LM head runs fused with the log-softmax (empo.head_logprob) on a
-- model whose head is the stock one (Transformer:fused_head): only the
-- positions that predict a completion token go through it, `head_chunk`
-- rows at a time, so no [tokens, V] logits exist, forward or backward.
-- self_certainty needs every log-prob, so it takes the logits path.
-- opts.vocab (the tokenizer's size) leaves out a padded embedding's rows:
-- the policy is a distribution over the ids the sampler may draw.
-- This module is not the loss (empo.rl.loss) nor the sampler (empo.sample).
local empo = require 'empo'
local device_of = require('empo.nn.module').device_of

local type, error, format = type, error, string.format

local M = {}

local function check_rows(rows)
  if type(rows) ~= 'table' or #rows == 0 then error('logprob.completions: rows must be a non-empty list', 3) end
  for i, r in ipairs(rows) do
    if type(r) ~= 'table' or type(r.prompt) ~= 'table' or type(r.completion) ~= 'table' then
      error(format('logprob.completions: row %d must be { prompt = {ids}, completion = {ids} }', i), 3)
    end
    if #r.prompt == 0 or #r.completion == 0 then
      error(format('logprob.completions: row %d has an empty prompt or completion', i), 3)
    end
  end
end

-- Tokens one row takes through the network: its prompt and all but the
-- last completion token.
function M.row_tokens(r) return #r.prompt + #r.completion - 1 end

-- The prompt of each row as a group number (1-based, in order of first
-- appearance) and the groups' first rows: rows with equal prompts (the
-- same table, or the same ids) share one.
function M.prompt_groups(rows)
  local group, first, by_key, last_prompt, last_group = {}, {}, {}, nil, nil
  for i, r in ipairs(rows) do
    if r.prompt == last_prompt then
      group[i] = last_group
    else
      local key = table.concat(r.prompt, ' ')
      local g = by_key[key]
      if not g then
        g = #first + 1
        first[g], by_key[key] = i, g
      end
      group[i], last_prompt, last_group = g, r.prompt, g
    end
  end
  return group, first
end

-- The padded tokens a set of rows costs: rows x longest per sequence; with
-- shared prompts (group: the rows' prompt_groups), its prompts x the
-- longest prompt plus rows x the longest completion input. micro_batches
-- keeps the same sums as it goes.
local function batch_cost(rows, idx, group)
  local longest, prompt, tail, prompts, seen, shared = 0, 0, 0, 0, {}, group ~= nil
  for _, i in ipairs(idx) do
    local r = rows[i]
    longest = math.max(longest, M.row_tokens(r))
    prompt, tail = math.max(prompt, #r.prompt), math.max(tail, #r.completion - 1)
    if shared and not seen[group[i]] then seen[group[i]], prompts = true, prompts + 1 end
  end
  if shared then return prompts * prompt + #idx * tail end
  return #idx * longest
end

-- Rows in order split into lists of indices whose padded size (see
-- batch_cost) stays within `budget` tokens (a row longer than the budget
-- is a list of its own): the update's micro-batches. With `shared`, a
-- group's rows should be adjacent (the trainer's are): a group split
-- between two micro-batches runs its prompt in each.
function M.micro_batches(rows, budget, shared)
  if type(budget) ~= 'number' or budget < 1 then error('logprob.micro_batches: budget must be >= 1 tokens', 2) end
  local group = shared and M.prompt_groups(rows) or nil
  local out, cur = {}, {}
  -- the current micro-batch's longest row, prompt and completion input, and its prompts
  local longest, prompt, tail, prompts, seen = 0, 0, 0, 0, {}
  for i, r in ipairs(rows) do
    local l, p, t = math.max(longest, M.row_tokens(r)), math.max(prompt, #r.prompt), math.max(tail, #r.completion - 1)
    local np = group and prompts + (seen[group[i]] and 0 or 1) or 0
    local cost = group and np * p + (#cur + 1) * t or (#cur + 1) * l
    if #cur > 0 and cost > budget then
      out[#out + 1] = cur
      cur, seen = {}, {}
      l, p, t, np = M.row_tokens(r), #r.prompt, #r.completion - 1, group and 1 or 0
    end
    cur[#cur + 1] = i
    longest, prompt, tail, prompts = l, p, t, np
    if group then seen[group[i]] = true end
  end
  if #cur > 0 then out[#out + 1] = cur end
  return out
end

-- true when the model can run rows with shared prompts (a stock
-- transformer: Transformer:shares_prompts).
function M.can_share(model)
  return type(model) == 'table' and type(model.shares_prompts) == 'function' and model:shares_prompts() == true
end

-- Whether the update should run rows with shared prompts (mode true,
-- false or 'auto'): 'auto' shares when the model can (its
-- shares_prompts()) and it saves at least a fifth of the padded tokens;
-- at long completions the prompt is a small share and two passes per
-- micro-batch are not worth it. true on a model that cannot is an error.
function M.use_shared(model, rows, mode)
  if mode == false then return false end
  if mode ~= true and mode ~= 'auto' then
    error("logprob: shared_prompt must be true, false or 'auto', got " .. tostring(mode), 3)
  end
  local can = M.can_share(model)
  if mode == true then
    if not can then
      error('logprob: shared_prompt = true, but this model cannot share prompts (a non-stock transformer: ' ..
            'its forward, hidden, a DecoderBlock or an Attention is replaced); use false or \'auto\'', 3)
    end
    return true
  end
  if not can then return false end
  local all = {}
  for i = 1, #rows do all[i] = i end
  return batch_cost(rows, all, (M.prompt_groups(rows))) <= 0.8 * batch_cost(rows, all, nil)
end

-- The head's weight when the fused head computes what model:logits does.
local function fused_head(model, opts)
  if opts and opts.self_certainty then return nil end
  return type(model.fused_head) == 'function' and model:fused_head() or nil
end

-- The log-probs, entropies (and self-certainty) of the picked rows [S*Tmax, D]
-- (final hidden states when head is the fused head's weight, else logits
-- [S*Tmax, V]), row i's token t at [(i-1)*Tmax + t].
local function statistics(picked, head, targets, mask, S, Tmax, temperature, opts)
  local vocab = opts and opts.vocab
  local ids = empo.tensor(targets, { dtype = 'i64', device = picked.device })   -- (where the rows are)
  mask = empo.tensor(mask, { device = picked.device })
  if head then
    local V = head:size(1)
    local logp, entropy = empo.head_logprob(picked, head, ids, { temperature = temperature,
                                                                 chunk = opts and opts.head_chunk,
                                                                 vocab = vocab and vocab < V and vocab or 0 })
    return { logp = logp:reshape(S, Tmax), entropy = entropy:reshape(S, Tmax), mask = mask }
  end
  if vocab and vocab < picked:size(2) then picked = picked:narrow(2, 1, vocab) end
  local V = picked:size(2)
  if temperature ~= 1 then picked = picked * (1 / temperature) end
  local logp, entropy = empo.logprob_entropy(picked, ids)
  local out = { logp = logp:reshape(S, Tmax), entropy = entropy:reshape(S, Tmax), mask = mask }
  if opts and opts.self_certainty then        -- KL(uniform || p) = -log V - mean_v log p_v, per token
    out.self_certainty = (-picked:log_softmax(2):mean(2) - math.log(V)):reshape(S, Tmax)
  end
  return out
end

-- i64 tensors on the model's device (its ids, positions, picked rows)
local function index_opts(model) return { dtype = 'i64', device = device_of(model) } end

-- Per sequence: each row is its prompt and completion, right-padded.
local function per_sequence(model, rows, temperature, opts)
  local S, L, Tmax = #rows, 0, 0
  for _, r in ipairs(rows) do
    L = math.max(L, M.row_tokens(r))
    Tmax = math.max(Tmax, #r.completion)
  end
  local ids, index, targets, mask = {}, {}, {}, {}
  for i, r in ipairs(rows) do
    local row, p, n = {}, #r.prompt, #r.completion
    for k = 1, p do row[k] = r.prompt[k] end
    for k = 1, n - 1 do row[p + k] = r.completion[k] end
    for k = p + n, L do row[k] = 0 end
    ids[i] = row
    local m = {}
    for t = 1, Tmax do
      local j = (i - 1) * Tmax + t
      if t <= n then
        index[j] = (i - 1) * L + (p - 1) + (t - 1)        -- the position predicting token t (0-based, flat)
        targets[j], m[t] = r.completion[t], 1
      else
        index[j], targets[j], m[t] = (i - 1) * L, 0, 0     -- padding: any valid position, masked out
      end
    end
    mask[i] = m
  end
  local head, out = fused_head(model, opts), nil
  local fopts = opts and opts.checkpoint and { checkpoint = true } or nil
  local i64 = index_opts(model)
  if head then
    out = model:hidden(empo.tensor(ids, i64), fopts)           -- [S, L, D]
  else
    out = model(empo.tensor(ids, i64), fopts)                  -- [S, L, V]
  end
  local picked = out:reshape(S * L, out:size(3)):index_select(1, empo.tensor(index, i64))   -- [S*Tmax, D or V]
  return statistics(picked, head, targets, mask, S, Tmax, temperature, opts)
end

-- Shared prompts: each distinct prompt runs once (Transformer:
-- shared_prompt_hidden), its last position predicts every group row's
-- first token, and the LM head sees only the positions that predict one.
local function shared_prompts(model, rows, temperature, opts)
  local group, first = M.prompt_groups(rows)
  local S, Bg, P, Tmax = #rows, #first, 0, 0
  for _, i in ipairs(first) do P = math.max(P, #rows[i].prompt) end
  for _, r in ipairs(rows) do Tmax = math.max(Tmax, #r.completion) end
  local T = Tmax - 1                                         -- completion tokens fed in
  local prompt_ids, prompt_len = {}, {}
  for g, i in ipairs(first) do
    local p, row = rows[i].prompt, {}
    for k = 1, P do row[k] = p[k] or 0 end
    prompt_ids[g], prompt_len[g] = row, #p
  end
  local ids, index, targets, mask = {}, {}, {}, {}
  for i, r in ipairs(rows) do
    local c, n, row, m = r.completion, #r.completion, {}, {}
    for k = 1, T do row[k] = k < n and c[k] or 0 end
    ids[i] = row
    for t = 1, Tmax do
      local j = (i - 1) * Tmax + t
      -- 0-based rows of [h_last; h]: the prompt's last position, then row i's position t - 1
      if t == 1 then
        index[j] = group[i] - 1
      else
        index[j] = t <= n and Bg + (i - 1) * T + (t - 2) or 0
      end
      targets[j], m[t] = t <= n and c[t] or 0, t <= n and 1 or 0
    end
    mask[i] = m
  end
  local i64 = index_opts(model)
  local h_last, h = model:shared_prompt_hidden(empo.tensor(prompt_ids, i64), prompt_len,
                                               T > 0 and empo.tensor(ids, i64) or nil, group)
  local all = h and empo.cat({ h_last, h:reshape(S * T, h:size(3)) }, 1) or h_last
  local picked = all:index_select(1, empo.tensor(index, i64))                          -- [S*Tmax, D]
  local head = fused_head(model, opts)
  if not head then picked = model:logits(picked) end                                   -- [S*Tmax, V]
  return statistics(picked, head, targets, mask, S, Tmax, temperature, opts)
end

-- opts: temperature (1), self_certainty (false), shared_prompt (false, true
-- or 'auto': see use_shared; both give the same values to float rounding),
-- vocab (the ids that exist: nil = every row of the head), head_chunk
-- (rows of logits at a time in the fused head; nil = about 32 MB),
-- checkpoint (each layer recomputed in backward: empo.nn.checkpoint; per
-- sequence, since the shared-prompt pass keeps the prompts' keys and
-- values across its two passes).
function M.completions(model, rows, opts)
  check_rows(rows)
  local temperature = opts and opts.temperature or 1.0
  if type(temperature) ~= 'number' or not (temperature > 0) then
    error('logprob.completions: temperature must be a number > 0, got ' .. tostring(temperature), 2)
  end
  local mode = opts and opts.shared_prompt
  if mode ~= nil and not opts.checkpoint and M.use_shared(model, rows, mode) then
    return shared_prompts(model, rows, temperature, opts)
  end
  return per_sequence(model, rows, temperature, opts)
end

return M
