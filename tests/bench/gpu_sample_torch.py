"""gpu_sample_torch.py — the PyTorch side of tests/bench/gpu_sample.lua: Hugging Face transformers'
generate on the same card, given its best: the model in bf16, SDPA attention, its KV cache, all
P x G sequences in one batch (each prompt repeated G times, as num_return_sequences does), sampling
at temperature 1 with no top-k / top-p, NEW tokens each (no end-of-sequence token, so no sequence
stops early), timed after one warm-up call.

Usage: gpu_sample_torch.py [shape] [P] [G] [T] [NEW]   (defaults: qwen05 16 8 256 512)
Prints one line: torch_sample shape=... tokens_per_s=... peak_mb=..."""
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM

from gpu_step_torch import SHAPES


def main():
    args = sys.argv[1:] + [None] * 5
    shape = args[0] or "qwen05"
    P, G, T, NEW = int(args[1] or 16), int(args[2] or 8), int(args[3] or 256), int(args[4] or 512)
    torch.manual_seed(0)
    cfg = Qwen2Config(**SHAPES[shape], rms_norm_eps=1e-6, max_position_embeddings=32768,
                      attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    model = Qwen2ForCausalLM(cfg).cuda().to(torch.bfloat16).eval()
    prompts = torch.randint(0, cfg.vocab_size - 300, (P, T), device="cuda")
    ids = prompts.repeat_interleave(G, dim=0)
    mask = torch.ones_like(ids)

    def run():
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_k=0,
                                 top_p=1.0, max_new_tokens=NEW, pad_token_id=0, eos_token_id=None,
                                 use_cache=True)
        torch.cuda.synchronize()
        return out

    run()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = run()
    secs = time.perf_counter() - t0
    tokens = (out.shape[1] - T) * out.shape[0]
    print("torch_sample shape=%s prompts=%d n=%d prompt_len=%d new=%d tokens_per_s=%.0f seconds=%.2f peak_mb=%.0f "
          "torch=%s" % (shape, P, G, T, NEW, tokens / secs, secs, torch.cuda.max_memory_allocated() / 2**20,
                        torch.__version__))


if __name__ == "__main__":
    main()
