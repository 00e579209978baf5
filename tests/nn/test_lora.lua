-- tests/nn/test_lora.lua — empo.nn.lora in use (its numbers against
-- PyTorch are tests/parity/test_lora.lua): the C decoder with adapters
-- (low-rank updates in the decode step, the SwiGLU unfused when gate/up
-- have one, a bf16 base and embedding) samples what the Lua model does;
-- bf16 loading holds one bf16 model; bad adapter directories and settings
-- fail naming what is wrong; and a LoRA run of the trainer: only the
-- adapters train, the KL reference is the base with no copy, checkpoints
-- hold the adapter and its moments, resume continues them, the run's
-- adapter is PEFT's layout.
local empo = require 'empo'
local lora = require 'empo.nn.lora'
local check = require 'check'
local c = check.new('test_lora')

local tmp = check.tmpdir()

local function hf(over) return check.tiny_hf({ max_position_embeddings = 96 }, over) end

-- nonzero adapters (B starts at zero: the decoder's update would be invisible)
local function perturb(model, seed)
  local g = empo.Generator(seed, 3)
  empo.no_grad(function()
    for _, p in ipairs(lora.parameters(model)) do p:copy_(g:randn(unpack(p:size())) * 0.2) end
  end)
end

local PROMPTS = { { 5, 9, 2, 33, 7, 1, 60, 12, 8 }, { 41 }, { 3, 3, 3, 17 } }
local OPTS = { n = 3, temperature = 1.0, top_p = 0.9, max_new_tokens = 16, seed = 4 }

local function compare(a, b)
  local same, worst = #a == #b, 0
  for i = 1, math.min(#a, #b) do
    same = same and #a[i].ids == #b[i].ids
    for t = 1, math.min(#a[i].ids, #b[i].ids) do
      same = same and a[i].ids[t] == b[i].ids[t]
      worst = math.max(worst, math.abs(a[i].logprobs[t] - b[i].logprobs[t]))
    end
  end
  return same, worst
end

-- ---- the C decoder with adapters ----
for _, case in ipairs({ { name = 'f32 base, every projection', targets = lora.ALL },
                        { name = 'bf16 base, attention only', targets = { 'q_proj', 'k_proj', 'v_proj', 'o_proj' },
                          bf16 = true },
                        { name = 'bf16 base tied, gate/up/down', targets = { 'gate_proj', 'up_proj', 'down_proj' },
                          bf16 = true, over = { tie_word_embeddings = true } } }) do
  local dir = tmp .. '/m' .. case.name:gsub('%W', '')
  empo.models.new(hf(case.over), 5):save_pretrained(dir)
  local model = empo.models.from_pretrained(dir, { dtype = case.bf16 and 'bf16' or 'f32' })
  lora.apply(model, { rank = 3, alpha = 6, targets = case.targets })
  perturb(model, 1)
  local a, sa = empo.sample.generate(model, nil, PROMPTS, OPTS)
  local b, sb = empo.sample.generate(model, nil, PROMPTS, check.with(OPTS, { c_decode = false }))
  c.eq(sa.decode, 'c', case.name .. ': a stock model with stock adapters decodes in C')
  c.eq(sb.decode, 'lua', case.name .. ': c_decode = false runs the Lua model')
  local same, worst = compare(a, b)
  c.ok(same, case.name .. ': the C decoder samples the Lua model\'s tokens')
  c.ok(worst < 1e-4, string.format('%s: the same log-probs (worst %.2e)', case.name, worst))
  local base = lora.base_view(model)
  local x = empo.sample.generate(base, nil, PROMPTS, OPTS)
  local same_as_base = compare(a, x)
  c.ok(not same_as_base, case.name .. ': the adapters change what is sampled (the update is not ignored)')
  -- a replaced adapter forward: the Lua model runs it
  local one = model.model.layers:at(1)[lora.PARTS[case.targets[1]]][case.targets[1]]
  one.forward = function(self, x2) return lora.LoraLinear.forward(self, x2) end
  local _, sc = empo.sample.generate(model, nil, PROMPTS, OPTS)
  c.eq(sc.decode, 'lua', case.name .. ': a replaced adapter forward runs the Lua model')
  one.forward = nil
end

-- ---- bad settings and adapter directories ----
do
  local dir = tmp .. '/bad_base'
  empo.models.new(hf(), 2):save_pretrained(dir)
  local function fresh() return empo.models.from_pretrained(dir) end
  c.raises(function() lora.apply(fresh(), { rank = 0 }) end, 'rank must be a whole number >= 1')
  c.raises(function() lora.apply(fresh(), { targets = { 'qproj' } }) end, 'target qproj is not a projection')
  c.raises(function() lora.apply(fresh(), { dropout = 1 }) end, 'dropout must be in')
  c.raises(function() lora.apply(fresh(), { ranks = 4 }) end, 'unknown field ranks')
  local m = lora.apply(fresh(), {})
  c.raises(function() lora.apply(m, {}) end, 'has adapters already')
  c.raises(function() lora.load(fresh(), tmp .. '/nowhere') end, 'adapter_config.json not found')
  lora.save(m, tmp .. '/good')
  local function variant(name, edit)
    local d = tmp .. '/' .. name
    os.execute(string.format("rm -rf '%s' && cp -r '%s/good' '%s'", d, tmp, d))
    edit(d)
    return d
  end
  local function set_config(d, k, v)
    local cfg = empo.json.read_file(d .. '/adapter_config.json')
    cfg[k] = v
    empo.json.write_file(d .. '/adapter_config.json', cfg)
  end
  c.raises(function() lora.load(fresh(), variant('dora', function(d) set_config(d, 'use_dora', true) end)) end,
           'use_dora = true is not supported')
  c.raises(function() lora.load(fresh(), variant('ia3', function(d) set_config(d, 'peft_type', 'IA3') end)) end,
           'peft_type IA3 is not LORA')
  c.raises(function() lora.load(fresh(), variant('regex', function(d) set_config(d, 'target_modules', '.*proj') end)) end,
           'a regular expression')
  c.raises(function() lora.load(fresh(), variant('r8', function(d) set_config(d, 'r', 8) end)) end,
           'the model expects')
  c.raises(function()
    lora.load(fresh(), variant('torn', function(d)
      local f = io.open(d .. '/adapter_model.safetensors', 'r+b')
      f:write('garbage!')
      f:close()
    end))
  end, 'adapter_model.safetensors')
  c.raises(function()
    lora.load(fresh(), variant('fewer', function(d) set_config(d, 'target_modules', empo.json.array{ 'q_proj' }) end))
  end, 'this model has no adapter for')
  local m2 = lora.apply(fresh(), { rank = 4 })
  c.raises(function() lora.load(m2, tmp .. '/good') end, 'rank 16')
end

-- ---- dropout: on the adapter's input, in training only ----
do
  local m = empo.models.new(hf(), 6)
  lora.apply(m, { rank = 2, alpha = 2, dropout = 0.5, targets = { 'q_proj' } })
  perturb(m, 2)
  local ids = empo.tensor({ { 1, 2, 3, 4, 5, 6 } }, 'i64')
  local a = empo.no_grad(function() return m(ids) end)
  local b = empo.no_grad(function() return m(ids) end)
  c.ok((a - b):abs():max():item() > 0, 'dropout: two training-mode forwards differ')
  m:eval()
  local e1 = empo.no_grad(function() return m(ids) end)
  local e2 = empo.no_grad(function() return m(ids) end)
  c.eq((e1 - e2):abs():max():item(), 0, 'dropout: eval mode is deterministic')
  for l = 1, m.config.num_hidden_layers do m.model.layers:at(l).self_attn.q_proj.dropout = 0 end
  m:train()
  local plain = empo.no_grad(function() return m(ids) end)
  c.eq((plain - e1):abs():max():item(), 0, 'dropout: eval mode is the adapter without dropout')
end

-- ---- bf16 loading keeps one bf16 model ----
do
  local dir = tmp .. '/bf16load'
  empo.models.new(hf(), 9):save_pretrained(dir)
  local m = empo.models.from_pretrained(dir, { dtype = 'bf16' })
  local blk = m.model.layers:at(1)
  c.eq(blk.self_attn.q_proj.weight:dtype(), 'bf16', 'dtype=bf16: projections in bf16')
  c.eq(m.model.embed_tokens.weight:dtype(), 'bf16', 'dtype=bf16: the embedding in bf16')
  c.eq(blk.input_layernorm.weight:dtype(), 'f32', 'dtype=bf16: norms stay f32')
  c.eq(blk.self_attn.q_proj.bias:dtype(), 'f32', 'dtype=bf16: biases stay f32')
  c.raises(function() empo.models.from_pretrained(dir, { dtype = 'f16' }) end, "dtype must be 'f32' or 'bf16'")
end

-- ---- a LoRA run of the trainer ----
do
  local dir = tmp .. '/policy'
  local corpus = {}
  for i = 1, 40 do corpus[i] = string.format('%d plus %d is %d.', i, i + 1, 2 * i + 1) end
  empo.models.new(hf({ vocab_size = 300 }), 4):save_pretrained(dir)
  local tok = check.tiny_tokenizer(corpus, { out = dir })          -- (its tokenizer.json beside the model)
  local function recipe(over)
    local r = {
      model = dir, tokenizer = tok,
      data = empo.data.list({ 'what is 1 plus 2?', 'what is 3 plus 4?', 'what is 5 plus 6?' }, { seed = 1 }),
      prompt = empo.prompt.plain{ prefix = 'Q: ', suffix = ' A:' }, extract = false,
      cluster = empo.cluster.exact,
      reward = function(group)          -- spread: longer completions score higher
        local r = {}
        for i, text in ipairs(group.completions) do r[i] = #text / 10 end
        return r
      end,
      sample = { n = 4, max_new_tokens = 6 }, prompts_per_step = 2, steps = 2,
      loss = empo.loss.grpo{ kl = 0.05 }, optim = { lr = 1e-2 },
      lora = { rank = 2, alpha = 4, targets = { 'q_proj', 'v_proj', 'down_proj' } },
      name = 'lora_run', out = tmp .. '/runs', save_every = 1, overwrite = true, samples_every = 0,
    }
    for k, v in pairs(over or {}) do r[k] = v end
    return empo.recipe(r)
  end
  local ok_t, t = pcall(empo.rl.trainer, recipe())
  c.ok(ok_t, 'a LoRA recipe makes a trainer: ' .. tostring(not ok_t and t or ''))
  if ok_t then
    c.eq(#t.params, 2 * 3 * 2, 'the optimizer holds the adapters only (A and B, 3 targets, 2 layers)')
    c.ok(t.reference and t.reference.model.layers:at(1).self_attn.q_proj.weight ==
         t.model.model.layers:at(1).self_attn.q_proj.weight, 'the KL reference shares the base weights')
    c.eq(t.model.model.layers:at(1).self_attn.q_proj.weight:dtype(), 'bf16', 'the base is bf16')
    local before = {}
    for _, p in ipairs(t.model:named_parameters()) do
      if not p.name:match('lora_') and p.tensor:dtype() == 'f32' then before[p.name] = p.tensor:clone() end
    end
    t:run()
    local moved = 0
    for _, p in ipairs(t.model:named_parameters()) do
      if before[p.name] and (p.tensor - before[p.name]):abs():max():item() > 0 then moved = moved + 1 end
    end
    c.eq(moved, 0, 'the base does not change')
    local nonzero = 0
    for _, p in ipairs(lora.named_parameters(t.model)) do
      if p.name:match('lora_B') and p.tensor:abs():max():item() > 0 then nonzero = nonzero + 1 end
    end
    c.ok(nonzero > 0, 'the adapters trained (some B is no longer zero)')
    local run = tmp .. '/runs/lora_run'
    c.ok(empo.fs.exists(run .. '/checkpoint-2/adapter_model.safetensors') and
         empo.fs.exists(run .. '/checkpoint-2/adapter_config.json') and
         not empo.fs.exists(run .. '/checkpoint-2/model.safetensors'), 'a checkpoint holds the adapter, not the base')
    local moments = empo.safetensors.load(run .. '/checkpoint-2/optimizer.safetensors')
    local n = 0
    for _ in pairs(moments) do n = n + 1 end
    c.eq(n, 2 * #t.params, 'the checkpoint holds the adapters\' AdamW moments only')
    local saved = t:save()
    c.ok(saved:match('/adapter$') and empo.fs.exists(saved .. '/adapter_config.json'), 'save() writes the adapter')
    local want = lora.state(t.model)
    t:close()
    -- resume: the adapters come back
    local t2 = empo.rl.trainer(recipe({ resume = true, overwrite = false, steps = 3 }))
    local worst = 0
    for name, v in pairs(lora.state(t2.model)) do worst = math.max(worst, (v - want[name]):abs():max():item()) end
    c.eq(worst, 0, 'resume loads the adapters of the last checkpoint')
    c.eq(t2.step_count, 2, 'resume continues after step 2')
    t2:run()
    c.eq(t2.step_count, 3, 'and runs step 3')
    t2:close()
    -- an adapter to start from (lora.from), with its settings
    local t3 = empo.rl.trainer(recipe({ lora = { from = saved }, name = '', save_every = 0, steps = 1 }))
    c.eq(t3.model.lora.rank, 2, 'lora.from: the adapter\'s settings')
    local w3 = 0
    for name, v in pairs(lora.state(t3.model)) do w3 = math.max(w3, (v - want[name]):abs():max():item()) end
    c.eq(w3, 0, 'lora.from: the adapter\'s weights')
    c.raises(function() empo.rl.trainer(recipe({ lora = { from = saved, rank = 4 }, name = '', save_every = 0 })) end, 'rank')
    -- the commands: empo merge (a plain checkpoint of base + adapter), empo eval adapter=
    local q = function(x) return "'" .. x .. "'" end
    local out, rc = check.empo(table.concat({ 'merge', q(dir), q(saved), q(tmp .. '/merged') }, ' '))
    c.eq(rc, 0, 'empo merge runs: ' .. out)
    local merged = empo.models.from_pretrained(tmp .. '/merged')
    local ids = empo.tensor({ { 3, 4, 5, 6, 7 } }, 'i64')
    local e = check.rel_err(empo.no_grad(function() return merged(ids) end),
                            empo.no_grad(function() return t3.model(ids) end))
    -- (the trained policy ran on the bf16 base; the merge reads the file's f32 base: bf16 rounding apart)
    c.ok(e < 2e-2, string.format('the merged checkpoint computes the adapted model (rel err %.1e)', e))
    c.ok(empo.fs.exists(tmp .. '/merged/tokenizer.json'), 'empo merge copies the base\'s tokenizer')
    out, rc = check.empo(table.concat({ 'merge', q(dir), q(saved), q(tmp .. '/merged') }, ' '))
    c.ok(rc == 1 and out:find('holds a model already', 1, true), 'empo merge refuses an existing model directory')
    out, rc = check.empo(table.concat({ 'merge', q(dir), q(tmp .. '/nowhere'), q(tmp .. '/merged2') }, ' '))
    c.ok(rc == 1 and out:find('adapter_config.json not found', 1, true), 'empo merge names a missing adapter: ' .. out)
  end
  c.raises(function() empo.rl.trainer(recipe({ lora = { rank = 0 }, name = '', save_every = 0 })) end, 'lora.rank')
  local R = require 'empo.rl.recipe'
  local r = R.resolve(recipe({ lora = false }), { 'lora.rank=8', 'lora.targets=q_proj' })
  c.ok(r.lora.rank == 8 and r.lora.targets == 'q_proj', 'a dotted override (lora.rank=8) turns LoRA on')
  c.eq(R.resolve(recipe(), { 'lora=false' }).lora, false, 'lora=false turns it off')
end

os.execute("rm -rf '" .. tmp .. "'")
c.done()
