"""gpu_empo_step_torch.py — the PyTorch side of tests/bench/gpu_empo_step.lua: one policy-gradient step
the way TRL's GRPO trainer computes it, on the same card and shape, given its best: f32 master weights
under bf16 autocast (precision bf16) or plain f32, transformers' generate (SDPA, KV cache, all P x G
sequences in one batch, temperature 1, NEW tokens each), the old log-probs from a no-grad forward,
then micro-batches of at most MICRO tokens: completion-position log-probs (logits kept for the
completion positions only, as TRL's logits_to_keep), the clipped surrogate (0.2 / 0.28, token mean),
backward, gradient clipping and fused AdamW. Random-sign advantages, as the empo side.

Usage: gpu_empo_step_torch.py [shape] [P] [G] [T] [NEW] [precision] [MICRO]
       (defaults: qwen05 16 8 256 512 bf16 8192)
Prints one line: torch_empo_step shape=... step_s=... sample_s=... old_s=... update_s=... tokens_per_s=...
mfu=... peak_mb=..."""
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from gpu_step_torch import SHAPES


def matmul_rate(n):
    """the card's bf16 product rate, TFLOP/s (best of 3 after a warm-up)"""
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    best = float("inf")
    for i in range(4):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        (a @ b).sum().item()
        if i > 0:
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e12


def main():
    args = sys.argv[1:] + [None] * 7
    shape = args[0] or "qwen05"
    P, G, T, NEW = int(args[1] or 16), int(args[2] or 8), int(args[3] or 256), int(args[4] or 512)
    amp = (args[5] or "bf16") == "bf16"
    micro = int(args[6] or 8192)
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES[shape], rms_norm_eps=1e-6, max_position_embeddings=32768,
                      attn_implementation="sdpa", torch_dtype=torch.float32)
    model = Qwen2ForCausalLM(cfg).cuda().float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=True)
    prompts = torch.randint(0, cfg.vocab_size - 300, (P, T), device="cuda")
    ids = prompts.repeat_interleave(G, dim=0)
    B = ids.shape[0]

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp)

    def completion_logps(seqs, new):
        # logits of the positions that predict the completion tokens only, then their log-probs
        logits = model(input_ids=seqs, logits_to_keep=new + 1).logits[:, :-1, :].float()
        return torch.gather(logits.log_softmax(-1), 2, seqs[:, -new:, None]).squeeze(2)

    def step(new):
        t0 = time.perf_counter()
        model.eval()
        with torch.inference_mode(), autocast():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new, pad_token_id=0,
                                 eos_token_id=None, use_cache=True)
        out = out.clone()   # (out of inference mode: a plain tensor for the training forward)
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        new = out.shape[1] - T
        adv = torch.where(torch.rand(B, device="cuda") < 0.5, -1.0, 1.0)
        rows = max(1, micro // (T + new))
        model.train()
        with torch.no_grad(), autocast():
            old = torch.cat([completion_logps(out[i:i + rows], new) for i in range(0, B, rows)])
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        for i in range(0, B, rows):
            with autocast():
                lp = completion_logps(out[i:i + rows], new)
            ratio = torch.exp(lp - old[i:i + rows])
            a = adv[i:i + rows, None]
            surrogate = torch.min(ratio * a, ratio.clamp(1 - 0.2, 1 + 0.28) * a)
            loss = -surrogate.sum() / (B * new)   # the token mean over the whole batch
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        t3 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, B * new

    step(32)   # warm-up
    torch.cuda.reset_peak_memory_stats()
    sample, old, update, tokens = step(NEW)
    total = sample + old + update
    n_params = sum(p.numel() for p in model.parameters())
    ctx = T + NEW / 2
    flops = (6 * n_params + 12 * cfg.num_hidden_layers * ctx * cfg.hidden_size) * (B * (T + NEW))
    rate = matmul_rate(8192)
    print("torch_empo_step shape=%s precision=%s prompts=%d n=%d prompt_len=%d new=%d step_s=%.2f sample_s=%.2f "
          "old_s=%.2f update_s=%.2f tokens_per_s=%.0f mfu=%.3f bf16_tflops=%.0f peak_mb=%.0f torch=%s"
          % (shape, "bf16" if amp else "f32", P, G, T, NEW, total, sample, old, update, tokens / total,
             flops / update / (rate * 1e12), rate, torch.cuda.max_memory_allocated() / 2**20, torch.__version__))


if __name__ == "__main__":
    main()
