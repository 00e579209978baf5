"""generate_ref.py — greedy decoding by the PyTorch reference decoder (qwen2_ref.forward, float64),
re-running the whole sequence at every step: the oracle of
tests/parity/test_generate_torch.lua.

Usage: generate_ref.py MODEL_DIR PROMPTS.json NEW_TOKENS
PROMPTS.json holds a list of prompts (lists of token ids). Prints a JSON list:
for each prompt, {"ids": [...], "logprobs": [...]} — the greedy tokens and
their log-probs under the model."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_ref  # noqa: E402


def main():
    model_dir, prompts_path, new_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg.setdefault("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    w = {k: v.detach() for k, v in qwen2_ref.load_weights(model_dir).items()}
    with open(prompts_path) as f:
        prompts = json.load(f)
    out = []
    with torch.no_grad():
        for prompt in prompts:
            seq, ids, logprobs = list(prompt), [], []
            for _ in range(new_tokens):
                logits = qwen2_ref.forward(cfg, w, torch.tensor([seq]))[0, -1]
                tok = int(torch.argmax(logits))
                ids.append(tok)
                logprobs.append(float(torch.log_softmax(logits, -1)[tok]))
                seq.append(tok)
            out.append({"ids": ids, "logprobs": logprobs})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
