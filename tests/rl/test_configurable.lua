-- tests/rl/test_configurable.lua — one protocol for every configured
-- piece (rewards, filters, advantages, losses, cluster rules): usable bare,
-- configured by calling with options (or nothing), printable as its name,
-- and an unknown option refused by name, the same way for each.
local check = require 'check'
local empo = require 'empo'
local configurable = require 'empo.rl.configurable'
local c = check.new('test_configurable')

local group = empo.rl.score({ 'a \\boxed{1}', 'b \\boxed{1}', 'c \\boxed{2}', 'd' })
local S, T = 2, 3
local batch = { logp = empo.zeros(S, T), old_logp = empo.zeros(S, T), adv = empo.tensor({ 1, -1 }),
                mask = empo.ones(S, T) }
local pieces = {
  { empo.reward.cluster_share, { empty = -1 }, function(p) return #p(group) == 4 end },
  { empo.filter.entropy, { low = 0.1 }, function(p) return type(p(group)) == 'boolean' end },
  { empo.advantage.grpo, { eps = 1e-3 }, function(p) return #p({ 1, 0, 1, 0 }, group) == 4 end },
  { empo.loss.grpo, { clip_low = 0.1 }, function(p) return p(batch):item() == 0 end },
  { empo.loss.gspo, { kl = 0 }, function(p) return p(batch):item() == 0 end },
  { empo.cluster.math, { rtol = 1e-4 }, function(p) return p('1/2', '0.5') == true end },
  { empo.cluster.exact, { rtol = 0 }, function(p) return p('x', 'x') == true end },
}
for _, t in ipairs(pieces) do
  local piece, opts, computes = t[1], t[2], t[3]
  local name = tostring(piece)
  c.ok(name:match('^empo%.%a+%.[%w_]+$'), 'printable as its name: ' .. name)
  c.ok(configurable.is(piece), name .. ' is a configured piece')
  c.ok(computes(piece), name .. ' computes bare')
  local copy = piece(opts)
  c.ok(configurable.is(copy) and copy ~= piece and tostring(copy) == name, name .. '{...} is a configured copy')
  for k, v in pairs(opts) do c.eq(copy.options[k], v, name .. ': the option is set') end
  c.ok(computes(copy), name .. '{...} computes')
  c.ok(configurable.is(piece()) and computes(piece()), name .. '() is a copy with the same options')
  c.raises(function() return piece{ no_such_option = 1 } end, name .. ": unknown option 'no_such_option'")
end
c.ok(require('empo.rl.loss').is_loss(empo.loss.grpo) and not require('empo.rl.loss').is_loss(empo.reward.majority),
     'is_loss tells a loss from other pieces')
c.raises(function() return empo.loss.grpo{ clip_low = 2 } end, 'empo.loss.grpo: clip_low must be')
c.raises(function() return empo.cluster.math{ chains = 'sometimes' } end, "chains must be 'last' or 'text'")
c.done()
