"""gpu_logits_torch.py EMPO DIR — transformers' logits against empo's on the GPU: a random Qwen2.5-0.5B-shaped
model (seed 0) saved to DIR as a Hugging Face checkpoint, its f32 logits (TF32 off) for 2 random sequences
of 128 tokens saved beside it (reference.safetensors), then tests/bench/gpu_logits.lua run by the empo
binary EMPO compares its own. Prints that script's line; exit 1 when a figure misses its target."""
import os
import subprocess
import sys

import torch
from safetensors.torch import save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

from gpu_step_torch import SHAPES


def main():
    empo, out = sys.argv[1], sys.argv[2]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES["qwen05"], rms_norm_eps=1e-6, max_position_embeddings=32768,
                      attn_implementation="sdpa", torch_dtype=torch.float32)
    model = Qwen2ForCausalLM(cfg).float()
    with torch.no_grad():   # a spread of weights like a trained model's, not the init's tiny ones
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.05)
    model.save_pretrained(out, safe_serialization=True)
    model = model.cuda().eval()
    ids = torch.randint(0, cfg.vocab_size - 300, (2, 128), device="cuda")
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    save_file({"ids": ids.cpu().to(torch.int64), "logits": logits.cpu().contiguous()},
              os.path.join(out, "reference.safetensors"))
    here = os.path.dirname(os.path.abspath(__file__))
    line = subprocess.run([empo, "run", os.path.join(here, "gpu_logits.lua"), out], check=True, capture_output=True,
                          text=True).stdout.strip().splitlines()[-1]
    figures = dict(kv.split("=") for kv in line.split()[1:4])
    ok = float(figures["rel_f32"]) <= 1e-3 and float(figures["rel_tf32"]) <= 1e-3 and float(figures["rel_bf16"]) <= 1e-2
    print(line)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
