"""rl_step_torch.py — the PyTorch side of tests/bench/rl_step.lua: one EMPO step as one would write
it in PyTorch for the same decoder and weights (tests/parity/qwen2_ref.py,
float32): KV-cache sampling of N completions for each of PROMPTS prompts
(generate_torch.generate, which also returns the sampled tokens' log-probs:
the old policy's), then the policy update: the log-probs of the completion
tokens under the current weights (a full forward of prompt + completion),
the clipped surrogate (clip 0.2 / 0.28, token mean) with fixed advantages
standardized per group, backward, gradient clipping at 1.0, AdamW.
Clustering is not part of it (it has no PyTorch counterpart: the reference
clusters with Math-Verify in Python).

Usage: rl_step_torch.py THREADS MODEL_DIR PROMPTS N PROMPT_LEN NEW_TOKENS REPEATS
Prints the best of REPEATS (after a warm-up), in seconds, then the peak RSS:
    sample_s update_s step_s peak_rss_mb"""
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate_torch  # noqa: E402
import qwen2_ref  # noqa: E402


def update(cfg, w, opt, prompts, tokens, old, adv, n):
    T0 = prompts.shape[1]
    ids = torch.cat([prompts.repeat_interleave(n, dim=0), tokens], dim=1)
    logits = qwen2_ref.forward(cfg, w, ids[:, :-1])[:, T0 - 1:]            # [B, new, V]
    logp = torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None])[..., 0]
    ratio = torch.exp((logp - old).clamp(-20, 20))
    a = adv[:, None]
    loss = torch.maximum(-a * ratio, -a * ratio.clamp(0.8, 1.28)).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
    opt.step()
    opt.zero_grad()


def main():
    model_dir, cfg, n, new_tokens, repeats, prompts = generate_torch.setup(sys.argv)
    P = prompts.shape[0]
    w = {k: v.detach().float().requires_grad_(True) for k, v in qwen2_ref.load_weights(model_dir).items()}
    opt = torch.optim.AdamW(list(w.values()), lr=1e-5, weight_decay=0.0)
    best = [float("inf")] * 3
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        with torch.inference_mode():
            wd = {k: v.detach() for k, v in w.items()}
            tokens, _, old = generate_torch.generate(cfg, wd, prompts, n, new_tokens)
        tokens, old = tokens.clone(), old.clone()
        t1 = time.perf_counter()
        adv = torch.randn(P, n)
        adv = ((adv - adv.mean(1, keepdim=True)) / (adv.std(1, keepdim=True) + 1e-6)).reshape(-1)
        update(cfg, w, opt, prompts, tokens, old, adv, n)
        t2 = time.perf_counter()
        if r > 0:
            best = [min(best[0], t1 - t0), min(best[1], t2 - t1), min(best[2], t2 - t0)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("%.4f %.4f %.4f %.1f" % (best[0], best[1], best[2], rss))


if __name__ == "__main__":
    main()
