#!/usr/bin/python3
"""policy_loss_torch.py CASES.json OUT.json — the policy objective of
lua/empo/rl/loss.lua written again in PyTorch (float64), as the oracle of
tests/rl/test_policy_loss.lua: for every case, the loss value and its
gradient with respect to the current log-probs.

The objective (verl's compute_policy_loss / agg_loss, and GSPO's sequence
ratio): per token, r = exp(clamp(log r, -20, 20)) with log r = logp - old
(GRPO) or logp - sg(logp) + sg(mean_t(logp - old)) (GSPO); pg = max(-A r,
-A clip(r, 1 - lo, 1 + hi)); with a dual clip c, pg = min(pg, -A c) where
A < 0; plus kl * clamp(k3, -10, 10), minus entropy * H; aggregated over the
mask as token-mean, seq-mean-token-mean, seq-mean-token-sum or
seq-mean-token-sum-norm."""
import json
import sys

import torch

torch.set_num_threads(1)


def objective(case):
    o = case['opts']
    S, T = case['S'], case['T']
    t = lambda k: torch.tensor(case[k], dtype=torch.float64).reshape(S, T)
    logp = t('logp').requires_grad_(True)
    old, mask = t('old'), t('mask')
    adv = torch.tensor(case['adv'], dtype=torch.float64).reshape(S, 1)
    diff = logp - old
    if o['ratio'] == 'sequence':
        log_seq = (diff * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)
        log_ratio = logp - logp.detach() + log_seq.detach()
    else:
        log_ratio = diff
    ratio = torch.exp(log_ratio.clamp(-20, 20))
    pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - o['clip_low'], 1 + o['clip_high']))
    if o['clip_c']:
        pg = torch.where(adv < 0, torch.minimum(pg, -adv * o['clip_c']), pg)
    if o['kl'] > 0:
        d = t('ref') - logp
        pg = pg + o['kl'] * (torch.exp(d) - d - 1).clamp(-10, 10)
    if o['entropy'] > 0:
        pg = pg - o['entropy'] * t('ent')
    masked = pg * mask
    agg = o['agg']
    if agg == 'token-mean':
        value = masked.sum() / mask.sum().clamp(min=1)
    elif agg == 'seq-mean-token-sum-norm':
        value = masked.sum() / (S * o['norm'])
    else:
        per_seq = masked.sum(1)
        if agg == 'seq-mean-token-mean':
            per_seq = per_seq / mask.sum(1).clamp(min=1)
        value = per_seq.mean()
    value.backward()
    return {'value': value.item(), 'grad': logp.grad.reshape(-1).tolist()}


def main():
    cases = json.load(open(sys.argv[1]))
    json.dump([objective(c) for c in cases], open(sys.argv[2], 'w'))


if __name__ == '__main__':
    main()
