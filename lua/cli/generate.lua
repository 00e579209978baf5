-- cli.generate — the `empo generate` command: sample completions of
-- prompts from a model directory (config.json, model.safetensors,
-- tokenizer.json) with empo.sample.generate and print them. Part of the
-- command, not of the library: nothing in lua/empo requires it.
--
--     empo generate models/arith-base "12+7=" n=4 temperature=0.8 max_new_tokens=32
--
-- Returns a function of the command's arguments whose result is the exit
-- status (lua/cli/empo_main.c requires 'cli.generate' and calls it).
local empo = require 'empo'

local USAGE = [[
usage: empo generate MODEL_DIR PROMPT... [key=value ...] [-- PROMPT...]

Samples completions of each PROMPT from the model in MODEL_DIR (config.json,
model.safetensors, tokenizer.json) and prints them, prompt by prompt.

settings (default):
  n=1                    samples per prompt
  temperature=1          0 = greedy
  top_k=0 top_p=1 min_p=0
                         truncation of the distribution (these values = off)
  max_new_tokens=128
  stop=TEXT              a stop string (\n, \t, \\ are unescaped); repeat for more
  seed=0
  threads=N              kernel threads (default: all)
  ignore_eos=false       do not stop at the tokenizer's end-of-sequence token
  chat=false             wrap each prompt in the ChatML template
  logprobs=false         also print every token with its log-prob

An argument shaped name=value is a setting, and an unknown name is an
error; prompts after -- are taken as they are ("-- x=1, y=").
]]

local S = empo.config.spec
local SETTINGS = S.fields{
  n = S.integer{ min = 1 }, temperature = S.number{ min = 0 }, top_k = S.integer{ min = 0 },
  top_p = S.number{ above = 0, max = 1 }, min_p = S.number{ min = 0, below = 1 }, max_new_tokens = S.integer{ min = 1 },
  seed = S.integer{ min = 0 }, threads = S.integer{ min = 1 }, ignore_eos = S.boolean(), chat = S.boolean(),
  logprobs = S.boolean(), stop = S.string(),
}

-- a token's text, quoted, control bytes escaped
local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(ch)
    local named = { ['\n'] = '\\n', ['\t'] = '\\t', ['"'] = '\\"', ['\\'] = '\\\\' }
    return named[ch] or string.format('\\x%02x', ch:byte())
  end) .. '"'
end

local function unescape(s)
  return (s:gsub('\\(.)', { n = '\n', t = '\t', ['\\'] = '\\' }))
end

-- settings and prompts from the arguments after MODEL_DIR: an argument
-- shaped `name=value` is a setting (an unknown name is refused, never
-- taken for a prompt); after `--` every argument is a prompt.
local function parse(args)
  local set, prompts, stop, settings_end = {}, {}, {}, false
  for i = 2, #args do
    local a = args[i]
    if not settings_end and a == '--' then
      settings_end = true
    elseif not settings_end and empo.config.is_setting(a) then
      local key, text = a:match('^([^=]+)=(.*)$')
      if key == 'stop' then
        stop[#stop + 1] = unescape(text)
      else
        local ok, err = pcall(empo.config.apply, set, { a }, 'empo generate', SETTINGS)
        if not ok then
          local msg = tostring(err):gsub('^empo generate: ', '')
          if msg:find('unknown setting', 1, true) then msg = msg .. ' (a prompt that looks like a setting goes after --)' end
          error(msg, 0)
        end
      end
    else
      prompts[#prompts + 1] = a
    end
  end
  if #prompts == 0 then error('no prompt given (empo generate --help)', 0) end
  return set, prompts, stop
end

local function main(args)
  local dir = args[1]
  local set, prompts, stop = parse(args)
  if set.threads then empo.set_num_threads(set.threads) end
  local model = empo.models.from_pretrained(dir)
  local tok = empo.tokenizer.load(dir)
  if set.chat then
    local tpl = empo.prompt.chatml{}
    for i, p in ipairs(prompts) do prompts[i] = tpl(p) end
    for _, s in ipairs(tpl.stop) do stop[#stop + 1] = s end
  end
  local out, st = empo.sample.generate(model, tok, prompts, {
    n = set.n, temperature = set.temperature, top_k = set.top_k, top_p = set.top_p, min_p = set.min_p,
    max_new_tokens = set.max_new_tokens, seed = set.seed, ignore_eos = set.ignore_eos,
    stop = #stop > 0 and stop or nil })
  for _, c in ipairs(out) do
    io.write(string.format('=== prompt %d, sample %d: %s, %d tokens\n', c.prompt, c.sample, c.finish, #c.ids))
    io.write(c.text, '\n')
    if set.logprobs then
      for t, id in ipairs(c.ids) do
        io.write(string.format('  %5d %-16s logp %8.4f  model %8.4f\n', id, quote(tok:decode({ id })), c.logprobs[t],
                               c.ref_logprobs[t]))
      end
    end
  end
  io.stderr:write(string.format('%d tokens in %.2f s (%.0f tokens/s), first token after %.3f s, KV cache %.1f MB, '
                                .. 'peak %.1f MB, %s decoder\n', st.tokens, st.seconds, st.tokens_per_s,
                                st.time_to_first_token, st.cache_bytes / 2 ^ 20, st.peak_bytes / 2 ^ 20,
                                st.decode == 'c' and 'C' or 'Lua'))
end

return function(...)
  local args = { ... }
  if #args == 0 or args[1] == '--help' or args[1] == '-h' then
    io.write(USAGE)
    return #args == 0 and 2 or 0
  end
  local ok, err = pcall(main, args)
  if not ok then
    io.stderr:write('empo generate: ', (tostring(err):gsub('^[^\n:]+%.lua:%d+: ', '')), '\n')
    return 1
  end
  return 0
end
