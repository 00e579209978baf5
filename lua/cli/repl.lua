-- cli.repl — the interactive prompt of `empo repl` (and bare `empo`). Part
-- of the command, not of the library (lua/cli/empo_main.c requires it).
--
-- Line editing and history (~/.empo_history, or $EMPO_HISTORY) come from
-- libedit through the FFI: inside the empo binary its symbols are in ffi.C,
-- from a plain luajit it is ffi.load'ed. A line is tried as an expression
-- first (`return <line>`) and its values printed; an incomplete chunk
-- continues on the next line (">> "); errors are printed and the prompt
-- survives; Ctrl-C abandons the line (or interrupts running Lua code when
-- run by the empo binary); Ctrl-D exits. When stdin is not a terminal the
-- lines are read plainly, without prompts, so a pipe can drive it.
--
--     require('cli.repl').run()
local ffi = require 'ffi'

local M = {}

local decls = {
  'char *readline(const char *prompt);',
  'int add_history(const char *line);',
  'int read_history(const char *file);',
  'int write_history(const char *file);',
  'int history_truncate_file(const char *file, int lines);',
  'void using_history(void);',
  'typedef char *rl_compentry_func_t(const char *, int);',
  'extern rl_compentry_func_t *rl_completion_entry_function;',
  'extern int rl_completion_append_character;',
  'extern const char *rl_readline_name;',
  'void free(void *p);',
  'void *malloc(size_t n);',
  'int isatty(int fd);',
  'int empo_cli_sigint_mode(int mode);',
  'int empo_cli_take_interrupt(void);',
}
for _, d in ipairs(decls) do pcall(ffi.cdef, d) end

local function has(lib, name)
  return pcall(function() return lib[name] end)
end

-- libedit: ffi.C inside the empo binary, else loaded by name.
local function libedit()
  if has(ffi.C, 'readline') then return ffi.C end
  for _, name in ipairs({ 'edit', 'libedit.so.2' }) do
    local ok, lib = pcall(ffi.load, name)
    if ok and has(lib, 'readline') then return lib end
  end
  return nil
end

-- The empo binary's SIGINT switch (absent under a plain luajit).
local cli = has(ffi.C, 'empo_cli_sigint_mode') and ffi.C or nil
local function sigint_mode(m) if cli then cli.empo_cli_sigint_mode(m) end end
local function take_interrupt() return cli ~= nil and cli.empo_cli_take_interrupt() ~= 0 end

-- ---- printing values ----

local console = require 'empo.run.console'
local show = console.show
M.show = show

local function print_values(n, ...)
  if n == 0 then return end
  local out = {}
  for i = 1, n do out[i] = show((select(i, ...))) end
  io.stdout:write(table.concat(out, '\t'), '\n')
  io.stdout:flush()
end

-- ---- evaluation ----

-- The directories whose frames are left out of tracebacks: the REPL's own
-- (lua/cli/) and the library's (lua/empo/ and its folders).
local function dir_of(path) return path and path:match('^@?(.*/)[^/]*$') end
local hidden = { dir_of(debug.getinfo(1, 'S').source), dir_of(package.searchpath('empo', package.path)) }
local function is_hidden(frame)
  for i = 1, #hidden do
    if frame:find(hidden[i], 1, true) then return true end
  end
  return false
end

-- The error message, then the traceback of the user's code only (no
-- library or C frames, nothing below the REPL).
local function handler(e)
  local msg = type(e) == 'string' and e or show(e)
  local tb = debug.traceback('', 2)
  local keep = {}
  for line in tb:gmatch('[^\n]+') do
    if line:find("in function 'xpcall'", 1, true) then break end
    local frame = line:match('^%s+(.*)$')
    if frame and not frame:find('^%[C%]') and not is_hidden(frame) then
      keep[#keep + 1] = line
    end
  end
  if #keep == 0 then return msg end
  return msg .. '\nstack traceback:\n' .. table.concat(keep, '\n')
end

local function report(n, ok, ...)
  if ok then return print_values(n - 1, ...) end
  io.stdout:flush()
  local msg = tostring((...))
  if msg:find('^interrupted!') then msg = '\n' .. msg end   -- after the echoed ^C
  io.stderr:write(msg, '\n')
  io.stderr:flush()
end

local function is_incomplete(err)
  return err:find("<eof>'?$") ~= nil
end

-- Compile src as an expression, else as a statement. Returns the function,
-- or nil and the error (nil, 'incomplete' when more lines would help).
local function compile(src)
  local f, err1 = load('return ' .. src, '=stdin')
  if f then return f end
  local err
  f, err = load(src, '=stdin')
  if f then return f end
  if is_incomplete(err) or is_incomplete(err1) then return nil, 'incomplete' end
  return nil, err
end

-- Chunks typed at the prompt run interpreted (the library stays compiled):
-- compiled loops never look at the hook Ctrl-C sets, interpreted ones do.
local function eval(f)
  jit.off(f, true)
  sigint_mode(2)
  local function pack(...) return select('#', ...), ... end
  report(pack(xpcall(f, handler)))
  sigint_mode(1)
  take_interrupt()
end

-- ---- tab completion of globals, fields and methods (empo.run.complete) ----

local candidates = console.candidates
M.candidates = candidates

-- ---- reading lines ----

local function history_file()
  return os.getenv('EMPO_HISTORY') or ((os.getenv('HOME') or '.') .. '/.empo_history')
end

-- The line reader: read(prompt) -> line or nil at the end, and close().
-- complete(text) -> candidates (default: names reachable from _G).
local function make_reader(interactive, complete)
  complete = complete or candidates
  if not interactive then
    return function() return io.stdin:read('*l') end, function() end
  end
  local ed = libedit()
  if ed == nil then
    return function(prompt)
      io.stdout:write(prompt)
      io.stdout:flush()
      return io.stdin:read('*l')
    end, function() end
  end
  local hist = history_file()
  pcall(function()
    ed.using_history()
    ed.read_history(hist)
  end)
  -- completion callback (kept alive in an upvalue)
  local matches, mi = {}, 0
  local cb = ffi.cast('rl_compentry_func_t *', function(text, state)
    if state == 0 then
      local ok, r = pcall(complete, ffi.string(text))
      matches, mi = ok and r or {}, 0
    end
    mi = mi + 1
    local s = matches[mi]
    if s == nil then return nil end
    local p = ffi.cast('char *', ffi.C.malloc(#s + 1))
    ffi.copy(p, s)
    return p
  end)
  pcall(function() ed.rl_completion_entry_function = cb end)
  pcall(function() ed.rl_completion_append_character = 0 end)   -- (no space after a name: a '.' or ':' often follows)
  local last
  local function read(prompt)
    local p = ed.readline(prompt)
    if p == nil then return nil end
    local s = ffi.string(p)
    ffi.C.free(p)
    if s:find('%S') and s ~= last then
      ed.add_history(s)
      last = s
    end
    return s
  end
  local function close()
    pcall(function()
      ed.write_history(hist)
      ed.history_truncate_file(hist, 1000)
    end)
    cb:free()
  end
  -- readline may call back into Lua (completion): keep this off-trace.
  jit.off(read)
  return read, close
end

M.reader = make_reader
M.compile = compile
M.sigint_mode, M.take_interrupt = sigint_mode, take_interrupt

-- ---- the loop ----

function M.run()
  local interactive = ffi.C.isatty(0) ~= 0
  local ok, empo = pcall(require, 'empo')
  if ok then
    rawset(_G, 'empo', empo)
  else
    io.stderr:write('warning: the empo library did not load: ', tostring(empo), '\n')
    empo = nil
  end
  if interactive then
    io.stdout:write(string.format('empo %s (%s) — `empo` is loaded; Ctrl-D exits\n',
                                  empo and empo.version or '?', jit.version))
  end
  local read, close = make_reader(interactive)
  sigint_mode(1)
  local buffer
  while true do
    local line = read(buffer and '>> ' or 'empo> ')
    if take_interrupt() then   -- Ctrl-C at the prompt: drop what was typed
      if interactive then io.stdout:write('^C\n') end
      buffer, line = nil, ''
    elseif line == nil then
      if buffer then
        local _, err = load(buffer, '=stdin')
        io.stderr:write(tostring(err), '\n')
      end
      if interactive then io.stdout:write('\n') end
      break
    end
    if buffer == nil and (line == 'exit' or line == 'quit') then break end
    local src = buffer and (buffer .. '\n' .. line) or line
    if src:find('%S') then
      local f, err = compile(src)
      if f then
        buffer = nil
        eval(f)
      elseif err == 'incomplete' then
        buffer = src
      else
        buffer = nil
        io.stdout:flush()
        io.stderr:write(err, '\n')
        io.stderr:flush()
      end
    else
      buffer = buffer and src or nil
    end
  end
  close()
  sigint_mode(0)
  return 0
end

return M
