"""train_torch.py — the PyTorch side of tests/bench/train_bench.lua: training tokens/s of the same
decoder (tests/parity/qwen2_ref.py's forward, float32) with AdamW.

Usage: train_torch.py THREADS STEPS D LAYERS HEADS KV FFN VOCAB BATCH SEQ
Prints: tokens_per_s (of the fastest step) peak_rss_mb"""
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
import qwen2_ref  # noqa: E402


def main():
    threads, steps, d, layers, heads, kv, ffn, vocab, batch, seq = (int(x) for x in sys.argv[1:11])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = {"model_type": "qwen2", "num_attention_heads": heads, "num_key_value_heads": kv,
           "head_dim": d // heads, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
           "num_hidden_layers": layers, "tie_word_embeddings": True}
    shapes = {"model.embed_tokens.weight": (vocab, d), "model.norm.weight": (d,)}
    for i in range(layers):
        p = "model.layers.%d." % i
        shapes.update({p + "input_layernorm.weight": (d,), p + "post_attention_layernorm.weight": (d,),
                       p + "self_attn.q_proj.weight": (heads * d // heads, d), p + "self_attn.q_proj.bias": (d,),
                       p + "self_attn.k_proj.weight": (kv * d // heads, d), p + "self_attn.k_proj.bias": (kv * d // heads,),
                       p + "self_attn.v_proj.weight": (kv * d // heads, d), p + "self_attn.v_proj.bias": (kv * d // heads,),
                       p + "self_attn.o_proj.weight": (d, d), p + "mlp.gate_proj.weight": (ffn, d),
                       p + "mlp.up_proj.weight": (ffn, d), p + "mlp.down_proj.weight": (d, ffn)})
    w = {k: (torch.randn(s) * 0.02).requires_grad_() for k, s in shapes.items()}
    opt = torch.optim.AdamW(list(w.values()), lr=1e-4)
    ids = torch.randint(0, vocab, (batch, seq + 1))

    def step():
        logits = qwen2_ref.forward(cfg, w, ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(2):
        step()
    best = float("inf")   # the fastest step: the machine is shared and noisy
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("%.1f %.1f" % (batch * seq / best, rss))


if __name__ == "__main__":
    main()
