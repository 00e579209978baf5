-- tests/io/test_json.lua — empo.json: decode (null, arrays, nesting,
-- errors naming the source and where), encode (sorted keys, compact,
-- integers, arrays, refusals), and a round trip through a file.
local check = require 'check'
local empo = require 'empo'
local json = empo.json
local c = check.new('test_json')

local v = json.decode('{"a": 1, "b": [1, 2.5, "x"], "c": null, "d": {"e": true}}', 'here')
c.eq(v.a, 1, 'a number')
c.eq(v.b, { 1, 2.5, 'x' }, 'an array')
c.eq(v.c, json.null, 'null decodes to json.null')
c.eq(v.d, { e = true }, 'a nested object')
c.eq(json.decode('"caf\\u00e9"'), 'café', 'a \\u escape becomes UTF-8')
c.raises(function() return json.decode('{"a": 1,,}', 'f.jsonl:7') end, 'f.jsonl:7: malformed JSON at column 10')
c.raises(function() return json.decode('{\n"a": 1,\n oops}', 'f.json') end, 'f.json: malformed JSON at line 3')
c.raises(function() return json.decode(42, 'src') end, 'src: expected a JSON string')

c.eq(json.encode({ b = 1, a = 2 }, { compact = true }), '{"a":2,"b":1}', 'keys sorted, compact')
c.eq(json.encode({ 1, 2, 3 }, { compact = true }), '[1,2,3]', 'a list')
c.eq(json.encode(json.array(), { compact = true }), '[]', 'an empty array')
c.eq(json.encode({ x = 3.0 }, { compact = true }), '{"x":3}', 'integers without decimals')
c.eq(json.encode({ s = 'a"b\n' }, { compact = true }), '{"s":"a\\"b\\n"}', 'strings escaped')
c.eq(json.decode(json.encode({ x = 0.1 })).x, 0.1, 'a float round-trips exactly')
c.raises(function() return json.encode({ x = 0 / 0 }) end, 'is not a finite number')
c.raises(function() return json.encode({ f = print }) end, 'function')

local dir = check.tmpdir()
json.write_file(dir .. '/v.json', { step = 7, list = json.array{ 1, 2 } })
c.eq(json.read_file(dir .. '/v.json'), { step = 7, list = { 1, 2 } }, 'write_file, read_file')
c.ok(not empo.fs.exists(dir .. '/v.json.tmp'), 'no temporary file left')
c.raises(function() return json.read_file(dir .. '/none.json') end, 'cannot read', 'none.json')
empo.fs.remove_tree(dir)
c.done()
