-- tests/io/test_fs.lua — empo.fs: atomic writes (the old file or the new,
-- never a torn one), mkdir -p with a writability probe, reading, listing
-- and removing.
local check = require 'check'
local empo = require 'empo'
local fs = empo.fs
local c = check.new('test_fs')

local dir = check.tmpdir()
c.ok(fs.make_dirs(dir .. '/a/b/c'), 'make_dirs makes every parent')
c.ok(fs.is_dir(dir .. '/a/b/c') and not fs.is_dir(dir .. '/a/b/c/x'), 'is_dir')
c.ok(fs.make_dirs(dir .. '/a/b/c'), 'and an existing directory is fine')
local ok, err = fs.make_dirs('/proc/empo-no')
c.ok(not ok and err:find('cannot create directory /proc/empo-no', 1, true), 'an unwritable one is a message')

c.ok(fs.write_atomic(dir .. '/f', 'one'), 'write_atomic')
local fok, ferr = fs.make_dirs(dir .. '/f/sub')
c.ok(not fok and ferr:find('a file is in the way', 1, true), 'make_dirs through a file: a message')
c.ok(fs.write_atomic(dir .. '/empty', '') and fs.read_text(dir .. '/empty') == '', 'an empty file')
local big = string.rep('0123456789', 200000)
c.ok(fs.write_atomic(dir .. '/big', big) and fs.read_text(dir .. '/big') == big, 'a 2 MB file whole')
fs.remove_tree(dir .. '/big'); fs.remove_tree(dir .. '/empty')
c.eq(fs.read_text(dir .. '/f'), 'one', 'read_text')
c.ok(fs.write_atomic(dir .. '/f', 'two'), 'write_atomic over a file')
c.eq(fs.read_text(dir .. '/f'), 'two', 'replaced whole')
c.ok(not fs.exists(dir .. '/f.tmp'), 'no temporary file left')
local none, rerr = fs.read_text(dir .. '/missing')
c.ok(none == nil and rerr ~= nil, 'read_text of a missing file: nil and a message')
local wok, werr = fs.write_atomic(dir .. '/no/such/dir/f', 'x')
c.ok(not wok and werr:find('cannot write', 1, true), 'a write that cannot happen is a message')

c.eq(fs.list(dir), { 'a', 'f' }, 'list, in ls order')
c.eq(fs.list(dir .. '/nowhere'), {}, 'an absent directory lists nothing')
fs.remove_tree(dir .. '/a')
c.ok(not fs.exists(dir .. '/a/'), 'remove_tree')
c.ok(fs.exists(dir .. '/f'), 'and only that')
fs.remove_tree(dir)
c.done()
