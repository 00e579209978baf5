-- tests/cuda/test_mixed.lua — mixed precision on the GPU (empo.nn.mixed,
-- empo.linear_bf16, recipe precision = 'bf16'): the bf16 linear's values
-- and gradients against the same products written out in f32 from the
-- rounded operands; its refusals; the copies follow the weights after an
-- optimizer step and are the sampler's own (no second copy); a
-- mixed-precision trainer runs two EMPO steps, measures the sampler/update
-- log-prob gap on the same weights, keeps its master weights f32 and its
-- copies current; precision = 'bf16' on the CPU is refused by name; tf32
-- (on with precision = 'bf16' unless set false, or set true) turns TF32 on
-- for a run and back off at its close. In CI on
-- the emulated device; on a GPU by tests/device/check.sh.
local empo = require 'empo'
local check = require 'check'
local mixed = require 'empo.nn.mixed'
local c = check.new('cuda/test_mixed')

check.need_cuda()

local function rel(a, b)
  a, b = a:cpu(), b:cpu()
  return math.sqrt(((a - b) * (a - b)):sum():item() / math.max((b * b):sum():item(), 1e-30))
end
local function r16(t) return t:detach():cpu():bfloat16():float() end   -- rounded to bf16, as f32

-- ---- the op: y = bf16(x) bf16(w)^T + b; gx = bf16(g) bf16(w); gw = bf16(g)^T bf16(x) ----
do
  empo.manual_seed(5)
  local x, w, b, g = empo.randn({ 2, 5, 24 }), empo.randn({ 40, 24 }), empo.randn({ 40 }), empo.randn({ 2, 5, 40 })
  local dx, dw, db = x:cuda():requires_grad_(), w:cuda():requires_grad_(), b:cuda():requires_grad_()
  local w16 = w:cuda():bfloat16()
  local y = empo.linear_bf16(dx, dw, w16, db)
  c.eq(y:dtype(), 'f32', 'the output is f32')
  local want = empo.linear(r16(x), r16(w), b)
  c.ok(rel(y, want) < 1e-5, string.format('values: the f32 product of the rounded operands (%.2g)', rel(y, want)))
  y:backward(g:cuda())
  local g2, x2, w2 = r16(g):reshape(10, 40), r16(x):reshape(10, 24), r16(w)
  c.ok(rel(dx.grad:reshape(10, 24), g2:matmul(w2)) < 1e-5, 'gx = bf16(g) bf16(w)')
  c.ok(rel(dw.grad, g2:transpose(1, 2):matmul(x2)) < 1e-5, 'gw = bf16(g)^T bf16(x), into the f32 weight')
  c.eq(dw.grad:dtype(), 'f32', 'the master gradient is f32')
  c.ok(rel(db.grad, g:reshape(10, 40):sum(1)) < 1e-5, 'gb = the column sums of g')
  c.raises(function() empo.linear_bf16(dx, dw, w:cuda():bfloat16():narrow(1, 1, 39), db) end,
           'weight_bf16 [39 x 24] bf16 cuda must be a contiguous copy of weight')
  c.raises(function() empo.linear_bf16(dx, dw, w:cuda(), db) end, 'weight_bf16')
end

-- ---- the copies: made, used by the layers, refreshed, shared with the sampler ----
local cfg = check.tiny_hf({ max_position_embeddings = 96, tie_word_embeddings = false })
do
  local model = empo.models.new(cfg, 4):to('cuda')
  mixed.attach(model)
  local q = model.model.layers:at(1).self_attn.q_proj
  c.ok(q.weight_bf16 ~= nil and q.weight_bf16:dtype() == 'bf16', 'a projection gets its bf16 copy')
  c.ok(model.lm_head.weight_bf16 == nil, "the LM head's update stays f32")
  local opt = empo.optim.adamw { params = model:parameters(), lr = 1e-2 }
  local ids = empo.randint(0, cfg.vocab_size, 2, 9):cuda()
  local loss = empo.train.lm_loss(model, ids)
  loss:backward()
  c.ok(q.weight.grad ~= nil and q.weight.grad:dtype() == 'f32', 'the gradient reaches the f32 weight')
  opt:step()
  c.ok((q.weight_bf16:float() - r16(q.weight):cuda()):abs():max():item() > 0, 'before refresh the copy is stale')
  mixed.refresh(model)
  c.eq((q.weight_bf16:float() - r16(q.weight):cuda()):abs():max():item(), 0, 'refresh: the copy is the weight rounded')
  local spec = model:decoder_spec()
  local copies = require('empo.generate.decoder').bf16_copies(spec)
  c.eq(#copies, 0, 'the sampler reads the copies as they are: none made for it')
  c.ok(spec.layer[1].q == q.weight_bf16, "the sampler's q is the layer's copy")
  local out, st = empo.sample.generate(model, nil, { { 5, 9, 2 } }, { n = 2, max_new_tokens = 6, seed = 1,
                                                                     bf16_weights = true })
  c.ok(st.weights == 'bf16' and #out == 2, 'sampling on the shared copies')
  mixed.detach(model)
  c.ok(q.weight_bf16 == nil and not mixed.attached(model), 'detach: f32 products again')
end

-- ---- the trainer with precision = 'bf16' ----
do
  local corpus = {}
  for i = 1, 40 do corpus[i] = string.format('%d plus %d is %d.', i, i, 2 * i) end
  local tok = check.tiny_tokenizer(corpus)
  local tcfg = check.tiny_hf{ vocab_size = tok.vocab_size, max_position_embeddings = 128 }
  local function recipe(device, precision)
    return {
      model = empo.models.new(tcfg, 3), tokenizer = tok,
      data = empo.data.list({ 'what is 1 plus 1?', 'what is 2 plus 2?' }, { seed = 1 }),
      prompt = empo.prompt.plain{ prefix = 'Q: ', suffix = ' A:' },
      sample = { n = 4, temperature = 1.0, max_new_tokens = 8 }, extract = function(t) return t:match('(%S+)%s*$') end,
      cluster = empo.cluster.exact, loss = empo.loss.grpo{},
      reward = function(group)   -- a reward with spread (longer completions score higher): an update to make
        local r = {}
        for i, s in ipairs(group.completions) do r[i] = #s / 10 end
        return r
      end,
      optim = { lr = 3e-3 }, prompts_per_step = 2, steps = 2, seed = 5, device = device, precision = precision,
    }
  end
  local t = empo.rl.trainer(recipe('cuda', 'bf16'))
  c.ok(mixed.attached(t.model), "precision = 'bf16' attaches the copies")
  c.eq(empo.cuda_allow_tf32(true), true, "precision = 'bf16' (tf32 = 'auto'): the f32 products left in TF32")
  local before = t.model.model.layers:at(1).mlp.up_proj.weight:cpu()
  local recs = { t:step(), t:step() }
  local up = t.model.model.layers:at(1).mlp.up_proj
  c.ok((up.weight:cpu() - before):abs():max():item() > 0 and up.weight:dtype() == 'f32', 'the f32 master weights move')
  c.eq((up.weight_bf16:float() - r16(up.weight):cuda()):abs():max():item(), 0, 'and the copies follow them')
  for i, rec in ipairs(recs) do
    c.ok(type(rec.old_gap_mean) == 'number' and rec.old_gap_max >= rec.old_gap_mean and rec.old_gap_max < 0.1,
         string.format("step %d: the sampler's log-probs against the update's forward: mean %.2g, max %.2g", i,
                       rec.old_gap_mean or -1, rec.old_gap_max or -1))
    c.ok(rec.loss == rec.loss and rec.grad_norm > 0, string.format('step %d: a finite update', i))
  end
  c.raises(function() empo.rl.trainer(recipe('cpu', 'bf16')) end, "precision='bf16' runs the products on the GPU")
  t:close()
  c.eq(empo.cuda_allow_tf32(false), false, 'and f32 again when the trainer closes')
  local rb = recipe('cuda', 'bf16')
  rb.tf32 = false
  local tb = empo.rl.trainer(rb)
  c.eq(empo.cuda_allow_tf32(false), false, "precision = 'bf16' with tf32 = false: full f32 for the head and attention")
  tb:close()

  -- tf32 = true: the f32 products in TF32 for the run, the setting before it back at close
  local r = recipe('cuda', 'f32')
  r.tf32 = true
  local tt = empo.rl.trainer(r)
  c.eq(empo.cuda_allow_tf32(true), true, 'tf32 = true: TF32 is on while the trainer runs')
  local rec = tt:step()
  c.ok(rec.loss == rec.loss and rec.grad_norm > 0, 'tf32 = true: a finite update')
  tt:close()
  c.eq(empo.cuda_allow_tf32(false), false, 'and off again when it closes')
  local rc = recipe('cpu', 'f32')
  rc.tf32 = true
  c.raises(function() empo.rl.trainer(rc) end, "tf32=true runs the f32 products in TF32 on the GPU")
end

c.done()
