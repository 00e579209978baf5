-- empo.text.prompt (empo.prompt) — chat templates: how a question (or a conversation) becomes
-- the text a model continues.
--
--     local tpl = empo.prompt.chatml{ system = 'Please reason step by step, and put your final answer within \\boxed{}.' }
--     tpl('What is 2+3?')
--     --> '<|im_start|>system\nPlease reason ...<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n'
--     tpl{ { role = 'user', content = 'Hi' }, { role = 'assistant', content = 'Hello!' }, { role = 'user', content = 'Bye' } }
--     empo.prompt.plain{ prefix = 'Question: ', suffix = '\nAnswer:' }('2+3?')   --> 'Question: 2+3?\nAnswer:'
--     empo.prompt.custom(function(q) return q .. ' = ' end, { stop = { '\n' } })
--
-- A template is a callable table: tpl(input) -> string, where input is a
-- question string (one user turn) or a list of { role =, content = }
-- messages; tpl.stop lists the strings that end a completion (for the
-- sampler); tpl.name names it. Any plain function(input) -> string can
-- stand for a template: empo.prompt.wrap(fn) makes it one.
--
-- Built in: chatml (the ChatML format of Qwen2/2.5/3, matching their Jinja
-- chat_template for system/user/assistant turns without tools), qwen2_5
-- (chatml with Qwen2.5's default system prompt), qwen3 (chatml with the
-- optional empty think block of enable_thinking = false), plain. Jinja
-- templates from tokenizer_config.json are not interpreted.
local M = {}

local Template = {}
Template.__index = Template
Template.__call = function(self, input) return self.render(input) end
Template.__tostring = function(self) return 'Template (' .. self.name .. ')' end
M.Template = Template

local function new(name, render, stop)
  return setmetatable({ name = name, render = render, stop = stop or {} }, Template)
end

function M.is_template(x) return getmetatable(x) == Template end

-- A question string becomes one user message; a list of messages is checked.
local function messages_of(input, fname)
  if type(input) == 'string' then return { { role = 'user', content = input } } end
  if type(input) ~= 'table' then
    error(fname .. ': expected a question (string) or a list of messages, got ' .. type(input), 3)
  end
  for i, m in ipairs(input) do
    if type(m) ~= 'table' or type(m.role) ~= 'string' or type(m.content) ~= 'string' then
      error(fname .. ': message ' .. i .. ' must be { role = string, content = string }', 3)
    end
  end
  return input
end

local function check_opts(o, fname, known)
  if o == nil then return {} end
  if type(o) ~= 'table' then error(fname .. ': options must be a table', 3) end
  for k in pairs(o) do
    if not known[k] then error(fname .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  return o
end

-- ChatML: <|im_start|>role\ncontent<|im_end|>\n per turn, then
-- <|im_start|>assistant\n (add_generation_prompt, default true). `system`
-- is used when the messages hold no system turn; `default_system` too
-- (Qwen2.5's template always has one). `think = false` appends Qwen3's
-- empty think block (enable_thinking = false).
function M.chatml(o)
  o = check_opts(o, 'empo.prompt.chatml', { system = 1, default_system = 1, add_generation_prompt = 1, think = 1, name = 1 })
  local system = o.system or o.default_system
  local gen = o.add_generation_prompt ~= false
  return new(o.name or 'chatml', function(input)
    local msgs = messages_of(input, 'chatml template')
    local parts = {}
    if system and not (msgs[1] and msgs[1].role == 'system') then
      parts[#parts + 1] = '<|im_start|>system\n' .. system .. '<|im_end|>\n'
    end
    for _, m in ipairs(msgs) do
      parts[#parts + 1] = '<|im_start|>' .. m.role .. '\n' .. m.content .. '<|im_end|>\n'
    end
    if gen then
      parts[#parts + 1] = '<|im_start|>assistant\n'
      if o.think == false then parts[#parts + 1] = '<think>\n\n</think>\n\n' end
    end
    return table.concat(parts)
  end, { '<|im_end|>', '<|endoftext|>' })
end

M.QWEN2_5_SYSTEM = 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.'

function M.qwen2_5(o)
  o = check_opts(o, 'empo.prompt.qwen2_5', { system = 1, add_generation_prompt = 1 })
  return M.chatml{ system = o.system, default_system = M.QWEN2_5_SYSTEM,
                   add_generation_prompt = o.add_generation_prompt, name = 'qwen2_5' }
end

function M.qwen3(o)
  o = check_opts(o, 'empo.prompt.qwen3', { system = 1, add_generation_prompt = 1, enable_thinking = 1 })
  local opts = { system = o.system, add_generation_prompt = o.add_generation_prompt, name = 'qwen3' }
  if o.enable_thinking == false then opts.think = false end
  return M.chatml(opts)
end

-- Question -> answer in plain text, for base models:
--   [system .. sep] prefix .. question .. suffix [.. answer .. turn_sep ..]
-- Defaults: prefix 'Question: ', suffix '\nAnswer:', sep '\n\n', turn_sep '\n\n'.
function M.plain(o)
  o = check_opts(o, 'empo.prompt.plain', { system = 1, prefix = 1, suffix = 1, sep = 1, turn_sep = 1, stop = 1, name = 1 })
  local prefix, suffix = o.prefix or 'Question: ', o.suffix or '\nAnswer:'
  local sep, turn_sep = o.sep or '\n\n', o.turn_sep or '\n\n'
  local stop = o.stop or { turn_sep .. prefix }
  return new(o.name or 'plain', function(input)
    local msgs = messages_of(input, 'plain template')
    local parts, system = {}, o.system
    for _, m in ipairs(msgs) do
      if m.role == 'system' then system = m.content end
    end
    if system then parts[1] = system .. sep end
    for _, m in ipairs(msgs) do
      if m.role == 'user' then
        parts[#parts + 1] = prefix .. m.content .. suffix
      elseif m.role == 'assistant' then
        parts[#parts + 1] = ' ' .. m.content .. turn_sep
      elseif m.role ~= 'system' then
        error("plain template: unknown role '" .. m.role .. "'", 2)
      end
    end
    return table.concat(parts)
  end, stop)
end

-- A template from any function(input) -> string.
function M.custom(fn, o)
  if type(fn) ~= 'function' then error('empo.prompt.custom: expected a function, got ' .. type(fn), 2) end
  o = check_opts(o, 'empo.prompt.custom', { stop = 1, name = 1 })
  return new(o.name or 'custom', function(input)
    local s = fn(input)
    if type(s) ~= 'string' then error('custom template returned a ' .. type(s) .. ', not a string', 2) end
    return s
  end, o.stop)
end

local BUILTIN = { chatml = true, qwen2_5 = true, qwen3 = true, plain = true }

-- A template, a function, or a built-in's name ('chatml', 'qwen2_5',
-- 'qwen3', 'plain') -> a template.
function M.wrap(x)
  if M.is_template(x) then return x end
  if type(x) == 'function' then return M.custom(x) end
  if type(x) == 'string' and BUILTIN[x] then return M[x]() end
  error('empo.prompt.wrap: expected a template, a function or a built-in name, got ' .. tostring(x), 2)
end

-- Render input through a template, a function or a built-in name.
function M.render(tpl, input) return M.wrap(tpl)(input) end

return M
