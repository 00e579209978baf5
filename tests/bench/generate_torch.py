"""generate_torch.py — the PyTorch side of tests/bench/generate_bench.lua: batched sampling with a KV
cache, the eager decode loop one would write in PyTorch, for the same
decoder (tests/parity/qwen2_ref.py's layers, float32) and weights.

Usage: generate_torch.py THREADS MODEL_DIR PROMPTS N PROMPT_LEN NEW_TOKENS REPEATS

Each of PROMPTS random prompts (PROMPT_LEN ids, seed 0) is prefilled once;
its KV cache is copied to its N samples, then NEW_TOKENS tokens are sampled
at temperature 1 for all PROMPTS x N sequences, one step at a time, into a
cache preallocated for PROMPT_LEN + NEW_TOKENS positions; each step also
takes the sampled tokens' log-probs (as empo returns them). Grouped KV
heads are attended to by broadcasting, without copies. Runs REPEATS times
(after one warm-up) and prints the best:
    tokens_per_s time_to_first_token_s peak_rss_mb"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
import qwen2_ref  # noqa: E402


def rope_tables(theta, dh, length):
    # as qwen2_ref.rope / Hugging Face: inv_freq in float32, angle = pos * inv_freq
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    angles = torch.arange(length, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((angles, angles), dim=-1)
    return emb.cos(), emb.sin()


def generate(cfg, w, prompts, n, new_tokens):
    """-> (tokens [P*n, new_tokens], seconds to the first sampled tokens,
    their log-probs [P*n, new_tokens])"""
    t0 = time.perf_counter()
    P, T0 = prompts.shape
    B, S = P * n, T0 + new_tokens
    heads, kv, dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    g, eps, layers = heads // kv, cfg["rms_norm_eps"], cfg["num_hidden_layers"]
    cos, sin = rope_tables(cfg["rope_theta"], dh, S)
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    kc = [torch.empty(B, kv, S, dh) for _ in range(layers)]
    vc = [torch.empty(B, kv, S, dh) for _ in range(layers)]
    causal = torch.ones(T0, T0, dtype=torch.bool).tril()

    def lin(p, name, x, bias):
        y = x @ w[p + name + ".weight"].T
        return y + w[p + name + ".bias"] if bias else y

    def step(ids, pos):
        """ids [b, t] at positions pos..pos+t-1 -> last hidden state [b, D]"""
        b, t = ids.shape
        c, s = cos[pos:pos + t], sin[pos:pos + t]
        h = w["model.embed_tokens.weight"][ids]
        for layer in range(layers):
            p = "model.layers.%d." % layer
            x = qwen2_ref.rms_norm(h, w[p + "input_layernorm.weight"], eps)
            q = lin(p, "self_attn.q_proj", x, True).view(b, t, heads, dh).transpose(1, 2)
            k = lin(p, "self_attn.k_proj", x, True).view(b, t, kv, dh).transpose(1, 2)
            v = lin(p, "self_attn.v_proj", x, True).view(b, t, kv, dh).transpose(1, 2)
            q = q * c + qwen2_ref.rotate_half(q) * s
            k = k * c + qwen2_ref.rotate_half(k) * s
            if t > 1:   # prefill: attend within the prompt, then copy the cache to the n samples
                kk, vv = k, v
                kc[layer][:, :, :t] = k.repeat_interleave(n, dim=0)
                vc[layer][:, :, :t] = v.repeat_interleave(n, dim=0)
            else:
                kc[layer][:, :, pos] = k[:, :, 0]
                vc[layer][:, :, pos] = v[:, :, 0]
                kk, vv = kc[layer][:, :, :pos + 1], vc[layer][:, :, :pos + 1]
            # grouped heads by broadcasting: q [b, kv, g*t, dh] against k [b, kv, S, dh]
            qg = q.reshape(b, kv, g * t, dh)
            scores = (qg @ kk.transpose(-1, -2)) / dh ** 0.5
            if t > 1:
                scores = scores.view(b, kv, g, t, t).masked_fill(~causal, float("-inf")).view(b, kv, g * t, t)
            a = (torch.softmax(scores, dim=-1) @ vv).view(b, heads, t, dh)
            h = h + lin(p, "self_attn.o_proj", a.transpose(1, 2).reshape(b, t, heads * dh), False)
            x = qwen2_ref.rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
            gate = lin(p, "mlp.gate_proj", x, False)
            h = h + lin(p, "mlp.down_proj", torch.nn.functional.silu(gate) * lin(p, "mlp.up_proj", x, False), False)
        return qwen2_ref.rms_norm(h[:, -1], w["model.norm.weight"], eps)

    def sample(logits):
        logp = torch.log_softmax(logits, dim=-1)
        tok = torch.multinomial(logp.exp(), 1)
        return tok, logp.gather(-1, tok)

    out = torch.empty(B, new_tokens, dtype=torch.int64)
    logps = torch.empty(B, new_tokens)
    logits = (step(prompts, 0) @ head.T).repeat_interleave(n, dim=0)
    tok, lp = sample(logits)
    out[:, 0], logps[:, 0] = tok[:, 0], lp[:, 0]
    ttft = time.perf_counter() - t0
    for i in range(1, new_tokens):
        tok, lp = sample(step(tok, T0 + i - 1) @ head.T)
        out[:, i], logps[:, i] = tok[:, 0], lp[:, 0]
    return out, ttft, logps


def setup(argv):
    """THREADS MODEL_DIR PROMPTS N PROMPT_LEN NEW_TOKENS REPEATS -> the model's
    config, the sizes and the random prompts (seed 0); threads set."""
    threads, model_dir = int(argv[1]), argv[2]
    P, n, T0, new_tokens, repeats = (int(x) for x in argv[3:8])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    cfg.setdefault("tie_word_embeddings", False)
    cfg.setdefault("rms_norm_eps", 1e-6)
    prompts = torch.randint(0, cfg["vocab_size"], (P, T0))
    return model_dir, cfg, n, new_tokens, repeats, prompts


def main():
    model_dir, cfg, n, new_tokens, repeats, prompts = setup(sys.argv)
    w = {k: v.detach().float() for k, v in qwen2_ref.load_weights(model_dir).items()}
    best_tps, best_ttft = 0.0, float("inf")
    with torch.inference_mode():
        for r in range(repeats + 1):
            t0 = time.perf_counter()
            out, ttft, _ = generate(cfg, w, prompts, n, new_tokens)
            dt = time.perf_counter() - t0
            if r > 0:
                best_tps, best_ttft = max(best_tps, out.numel() / dt), min(best_ttft, ttft)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print("%.1f %.4f %.1f" % (best_tps, best_ttft, rss))


if __name__ == "__main__":
    main()
