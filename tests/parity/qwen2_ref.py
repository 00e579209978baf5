"""qwen2_ref.py — a reference implementation of the Qwen2 / Llama / Mistral decoder in
PyTorch, written for empo's tests (the test oracle for empo.models, and
the PyTorch side of tests/bench/train_bench.lua). forward() works in the
dtype of the weights it is given.

Usage: qwen2_ref.py MODEL_DIR INPUTS.safetensors OUT.safetensors

MODEL_DIR holds config.json and model.safetensors (or shards with an
index). INPUTS holds ids (i64 [B, T]) and mask (f32 [B, T]: which target
positions count in the loss). Computes, in float64, the logits [B, T, V],
the masked next-token loss  -sum(mask[:, 1:] * log p(ids[:, 1:])) /
sum(mask[:, 1:]), and the gradient of that loss for every parameter, and
writes them (as float64) to OUT: "logits", "loss", "grad.<name>"."""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

torch.set_num_threads(2)
DT = torch.float64


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = ["model.safetensors"]
    weights = {}
    for shard in shards:
        part, _ = st_io.read(os.path.join(model_dir, shard))
        weights.update(part)
    return {k: torch.tensor(v, dtype=DT, requires_grad=True) for k, v in weights.items()}


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, theta):
    # as Hugging Face: inv_freq in float32, angles = positions * inv_freq
    dh, t = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dh, 2, dtype=torch.int64).float() / dh))
    angles = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None, :]
    emb = torch.cat((angles, angles), dim=-1).to(x.dtype)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def forward(cfg, w, ids, hidden=False, adapters=None):
    """adapters (optional): projection name (model.layers.N.self_attn.q_proj) -> (A, B, scaling), the LoRA
    update x A^T B^T * scaling added to that projection's output"""
    b, t = ids.shape
    heads, kv, dh = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    qkv_bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    o_bias = cfg["model_type"] == "llama" and cfg.get("attention_bias", False)
    h = w["model.embed_tokens.weight"][ids]
    causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer

        def lin(name, x, bias):
            y = x @ w[p + name + ".weight"].T
            if bias:
                y = y + w[p + name + ".bias"]
            if adapters and p + name in adapters:
                a, b_, scaling = adapters[p + name]
                y = y + (x @ a.T) @ b_.T * scaling
            return y

        x = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", x, qkv_bias).view(b, t, heads, dh).transpose(1, 2)
        k = lin("self_attn.k_proj", x, qkv_bias).view(b, t, kv, dh).transpose(1, 2)
        v = lin("self_attn.v_proj", x, qkv_bias).view(b, t, kv, dh).transpose(1, 2)
        q, k = rope(q, theta), rope(k, theta)
        k = k.repeat_interleave(heads // kv, dim=1)
        v = v.repeat_interleave(heads // kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / dh ** 0.5
        scores = scores.masked_fill(~causal, float("-inf"))
        a = torch.softmax(scores, dim=-1) @ v
        a = a.transpose(1, 2).reshape(b, t, heads * dh)
        h = h + lin("self_attn.o_proj", a, o_bias)
        x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        gate = lin("mlp.gate_proj", x, False)
        h = h + lin("mlp.down_proj", torch.nn.functional.silu(gate) * lin("mlp.up_proj", x, False), False)
    h = rms_norm(h, w["model.norm.weight"], eps)
    if hidden:  # the final hidden states, for a caller that applies the head to some positions only
        return h
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return h @ head.T


def main():
    model_dir, inputs_path, out_path = sys.argv[1:4]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    w = load_weights(model_dir)
    inputs, _ = st_io.read(inputs_path)
    ids = torch.tensor(inputs["ids"], dtype=torch.int64)
    mask = torch.tensor(inputs["mask"], dtype=DT)
    logits = forward(cfg, w, ids)
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    loss = -(logp * mask[:, 1:]).sum() / mask[:, 1:].sum()
    loss.backward()
    out = {"logits": logits.detach().numpy(), "loss": np.array([loss.item()])}
    for name, t in w.items():
        if t.grad is not None:
            out["grad." + name] = t.grad.numpy()
    st_io.write(out_path, out)


if __name__ == "__main__":
    main()
