"""lora_ref.py — the LoRA oracle for tests/parity/test_lora.lua.

Writes a PEFT adapter directory the way PEFT lays one out (its documented
format: adapter_config.json with LoraConfig's fields, adapter_model.safetensors
with base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r],
the adapter name left out), with random A and B, then computes in float64, with
the LoRA forward written here (y = x W^T + b + (x A^T) B^T * alpha / r), the
logits, the masked LM loss and its gradients with respect to every A and B.

usage: lora_ref.py MODEL_DIR ADAPTER_DIR INPUTS OUT RANK ALPHA TARGETS(comma-separated) [rslora]"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_ref  # noqa: E402
import st_io  # noqa: E402

PARTS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
         "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def main():
    model_dir, adapter_dir, inputs_path, out_path = sys.argv[1:5]
    rank, alpha, targets = int(sys.argv[5]), float(sys.argv[6]), sys.argv[7].split(",")
    rslora = len(sys.argv) > 8 and sys.argv[8] == "rslora"
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    w = qwen2_ref.load_weights(model_dir)
    for t in w.values():
        t.requires_grad_(False)
    rng = np.random.default_rng(1234)
    scaling = alpha / rank ** 0.5 if rslora else alpha / rank
    adapters, files = {}, {}
    for layer in range(cfg["num_hidden_layers"]):
        for name in targets:
            module = "model.layers.%d.%s.%s" % (layer, PARTS[name], name)
            out_f, in_f = w[module + ".weight"].shape
            a = rng.uniform(-0.3, 0.3, size=(rank, in_f)).astype(np.float32)
            b = rng.uniform(-0.3, 0.3, size=(out_f, rank)).astype(np.float32)
            files["base_model.model." + module + ".lora_A.weight"] = a
            files["base_model.model." + module + ".lora_B.weight"] = b
            adapters[module] = (torch.tensor(a, dtype=torch.float64, requires_grad=True),
                                torch.tensor(b, dtype=torch.float64, requires_grad=True), scaling)
    os.makedirs(adapter_dir, exist_ok=True)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
              "lora_dropout": 0.0, "target_modules": targets, "bias": "none", "fan_in_fan_out": False,
              "use_rslora": rslora, "use_dora": False, "inference_mode": True, "init_lora_weights": True,
              "modules_to_save": None, "layers_to_transform": None, "layers_pattern": None,
              "rank_pattern": {}, "alpha_pattern": {}, "base_model_name_or_path": model_dir, "revision": None}
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    st_io.write(os.path.join(adapter_dir, "adapter_model.safetensors"), files, {"format": "pt"})

    inputs, _ = st_io.read(inputs_path)
    ids = torch.tensor(inputs["ids"], dtype=torch.int64)
    mask = torch.tensor(inputs["mask"], dtype=torch.float64)
    logits = qwen2_ref.forward(cfg, w, ids, adapters=adapters)
    logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    loss = -(logp * mask[:, 1:]).sum() / mask[:, 1:].sum()
    loss.backward()
    out = {"logits": logits.detach().numpy(), "loss": np.array([loss.item()])}
    for module, (a, b, _) in adapters.items():
        out["grad.base_model.model." + module + ".lora_A.weight"] = a.grad.numpy()
        out["grad.base_model.model." + module + ".lora_B.weight"] = b.grad.numpy()
    st_io.write(out_path, out)


if __name__ == "__main__":
    main()
