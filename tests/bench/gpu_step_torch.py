"""gpu_step_torch.py — the PyTorch side of tests/bench/gpu_step.lua: the same training step (a Qwen2
model from transformers, float32, SDPA attention, the next-token loss, backward, gradient clipping,
fused AdamW) on the same card, timed the same way (the fastest of STEPS steps after two warm-up
steps). Given its best: fused AdamW, SDPA, no gradient checkpointing.

Usage: gpu_step_torch.py [shape] [batch] [seq] [steps] [tf32]   (defaults: qwen05 4 512 5 0)
Prints one line: torch_step shape=... tokens_per_s=... step_s=..."""
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPES = {
    "qwen05": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                   num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6),
    "qwen15": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                   num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True, rope_theta=1e4),
}   # as tests/bench/gpu_shapes.lua


def main():
    args = sys.argv[1:] + [None] * 5
    shape = args[0] or "qwen05"
    batch, seq, steps = int(args[1] or 4), int(args[2] or 512), int(args[3] or 5)
    tf32 = (args[4] or "0") == "1"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES[shape], rms_norm_eps=1e-6, max_position_embeddings=32768,
                      attn_implementation="sdpa", torch_dtype=torch.float32)
    model = Qwen2ForCausalLM(cfg).cuda().float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq + 1), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(input_ids=ids[:, :-1]).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab_size).float(), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()   # waits for the device

    for _ in range(2):
        step()
    best, loss = float("inf"), None
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        best = min(best, time.perf_counter() - t0)
    tokens = batch * seq
    print("torch_step shape=%s batch=%d seq=%d precision=%s tokens_per_s=%.0f step_s=%.3f loss=%.4f "
          "peak_mem_gb=%.1f torch=%s" % (shape, batch, seq, "tf32" if tf32 else "f32", tokens / best, best, loss,
                                          torch.cuda.max_memory_allocated() / 2**30, torch.__version__))


if __name__ == "__main__":
    main()
