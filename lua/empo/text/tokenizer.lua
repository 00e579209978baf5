-- empo.text.tokenizer (empo.tokenizer) — Hugging Face byte-level BPE
-- tokenizers (tokenizer.json) and a BPE trainer, over libempo's C
-- tokenizer (core/include/empo/tokenizer.h).
--
--     local tok = empo.tokenizer.load('models/qwen')        -- dir or tokenizer.json
--     local ids = tok:encode('Hello world')                 -- {9707, 1879}
--     tok:encode('<|im_start|>x', { special = false })      -- special-token text as plain text
--     tok:encode('x', { tensor = true })                    -- a 1-d i64 tensor
--     tok:decode(ids, { skip_special = true })              -- 'Hello world'
--     tok:encode_batch({ 'a', 'b' })                        -- { {64}, {65} }
--     tok.eos_id, tok.pad_id, tok.bos_id, tok.vocab_size
--
--     local t = empo.tokenizer.train{ files = { 'corpus.jsonl' }, field = 'text',
--                                     vocab_size = 1024, special_tokens = { '<|endoftext|>' },
--                                     eos = '<|endoftext|>', out = 'models/arith' }
--
-- Token ids are 0-based numbers, as in Hugging Face (they index embedding
-- rows); Lua lists of them are 1-based as usual. Chat templates are in
-- empo.prompt.
local ffi = require 'ffi'
local E = require 'empo.tensor.ffi'
local T = require 'empo.tensor'
local C = E.C

local ffi_string, ffi_new, type, error, tonumber = ffi.string, ffi.new, type, error, tonumber

local M = {}

local Tokenizer = {}
Tokenizer.__index = Tokenizer
M.Tokenizer = Tokenizer

local SPECIAL, ADD_SPECIAL, SKIP_SPECIAL, RAW_BYTES =
  C.EMPO_TOK_SPECIAL, C.EMPO_TOK_ADD_SPECIAL, C.EMPO_TOK_SKIP_SPECIAL, C.EMPO_TOK_RAW_BYTES

-- scratch for C results (one Lua state is one thread)
local ids_p = ffi_new('const int32_t*[1]')
local offs_p = ffi_new('const int64_t*[1]')
local n_p = ffi_new('int64_t[1]')
local str_p = ffi_new('const char*[1]')
local id_p = ffi_new('int32_t[1]')
local int_p = ffi_new('int[1]')
local tok_p = ffi_new('empo_tokenizer*[1]')

local function fail(level)
  error(ffi_string(C.empo_last_error()), level + 1)
end

local function argerror(fname, i, want, got)
  error(string.format("%s: bad argument #%d (%s expected, got %s)", fname, i, want, type(got)), 3)
end

local function opt(opts, key, default)
  if opts == nil or opts[key] == nil then return default end
  return opts[key]
end

local function wrap(h)
  local self = setmetatable({ h = ffi.gc(h, C.empo_tokenizer_free) }, Tokenizer)
  self.vocab_size = tonumber(C.empo_tokenizer_vocab_size(h))
  local function id_or_nil(v) v = tonumber(v); return v >= 0 and v or nil end
  self.bos_id = id_or_nil(C.empo_tokenizer_bos_id(h))
  self.eos_id = id_or_nil(C.empo_tokenizer_eos_id(h))
  self.pad_id = id_or_nil(C.empo_tokenizer_pad_id(h))
  return self
end

local function handle(self, fname)
  if getmetatable(self) ~= Tokenizer then argerror(fname, 1, 'tokenizer', self) end
  if self.h == nil then error(fname .. ': tokenizer was freed', 3) end
  return self.h
end

-- Load a tokenizer.json, or a directory holding tokenizer.json (and
-- tokenizer_config.json, for bos/eos/pad).
function M.load(path)
  if type(path) ~= 'string' then argerror('empo.tokenizer.load', 1, 'string', path) end
  if C.empo_tokenizer_load(tok_p, path) ~= 0 then fail(2) end
  return wrap(tok_p[0])
end

-- From tokenizer.json text in memory (and optionally tokenizer_config.json text).
function M.from_json(json, config_json, name)
  if type(json) ~= 'string' then argerror('empo.tokenizer.from_json', 1, 'string', json) end
  if C.empo_tokenizer_load_json(tok_p, json, #json, config_json, name or '(json)') ~= 0 then fail(2) end
  return wrap(tok_p[0])
end

local function encode_flags(opts)
  local f = 0
  if opt(opts, 'special', true) then f = f + SPECIAL end
  if opt(opts, 'add_special', false) then f = f + ADD_SPECIAL end
  return f
end

local function ids_table(p, lo, hi)
  local t = {}
  for i = lo, hi - 1 do t[i - lo + 1] = p[i] end
  return t
end

local function ids_tensor(p, n)
  T.shape_buf[0] = n
  if C.empo_tensor_from_buffer(T.outp, 1, T.shape_buf, C.EMPO_I64, p, C.EMPO_I32) ~= 0 then fail(3) end
  return T.wrap(T.outp[0])
end

-- text -> list of ids. opts: special (default true: special tokens in the
-- text are control tokens), add_special (default false: BOS/EOS of the
-- post-processor), tensor (default false: a 1-d i64 tensor instead).
function Tokenizer:encode(text, opts)
  local h = handle(self, 'tokenizer:encode')
  if type(text) ~= 'string' then argerror('tokenizer:encode', 1, 'string', text) end
  if C.empo_tokenizer_encode(h, text, #text, encode_flags(opts), ids_p, n_p) ~= 0 then fail(2) end
  local n = tonumber(n_p[0])
  if opt(opts, 'tensor', false) then return ids_tensor(ids_p[0], n) end
  return ids_table(ids_p[0], 0, n)
end

-- list of texts -> list of id lists (same options as encode).
function Tokenizer:encode_batch(texts, opts)
  local h = handle(self, 'tokenizer:encode_batch')
  if type(texts) ~= 'table' then argerror('tokenizer:encode_batch', 1, 'table of strings', texts) end
  local n = #texts
  local ptrs = ffi_new('const char*[?]', n + 1)
  local lens = ffi_new('int64_t[?]', n + 1)
  for i = 1, n do
    local s = texts[i]
    if type(s) ~= 'string' then error('tokenizer:encode_batch: text ' .. i .. ' is a ' .. type(s) .. ', not a string', 2) end
    ptrs[i - 1], lens[i - 1] = s, #s
  end
  -- texts stays referenced (an upvalue of this frame) while C reads the pointers
  if C.empo_tokenizer_encode_batch(h, n, ptrs, lens, encode_flags(opts), ids_p, offs_p) ~= 0 then fail(2) end
  local out, p, o = {}, ids_p[0], offs_p[0]
  for i = 1, n do out[i] = ids_table(p, tonumber(o[i - 1]), tonumber(o[i])) end
  return out
end

-- ids (a list or a 1-d tensor) -> string. opts: skip_special (default
-- false), raw (default false: bytes as they are, even when the ids end
-- inside a UTF-8 character; otherwise such bytes become U+FFFD as in HF).
function Tokenizer:decode(ids, opts)
  local h = handle(self, 'tokenizer:decode')
  if T.is_tensor(ids) then
    if ids:dim() > 1 then error('tokenizer:decode: ids must be a 1-d tensor, got ' .. ids:describe(), 2) end
    ids = ids:dim() == 0 and { ids:item() } or ids:tolist()
  elseif type(ids) ~= 'table' then
    argerror('tokenizer:decode', 1, 'table of ids or tensor', ids)
  end
  local n = #ids
  local buf = ffi_new('int32_t[?]', n + 1)
  for i = 1, n do
    local v = ids[i]
    if type(v) ~= 'number' or v % 1 ~= 0 or v < -2147483648 or v > 2147483647 then
      error('tokenizer:decode: id ' .. i .. ' is not an integer (' .. tostring(v) .. ')', 2)
    end
    buf[i - 1] = v
  end
  local f = 0
  if opt(opts, 'skip_special', false) then f = f + SKIP_SPECIAL end
  if opt(opts, 'raw', false) then f = f + RAW_BYTES end
  if C.empo_tokenizer_decode(h, buf, n, f, str_p, n_p) ~= 0 then fail(2) end
  return ffi_string(str_p[0], n_p[0])
end

-- The id of a token as spelled in tokenizer.json ("Ġworld"), or nil.
function Tokenizer:token_to_id(token)
  local h = handle(self, 'tokenizer:token_to_id')
  if type(token) ~= 'string' then argerror('tokenizer:token_to_id', 1, 'string', token) end
  local id = C.empo_tokenizer_token_to_id(h, token, #token)
  return id >= 0 and tonumber(id) or nil
end

-- The token of an id as spelled in tokenizer.json, or nil.
function Tokenizer:id_to_token(id)
  local h = handle(self, 'tokenizer:id_to_token')
  if type(id) ~= 'number' then argerror('tokenizer:id_to_token', 1, 'number', id) end
  if id % 1 ~= 0 or id < 0 or id >= self.vocab_size then return nil end
  if C.empo_tokenizer_id_to_token(h, id, str_p, n_p) ~= 0 then return nil end
  return ffi_string(str_p[0], n_p[0])
end

function Tokenizer:is_special(id)
  return C.empo_tokenizer_is_special(handle(self, 'tokenizer:is_special'), id) ~= 0
end

-- { {id =, content =, special =}, ... } in file order.
function Tokenizer:added_tokens()
  local h = handle(self, 'tokenizer:added_tokens')
  local out = {}
  for i = 0, tonumber(C.empo_tokenizer_added_count(h)) - 1 do
    if C.empo_tokenizer_added_token(h, i, id_p, str_p, n_p, int_p) ~= 0 then fail(2) end
    out[#out + 1] = { id = tonumber(id_p[0]), content = ffi_string(str_p[0], n_p[0]), special = int_p[0] ~= 0 }
  end
  return out
end

-- Release the C tokenizer now (later calls raise "tokenizer was freed").
function Tokenizer:free()
  if self.h ~= nil then
    C.empo_tokenizer_free(ffi.gc(self.h, nil))
    self.h = nil
  end
end

function Tokenizer:__tostring()
  if self.h == nil then return 'Tokenizer (freed)' end
  return string.format('Tokenizer (vocab %d, bos %s, eos %s, pad %s)', self.vocab_size,
                       tostring(self.bos_id), tostring(self.eos_id), tostring(self.pad_id))
end

-- ---- training ----

local function list_of_strings(v, what)
  if v == nil then return {} end
  if type(v) == 'string' then return { v } end
  if type(v) ~= 'table' then error('empo.tokenizer.train: ' .. what .. ' must be a string or a list of strings', 3) end
  for i = 1, #v do
    if type(v[i]) ~= 'string' then error('empo.tokenizer.train: ' .. what .. '[' .. i .. '] is not a string', 3) end
  end
  return v
end

-- Learn a byte-level BPE (Qwen's pre-tokenizer: every digit stays one
-- token). Options: vocab_size (required: special + 256 bytes + merges),
-- files (text files, or JSONL when `field` names the string field of each
-- line), texts (strings, each one document), special_tokens (first ids),
-- bos/eos/pad (names among special_tokens, for tokenizer_config.json),
-- min_frequency (default 2), out (a directory to write tokenizer.json and
-- tokenizer_config.json to). Returns the trained tokenizer.
function M.train(o)
  if type(o) ~= 'table' then argerror('empo.tokenizer.train', 1, 'table of options', o) end
  local vs = o.vocab_size
  if type(vs) ~= 'number' or vs % 1 ~= 0 then error('empo.tokenizer.train: vocab_size (an integer) is required', 2) end
  local files, texts = list_of_strings(o.files, 'files'), list_of_strings(o.texts, 'texts')
  if #files == 0 and #texts == 0 then error('empo.tokenizer.train: give files or texts', 2) end
  local p = ffi_new('empo_bpe_trainer*[1]')
  if C.empo_bpe_trainer_new(p, vs, o.min_frequency or 2) ~= 0 then fail(2) end
  local tr = ffi.gc(p[0], C.empo_bpe_trainer_free)
  local function done(ok)
    C.empo_bpe_trainer_free(ffi.gc(tr, nil))
    if not ok then error(ffi_string(C.empo_last_error()), 3) end
  end
  for _, s in ipairs(list_of_strings(o.special_tokens, 'special_tokens')) do
    if C.empo_bpe_trainer_add_special(tr, s, #s) ~= 0 then done(false) end
  end
  if C.empo_bpe_trainer_set_roles(tr, o.bos, o.eos, o.pad) ~= 0 then done(false) end
  for _, f in ipairs(files) do
    if C.empo_bpe_trainer_feed_file(tr, f, o.field) ~= 0 then done(false) end
  end
  for _, s in ipairs(texts) do
    if C.empo_bpe_trainer_feed(tr, s, #s) ~= 0 then done(false) end
  end
  if C.empo_bpe_trainer_train(tr) ~= 0 then done(false) end
  if o.out and C.empo_bpe_trainer_save(tr, o.out) ~= 0 then done(false) end
  local jp, cp = ffi_new('const char*[1]'), ffi_new('const char*[1]')
  if C.empo_bpe_trainer_json(tr, jp, cp) ~= 0 then done(false) end
  local json, config = ffi_string(jp[0]), ffi_string(cp[0])
  done(true)
  local tok = M.from_json(json, config, o.out and (o.out .. '/tokenizer.json') or '(trained)')
  tok.json, tok.config_json = json, config
  return tok
end

return M
