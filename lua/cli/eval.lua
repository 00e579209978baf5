-- cli.eval — the `empo eval` command: accuracy of a model directory on a
-- JSONL file of questions with gold answers (empo.rl.eval): greedy,
-- avg@k, maj@k and pass@k with bootstrap standard errors. The same prompt
-- and grader for a base and a trained model. Part of the command, not of
-- the library.
--
--     empo eval models/arith-base data/arith/test.jsonl k=8 chat=true
local empo = require 'empo'

local USAGE = [[
usage: empo eval MODEL_DIR DATA.jsonl [key=value ...]

Accuracy of the model in MODEL_DIR on DATA.jsonl (one object a line with
"question" and "answer"): greedy, avg@k, maj@k and pass@k, each with its
bootstrap standard error; answers are extracted from \boxed{} (every box)
and compared with the math rule.

settings (default):
  k=8                    samples per question for avg/maj/pass
  temperature=1  top_p=1 the sampling of the k samples
  max_new_tokens=128
  chat=false             wrap each question in the ChatML template with the
                         system prompt "Please reason step by step, and put
                         your final answer within \boxed{}."
  gold=answer            where the gold answer is: answer (the field as it
                         is), boxed (the last \boxed{} of a worked solution:
                         MATH-style files), gsm8k (the "#### 42" line that
                         ends a GSM8K answer)
  question=  answer=     the JSON fields (default: the first present of
                         question/problem/prompt, and of answer, or
                         solution/answer for gold=boxed)
  adapter=DIR            a LoRA adapter (PEFT's layout) applied to the model
                         (its tokenizer: MODEL_DIR's, else DIR's)
  seed=0  threads=N  limit=0 (0: every question)
]]

return function(...)
  local args = { ... }
  if args[1] == '-h' or args[1] == '--help' then io.write(USAGE); return 0 end
  if #args < 2 then io.stderr:write(USAGE); return 2 end
  local dir, path = args[1], args[2]
  local ok_cfg, o = pcall(empo.config.apply, { k = 8, temperature = 1.0, top_p = 1.0, max_new_tokens = 128, chat = false,
                                question = '', answer = '', gold = 'answer', seed = 0, threads = 0, limit = 0,
                                adapter = '' },
                              { select(3, ...) }, 'empo eval')
  if not ok_cfg then io.stderr:write(tostring(o), '\n'); return 2 end
  if o.threads > 0 then empo.set_num_threads(o.threads) end
  local adapter = o.adapter ~= '' and o.adapter or nil
  local ok, model = pcall(function()
    local m = empo.models.from_pretrained(dir, { dtype = adapter and 'bf16' or 'f32' })
    if adapter then require('empo.nn.lora').load(m, adapter) end
    return m
  end)
  if not ok then io.stderr:write('empo eval: ', tostring(model), '\n'); return 1 end
  local tok_ok, tok = pcall(empo.tokenizer.load, dir)
  if not tok_ok and adapter then tok_ok, tok = pcall(empo.tokenizer.load, adapter) end
  if not tok_ok then io.stderr:write('empo eval: ', tostring(tok), '\n'); return 1 end
  local data_ok, data = pcall(empo.data.jsonl, path, { question = o.question ~= '' and o.question or nil,
                                                       answer = o.answer ~= '' and o.answer or nil },
                              { answers = true, gold = o.gold })
  if not data_ok then io.stderr:write('empo eval: ', tostring(data), '\n'); return 1 end
  local records = data:list(o.limit > 0 and o.limit or nil)
  local prompt = o.chat and empo.prompt.chatml{
    system = 'Please reason step by step, and put your final answer within \\boxed{}.' } or nil
  local eval_ok, r = pcall(empo.rl.eval.run, model, tok, records, { prompt = prompt, k = o.k,
    temperature = o.temperature, top_p = o.top_p, max_new_tokens = o.max_new_tokens, seed = o.seed })
  if not eval_ok then io.stderr:write('empo eval: ', tostring(r), '\n'); return 1 end
  print(string.format('%s%s on %s', dir, adapter and (' + adapter ' .. adapter) or '', path))
  print(empo.rl.eval.table(r))
  return 0
end
