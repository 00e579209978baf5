-- empo.rl.preflight — what a run reads, checked before the model loads:
-- the data files (every line: UTF-8, the question, the gold answer where
-- evaluation needs one), the tokenizer, the model's config.json (its
-- context and shape, without the weights), each prompt's length against
-- the context, and a rough memory bound for a step's sampling. A run that
-- cannot work is refused here, in seconds, with one message naming the
-- file:line or the setting — not hours later at the step that meets it.
local empo = require 'empo'
local data_mod = require 'empo.train.data'

local format, type, tostring = string.format, type, tostring

local M = {}

-- The text of a question under the recipe's prompt.
function M.prompt_text(r, question)
  if r.prompt == nil then return question end
  return empo.prompt.render(r.prompt, question)
end

-- data and eval as datasets (paths loaded and checked line by line).
function M.datasets(r)
  local function dataset(field, value, answers)
    if type(value) ~= 'string' then return value end
    local ok, d = pcall(data_mod.jsonl, value, r.fields, { seed = r.seed, answers = answers, gold = r.gold })
    if not ok then error(format('%s=%s: %s', field, value, tostring(d)), 0) end
    return d
  end
  return dataset('data', r.data, false), dataset('eval', r.eval, true)
end

-- The tokenizer: the recipe's, or the model directory's.
function M.tokenizer(r)
  local tok = r.tokenizer
  local path = type(tok) == 'string' and tok or (tok == nil and type(r.model) == 'string' and r.model) or nil
  if path then
    local ok, t = pcall(empo.tokenizer.load, path)
    if not ok then error(format('tokenizer: %s', tostring(t)), 0) end
    return t
  end
  if tok == nil then error('tokenizer is needed (or a model directory that has one)', 0) end
  return tok
end

-- The model's config: from config.json when the model is a directory (no
-- weights read), else the model object's.
function M.model_config(r)
  if type(r.model) ~= 'string' then return r.model.config end
  local path = r.model .. '/config.json'
  if not empo.fs.exists(path) then error(format('model=%s: no config.json there (is it a model directory?)', r.model), 0) end
  local ok, cfg = pcall(function() return empo.models.config(empo.json.read_file(path), path) end)
  if not ok then error(format('model=%s: %s', r.model, tostring(cfg)), 0) end
  return cfg
end

-- Every prompt of a dataset read whole must leave room for at least one
-- new token in the model's context (a streamed file is checked as each
-- step draws it). Returns the longest prompt's token count.
function M.prompt_lengths(r, tok, cfg, field, d)
  if d == nil or d.records == nil then return 0 end
  local ctx, longest = cfg.max_position_embeddings, 0
  for i, rec in ipairs(d.records) do
    local text = M.prompt_text(r, rec.question)
    if #text >= ctx then                     -- a token is at least one byte: shorter texts always fit
      local n = #tok:encode(text)
      if n >= ctx then
        error(format('%s: the question with its prompt is %d tokens, and the model\'s context ' ..
                     '(max_position_embeddings) is %d: no room to answer', d:where(i), n, ctx), 0)
      end
      if n > longest then longest = n end
    end
  end
  return longest
end

-- The longest prompt in tokens among the first `limit` (256) questions
-- of a dataset read whole (0 for a streamed file): what the memory plan
-- sizes a row by.
function M.longest_prompt(r, tok, d, limit)
  local longest = 0
  if d == nil or d.records == nil or type(tok) ~= 'table' or type(tok.encode) ~= 'function' then return 0 end
  for i = 1, math.min(#d.records, limit or 256) do
    longest = math.max(longest, #tok:encode(M.prompt_text(r, d.records[i].question)))
  end
  return longest
end

-- MemAvailable of /proc/meminfo in bytes, or nil.
local function available_bytes()
  local f = io.open('/proc/meminfo')
  if not f then return nil end
  local text = f:read('*a')
  f:close()
  local kb = text:match('MemAvailable:%s+(%d+)')
  return kb and tonumber(kb) * 1024 or nil
end

-- A step's sampling at its largest, roughly: the KV cache (f32, every
-- sequence at prompt + max_new_tokens, but never past the sampler's
-- budget, which batches the rest), a row of logits per sequence, and what
-- the step keeps of each completion token (ids, log-probs, the update's
-- rows: ~64 bytes). Refused when it passes the memory available now.
function M.sampling_memory(r, cfg, prompt_tokens)
  local cache_budget = empo.sample.DEFAULTS.max_cache_bytes
  local rows = r.prompts_per_step * r.sample.n
  local len = math.min(cfg.max_position_embeddings, math.max(prompt_tokens, 1) + r.sample.max_new_tokens)
  local kv = math.min(rows * len * cfg.num_hidden_layers * 2 * cfg.num_key_value_heads * cfg.head_dim * 4,
                      cache_budget)
  local logits = rows * cfg.vocab_size * 4 * 2
  local kept = rows * r.sample.max_new_tokens * 64
  local need, have = kv + logits + kept, available_bytes()
  if have and need > 0.9 * have then
    error(format('sampling %d sequences a step (prompts_per_step=%d x sample.n=%d) of up to %d tokens needs about ' ..
                 '%.1f GB (KV cache, logits and the completions kept), and %.1f GB is available: lower sample.n, prompts_per_step or ' ..
                 'sample.max_new_tokens', rows, r.prompts_per_step, r.sample.n, len, need / 2 ^ 30, have / 2 ^ 30), 0)
  end
  return need
end

-- All of the above for resolved recipe r: returns data, eval, tok, cfg.
-- device='cuda' needs a usable GPU (libempo_cuda, a driver, a card);
-- precision='bf16' and tf32=true need the GPU's tensor cores.
function M.device(r)
  if r.precision == 'bf16' and r.device == 'cpu' then
    error("precision='bf16' runs the products on the GPU's bf16 tensor cores: it needs device='cuda' " ..
          '(the CPU tables have only the naive bf16 product)', 0)
  end
  if r.tf32 == true and r.device == 'cpu' then
    error("tf32=true runs the f32 products in TF32 on the GPU's tensor cores: it needs device='cuda'", 0)
  end
  if r.device == 'cpu' then return end
  local ok, why = empo.cuda_available()
  if not ok then error(format("device='%s': no GPU can be used here: %s", r.device, why), 0) end
end

function M.check(r)
  M.device(r)
  local data, eval = M.datasets(r)
  local cfg = M.model_config(r)
  local tok = M.tokenizer(r)
  local longest = math.max(M.prompt_lengths(r, tok, cfg, 'data', data), M.prompt_lengths(r, tok, cfg, 'eval', eval))
  M.sampling_memory(r, cfg, longest)
  return data, eval, tok, cfg
end

return M
