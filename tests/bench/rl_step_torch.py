"""rl_step_torch.py — the PyTorch side of tests/bench/rl_step.lua: one EMPO step as one would write
it in PyTorch for the same decoder and weights (tests/parity/qwen2_ref.py,
float32): KV-cache sampling of N completions for each of PROMPTS prompts
(generate_torch.generate, which also returns the sampled tokens' log-probs:
the old policy's), then the policy update as TRL's GRPO trainer computes
it: the final hidden states of prompt + completion, the LM head on the
completion positions only (logits_to_keep), the log-probs by a per-sequence
log-softmax gather (TRL's selective_log_softmax), the clipped surrogate
(clip 0.2 / 0.28, token mean) with fixed advantages standardized per group,
backward in micro-batches of MICRO sequences (gradient accumulation, TRL's
per_device_train_batch_size; 0 = all at once), gradient clipping at 1.0,
AdamW.
Clustering is not part of it (it has no PyTorch counterpart: the reference
clusters with Math-Verify in Python).

Usage: rl_step_torch.py THREADS MODEL_DIR PROMPTS N PROMPT_LEN NEW_TOKENS REPEATS [MICRO]
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


def selective_log_softmax(logits, index):
    """log_softmax(logits)[index], one sequence at a time (TRL's way for f32: no [B, T, V] softmax)."""
    lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])
    return logits.gather(-1, index[..., None])[..., 0] - lse


def update(cfg, w, opt, prompts, tokens, old, adv, n, micro):
    T0 = prompts.shape[1]
    ids = torch.cat([prompts.repeat_interleave(n, dim=0), tokens], dim=1)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    B = ids.shape[0]
    micro = micro or B
    for s in range(0, B, micro):
        e = min(B, s + micro)
        h = qwen2_ref.forward(cfg, w, ids[s:e, :-1], hidden=True)[:, T0 - 1:]   # completion positions only
        logp = selective_log_softmax(h @ head.T, tokens[s:e])
        ratio = torch.exp((logp - old[s:e]).clamp(-20, 20))
        a = adv[s:e, None]
        loss = torch.maximum(-a * ratio, -a * ratio.clamp(0.8, 1.28)).mean() * ((e - s) / B)
        loss.backward()
    torch.nn.utils.clip_grad_norm_(list(w.values()), 1.0)
    opt.step()
    opt.zero_grad()


def main():
    model_dir, cfg, n, new_tokens, repeats, prompts = generate_torch.setup(sys.argv)
    P = prompts.shape[0]
    micro = int(sys.argv[8]) if len(sys.argv) > 8 else 0
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
        update(cfg, w, opt, prompts, tokens, old, adv, n, micro)
        t2 = time.perf_counter()
        if r > 0:
            best = [min(best[0], t1 - t0), min(best[1], t2 - t1), min(best[2], t2 - t0)]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("%.4f %.4f %.4f %.1f" % (best[0], best[1], best[2], rss))


if __name__ == "__main__":
    main()
