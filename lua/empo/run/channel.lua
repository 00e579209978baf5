-- empo.run.channel — Unix stream sockets for `empo attach` (Linux, through
-- the FFI): a listening socket in a run directory (mode 0600: its owner
-- only; nothing listens on a network), connections that never block the
-- trainer, and the framing both ends speak: each message is
--
--     KIND LEN\n<LEN bytes>
--
-- (KIND a word: run, complete, cancel from the client; hello, out, error,
-- done, completions, note, bye from the run). empo.rl.attach_server is the
-- run's end, lua/cli/attach.lua the client's.
--
--     local srv = assert(channel.listen('runs/x/attach.sock'))
--     local conn = srv:accept()                    -- nil when nobody is waiting
--     for _, m in ipairs(conn:receive()) do ... m.kind, m.text ... end
--     conn:send('out', 'hello\n')
local ffi = require 'ffi'
local bit = require 'bit'

local format = string.format
local M = {}

pcall(ffi.cdef, [[
typedef unsigned short sa_family_t;
struct empo_sockaddr_un { sa_family_t sun_family; char sun_path[108]; };
struct empo_pollfd { int fd; short events; short revents; };
struct empo_ucred { int pid; unsigned uid; unsigned gid; };
int socket(int domain, int type, int protocol);
int bind(int fd, const void *addr, unsigned len);
int listen(int fd, int backlog);
int accept4(int fd, void *addr, void *len, int flags);
int connect(int fd, const void *addr, unsigned len);
long send(int fd, const void *buf, size_t len, int flags);
long recv(int fd, void *buf, size_t len, int flags);
int poll(struct empo_pollfd *fds, unsigned long nfds, int timeout);
int close(int fd);
int unlink(const char *path);
int chmod(const char *path, unsigned mode);
unsigned umask(unsigned mask);
int getsockopt(int fd, int level, int name, void *val, unsigned *len);
int open(const char *path, int flags, ...);
unsigned getuid(void);
int getpid(void);
char *strerror(int errnum);
]])
local C = ffi.C

-- Linux's numbers (the same on x86-64 and arm64)
local AF_UNIX, SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC = 1, 1, 0x800, 0x80000
local SOL_SOCKET, SO_PEERCRED = 1, 17
local POLLIN, POLLHUP, POLLERR = 0x1, 0x10, 0x8
local MSG_NOSIGNAL, MSG_DONTWAIT = 0x4000, 0x40
local EAGAIN, EINTR, ECONNREFUSED, ENOENT = 11, 4, 111, 2
M.ECONNREFUSED, M.ENOENT = ECONNREFUSED, ENOENT
M.MAX_MESSAGE = 16 * 2^20            -- bytes: a longer message closes the connection

local function errstr(e) return ffi.string(C.strerror(e)) end

-- The address of path; a path longer than sun_path holds goes through its
-- directory's descriptor (/proc/self/fd/N/name), which the caller closes.
local function address(path)
  local dirfd
  if #path >= 108 then
    local dir, name = path:match('^(.*)/([^/]+)$')
    dirfd = dir and C.open(dir, 0) or -1
    if dirfd < 0 then return nil, format('%s: %s', dir or path, errstr(ffi.errno())) end
    path = format('/proc/self/fd/%d/%s', dirfd, name)
  end
  local a = ffi.new('struct empo_sockaddr_un')
  a.sun_family = AF_UNIX
  ffi.copy(a.sun_path, path)
  return a, dirfd
end

local Conn = {}
Conn.__index = Conn

local function conn(fd) return setmetatable({ fd = fd, inbuf = '', closed = false }, Conn) end

-- Sends one message; false when the other end is gone (never raises,
-- never a SIGPIPE). Blocks until the kernel has taken it all.
function Conn:send(kind, text)
  if self.closed then return false end
  local data = format('%s %d\n', kind, #text) .. text
  local sent, n = 0, #data
  local buf = ffi.cast('const char *', data)
  local pfd = ffi.new('struct empo_pollfd[1]')
  while sent < n do
    local k = C.send(self.fd, buf + sent, n - sent, MSG_NOSIGNAL)
    if k < 0 then
      local e = ffi.errno()
      if e == EAGAIN then               -- (a client that does not read: wait up to 5 s, then drop it)
        pfd[0].fd, pfd[0].events = self.fd, 0x4
        if C.poll(pfd, 1, 5000) <= 0 then self:close(); return false end
      elseif e ~= EINTR then self:close(); return false end
    else
      sent = sent + k
    end
  end
  return true
end

-- The messages that have arrived whole (a list of { kind, text }), without
-- waiting; self.closed once the other end has gone.
function Conn:receive()
  local buf = ffi.new('char[65536]')
  while not self.closed do
    local k = C.recv(self.fd, buf, 65536, MSG_DONTWAIT)
    if k > 0 then self.inbuf = self.inbuf .. ffi.string(buf, k)
    elseif k == 0 then self:close()
    else
      local e = ffi.errno()
      if e == EAGAIN then break end
      if e ~= EINTR then self:close() end
    end
  end
  local out = {}
  while true do
    local kind, len, rest = self.inbuf:match('^(%a+) (%d+)\n()')
    if not kind then
      if #self.inbuf > 64 and not self.inbuf:find('\n') then self.bad = true; self:close() end   -- (not our framing)
      break
    end
    len = tonumber(len)
    if len > M.MAX_MESSAGE then self.bad = true; self:close(); break end   -- (not a chunk anyone types)
    if #self.inbuf - rest + 1 < len then break end
    out[#out + 1] = { kind = kind, text = self.inbuf:sub(rest, rest + len - 1) }
    self.inbuf = self.inbuf:sub(rest + len)
  end
  return out
end

-- Waits up to `seconds` for data to read; true when some came (or the end).
function Conn:wait(seconds)
  if self.closed then return true end
  local pfd = ffi.new('struct empo_pollfd[1]')
  pfd[0].fd, pfd[0].events = self.fd, POLLIN
  return C.poll(pfd, 1, math.floor(seconds * 1000)) ~= 0
end

-- The peer's user id (SO_PEERCRED), or nil.
function Conn:peer_uid()
  local cred, len = ffi.new('struct empo_ucred'), ffi.new('unsigned[1]', ffi.sizeof('struct empo_ucred'))
  if C.getsockopt(self.fd, SOL_SOCKET, SO_PEERCRED, cred, len) ~= 0 then return nil end
  return tonumber(cred.uid), tonumber(cred.pid)
end

function Conn:close()
  if not self.closed then C.close(self.fd); self.closed = true end
end

local Server = {}
Server.__index = Server

-- Connects to the socket at path: a connection, or nil, a message and the
-- errno (ENOENT: no socket; ECONNREFUSED: a socket nobody serves).
function M.connect(path)
  local a, dirfd = address(path)
  if not a then return nil, dirfd end
  local fd = C.socket(AF_UNIX, bit.bor(SOCK_STREAM, SOCK_CLOEXEC), 0)
  if fd < 0 then if dirfd then C.close(dirfd) end return nil, errstr(ffi.errno()) end
  local rc = C.connect(fd, a, ffi.sizeof(a))
  local e = ffi.errno()
  if dirfd then C.close(dirfd) end
  if rc ~= 0 then C.close(fd); return nil, format('%s: %s', path, errstr(e)), e end
  return conn(fd)
end

-- Listens at path (mode 0600). A socket file left by a process that is
-- gone is replaced; one that a live process serves is refused.
-- Returns the server, or nil and a message; `replaced` is true when an
-- old socket file was removed.
function M.listen(path)
  local replaced = false
  local probe, _, e = M.connect(path)
  if probe then probe:close(); return nil, format('%s is served by another process', path) end
  if e == ECONNREFUSED then C.unlink(path); replaced = true end
  local a, dirfd = address(path)
  if not a then return nil, dirfd end
  local fd = C.socket(AF_UNIX, bit.bor(SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC), 0)
  if fd < 0 then if dirfd then C.close(dirfd) end return nil, errstr(ffi.errno()) end
  local old = C.umask(tonumber('077', 8))               -- (the file is made 0600: no moment where others could connect)
  local rc = C.bind(fd, a, ffi.sizeof(a))
  local be = ffi.errno()
  C.umask(old)
  if rc == 0 then C.chmod(path, tonumber("600", 8)) end
  if dirfd then C.close(dirfd) end
  if rc ~= 0 or C.listen(fd, 16) ~= 0 then
    C.close(fd)
    return nil, format('%s: %s', path, errstr(rc ~= 0 and be or ffi.errno()))
  end
  return setmetatable({ fd = fd, path = path, uid = tonumber(C.getuid()) }, Server), replaced
end

-- A waiting client's connection, or nil. Connections from another user
-- (only root can pass the file's mode) are refused with a message.
function Server:accept()
  local fd = C.accept4(self.fd, nil, nil, bit.bor(SOCK_NONBLOCK, SOCK_CLOEXEC))
  if fd < 0 then return nil end
  local c = conn(fd)
  local uid = c:peer_uid()
  if uid ~= self.uid and uid ~= 0 then
    c:send('bye', 'refused: this run belongs to another user\n')
    c:close()
    return nil
  end
  return c
end

-- Waits up to `seconds` until the listening socket or one of conns has
-- something to read.
function Server:wait(conns, seconds)
  local n = #conns + 1
  local pfd = ffi.new('struct empo_pollfd[?]', n)
  pfd[0].fd, pfd[0].events = self.fd, POLLIN
  for i, c in ipairs(conns) do pfd[i].fd, pfd[i].events = c.closed and -1 or c.fd, POLLIN end
  return C.poll(pfd, n, math.floor(seconds * 1000)) > 0
end

-- Stops listening and removes the socket file.
function Server:close()
  if self.fd then C.close(self.fd); self.fd = nil; C.unlink(self.path) end
end

function M.pid() return tonumber(C.getpid()) end

return M
