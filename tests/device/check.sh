#!/bin/sh
# tests/device/check.sh OUT — the checks only a GPU can make, in one call
# (docs/device.md). Runs on a machine with an NVIDIA GPU from the build
# that tests/device/pack.sh made here (device-pack/, carried along), in
# well under 8 minutes:
#   the GPU, the driver and the pack's revision; then the sections, in
#   this order (CHECK_ONLY=kernels,lua,... runs only those named):
#   kernels    every CUDA kernel against the reference table on the GPU
#              (tests/cuda/cuda_kernels.c: fresh random inputs, gradients
#              included; tests/cuda/cuda_sampling.c: the sampler's and the
#              KV cache's);
#   lua        tensors and a Qwen2 model on the GPU against the CPU
#              (tests/cuda/*.lua: every op of a step, the loss and gradients,
#              20 AdamW steps, sampling with the KV cache: the CPU's tokens,
#              two EMPO steps with device = 'cuda' against the CPU's, mixed
#              precision), and one rank's gradients summed through NCCL;
#   sample     sampling at the Qwen2.5-0.5B shape (16 prompts of 256 tokens,
#              8 samples each, 512 new tokens, bf16 weights) beside
#              transformers' generate (bf16, SDPA, KV cache) on the same card;
#   step       one EMPO step by phase (sampling, old log-probs, update) at the
#              Qwen2.5-0.5B and 1.5B shapes (16 prompts of 256 tokens, 8
#              samples, 512 new tokens, bf16) beside the same step written the
#              way TRL computes it (transformers, bf16 autocast), with the
#              update's MFU and peak memory; then the plain LM step (TF32);
#   main       the main job with device=cuda: EMPO on the arith world,
#              accuracy before and after (the CPU's: greedy 46 -> 95%);
#   emulation  the kernels under the host emulation, on this CPU, as CI runs them;
#   sanitizer  the kernels under compute-sanitizer: memcheck, racecheck,
#              synccheck (what the host emulation cannot see; the sampler's:
#              memcheck and racecheck). Slowest, so last.
# Full logs go to OUT; a short table is printed last. Exit status: 0 when
# every row that ran passed. Every step has a time limit, and all of them
# together CHECK_BUDGET_S (default 450 s): a step that would start past it
# is reported as not run, so the table always comes back; a second call
# with CHECK_ONLY naming the sections left runs them.
set -u
OUT=${1:?usage: check.sh OUT_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PACK="$ROOT/device-pack"
mkdir -p "$OUT"
START=$(date +%s)
BUDGET=${CHECK_BUDGET_S:-450}
# the time a step may take: its own limit, or what is left of the budget
limit() {
  left=$((BUDGET - ($(date +%s) - START)))
  [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
ONLY=",${CHECK_ONLY:-kernels,lua,sample,step,main,emulation,sanitizer},"
want() { case "$ONLY" in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
ROWS="$OUT/table.txt"
: > "$ROWS"
row() {   # row NAME RESULT DETAIL
  printf '%-34s  %-7s  %s\n' "$1" "$2" "$3" >> "$ROWS"
}
if [ ! -x "$PACK/bin/cuda_kernels" ]; then
  echo "check: no device-pack/ here: run tests/device/pack.sh first and carry device-pack" >&2
  exit 2
fi
# NCCL: the toolkit's, else the one PyTorch's wheels bring
NCCL_DIR=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
export LD_LIBRARY_PATH="$PACK/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${NCCL_DIR:+$NCCL_DIR:}${LD_LIBRARY_PATH:-}"
# the pack's empo runs the working tree's Lua (its generated FFI declarations are the pack's)
export EMPO_LUA_PATH="$ROOT/lua/?.lua;$ROOT/lua/?/init.lua;$PACK/lua/?.lua"
export LUA_PATH="$ROOT/tests/support/?.lua;;" EMPO_SOURCE_DIR="$ROOT"

# the machine
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -n 1)
row "gpu" info "${gpu:-none found (nvidia-smi)}"
row "pack revision" info "$(cut -c1-12 "$PACK/REVISION") (working tree $(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo '?'))"

# the row of a test program: its "N checks, M failed" line, or why it did not pass
run_kernels() {   # run_kernels NAME LIMIT_S LOG COMMAND...
  name=$1 lim=$(limit "$2") log=$3
  shift 3
  if [ "$lim" -lt 10 ]; then row "$name" "not run" "out of time (CHECK_BUDGET_S=$BUDGET)"; return 0; fi
  start=$(date +%s)
  timeout "$lim" "$@" > "$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  summary=$(grep -E 'checks, [0-9]+ failed|ERROR SUMMARY|SKIP' "$log" | tail -n 2 | tr '\n' ' ')
  case $rc in
    0) row "$name" pass "$summary(${secs} s)" ;;
    77) if [ -n "$gpu" ]; then row "$name" FAIL "skipped on a machine with a GPU: $summary"
        else row "$name" skipped "$summary"; fi ;;
    124) row "$name" FAIL "timed out after $lim s" ;;
    *) row "$name" FAIL "exit $rc: $summary(log: $(basename "$log"))" ;;
  esac
}
# the row of a benchmark; prints the tokens/s of its last line
bench() {   # bench NAME LIMIT_S LOG COMMAND... : the tokens/s of its last line
  name=$1 lim=$(limit "$2") log=$3
  shift 3
  if [ "$lim" -lt 20 ]; then row "$name" "not run" "out of time (CHECK_BUDGET_S=$BUDGET)"; echo 0; return 0; fi
  timeout "$lim" "$@" > "$log" 2>&1
  rc=$?
  tps=$(tail -n 1 "$log" | sed -n 's/.*tokens_per_s=\([0-9]*\).*/\1/p')
  if [ $rc -eq 0 ] && [ -n "$tps" ]; then
    row "$name" info "$(tail -n 1 "$log" | cut -c1-320)"
  else
    row "$name" FAIL "exit $rc (log: $(basename "$log"))"
  fi
  echo "${tps:-0}"
}

# the kernels on the GPU
if want kernels; then
  run_kernels "cuda kernels vs reference" 120 "$OUT/cuda_kernels.log" "$PACK/bin/cuda_kernels"
  run_kernels "cuda sampling vs reference" 60 "$OUT/cuda_sampling.log" "$PACK/bin/cuda_sampling"
fi

# tensors, models, sampling and the trainer on the GPU, from the working tree's Lua
if want lua; then
  for t in test_device test_model test_generate test_trainer test_mixed; do
    run_kernels "cuda/$t.lua" 90 "$OUT/$t.log" "$PACK/bin/empo" run "$ROOT/tests/cuda/$t.lua"
  done
  # one rank's gradients through NCCL (the data-parallel path on GPUs)
  export EMPO_DIST_NCCL=1
  run_kernels "cuda/test_dist_device.lua (NCCL)" 60 "$OUT/test_dist_device.log" \
    "$PACK/bin/empo" run "$ROOT/tests/cuda/test_dist_device.lua"
  unset EMPO_DIST_NCCL
fi

# sampling, empo and transformers' generate
if want sample; then
  e=$(bench "empo sample qwen05 16x8 256+512" 150 "$OUT/gpu_sample.log" "$PACK/bin/empo" run "$ROOT/tests/bench/gpu_sample.lua" qwen05 16 8 256 512 1 | tail -n 1)
  g=$(bench "empo sample, CUDA graphs" 150 "$OUT/gpu_sample_graphs.log" env EMPO_CUDA_GRAPHS=1 "$PACK/bin/empo" run "$ROOT/tests/bench/gpu_sample.lua" qwen05 16 8 256 512 1 | tail -n 1)
  t=$(bench "hf generate qwen05 16x8 256+512" 150 "$OUT/torch_sample.log" python3 "$ROOT/tests/bench/gpu_sample_torch.py" qwen05 16 8 256 512 | tail -n 1)
  if [ "${e:-0}" -gt 0 ] && [ "${t:-0}" -gt 0 ]; then
    row "empo / hf sampling tokens/s" info "$(awk -v e="$e" -v g="${g:-0}" -v t="$t" 'BEGIN { printf "%.2fx, with graphs %.2fx (%s, %s vs %s; target 1.5x)", e / t, g / t, e, g, t }')"
  fi
fi

# one EMPO step by phase at the 0.5B and 1.5B shapes, empo and the TRL-style PyTorch step
# (bf16: mixed precision in empo, autocast in PyTorch); then the plain LM step (TF32)
if want step; then
  for shape in qwen05 qwen15; do
    micro=$([ $shape = qwen15 ] && echo 4096 || echo 8192)   # (1.5B: f32 master weights and moments take 27 GB)
    e=$(bench "empo EMPO step $shape bf16" 240 "$OUT/gpu_empo_step_$shape.log" "$PACK/bin/empo" run "$ROOT/tests/bench/gpu_empo_step.lua" $shape 16 8 256 512 bf16 $micro | tail -n 1)
    t=$(bench "trl-style step $shape bf16" 240 "$OUT/torch_empo_step_$shape.log" python3 "$ROOT/tests/bench/gpu_empo_step_torch.py" $shape 16 8 256 512 bf16 $micro | tail -n 1)
    if [ "${e:-0}" -gt 0 ] && [ "${t:-0}" -gt 0 ]; then
      row "empo / trl-style step ($shape)" info "$(awk -v e="$e" -v t="$t" 'BEGIN { printf "%.2fx (%s vs %s tokens/s; target 1.3x)", e / t, e, t }')"
    fi
  done
  e=$(bench "empo LM step qwen05 4x512 tf32" 150 "$OUT/gpu_step_tf32.log" "$PACK/bin/empo" run "$ROOT/tests/bench/gpu_step.lua" qwen05 4 512 5 1 | tail -n 1)
  t=$(bench "torch LM step qwen05 4x512 tf32" 150 "$OUT/torch_step_tf32.log" python3 "$ROOT/tests/bench/gpu_step_torch.py" qwen05 4 512 5 1 | tail -n 1)
  if [ "${e:-0}" -gt 0 ] && [ "${t:-0}" -gt 0 ]; then
    row "empo / torch LM step (tf32)" info "$(awk -v e="$e" -v t="$t" 'BEGIN { printf "%.2fx (%s vs %s)", e / t, e, t }')"
  fi
fi

# transformers' logits against empo's on the GPU, on one random checkpoint
if want lua; then
  lim=$(limit 120)
  if [ "$lim" -lt 30 ]; then row "logits vs transformers" "not run" "out of time (CHECK_BUDGET_S=$BUDGET)"
  elif [ -z "$gpu" ]; then row "logits vs transformers" skipped "no GPU"
  else
    mkdir -p "$OUT/logits_ckpt"
    timeout "$lim" python3 "$ROOT/tests/bench/gpu_logits_torch.py" "$PACK/bin/empo" "$OUT/logits_ckpt" > "$OUT/logits.log" 2>&1
    rc=$?
    line=$(grep '^gpu_logits' "$OUT/logits.log" | tail -n 1 | cut -c12-120)
    [ $rc -eq 0 ] && row "logits vs transformers" pass "$line" || row "logits vs transformers" FAIL "exit $rc: $line (log: logits.log)"
    rm -rf "$OUT/logits_ckpt"
  fi
fi

# the main job on the GPU
if want main; then
  lim=$(limit 300)
  if [ "$lim" -lt 60 ]; then
    row "main job, device=cuda" "not run" "out of time (CHECK_BUDGET_S=$BUDGET)"
  else
    start=$(date +%s)
    timeout "$lim" "$PACK/bin/empo" run "$ROOT/recipes/math.lua" device=cuda name= > "$OUT/main_job_cuda.log" 2>&1
    rc=$?
    before=$(grep '^before:' "$OUT/main_job_cuda.log" | head -n 1 | cut -c9-60)
    after=$(grep '^after:' "$OUT/main_job_cuda.log" | head -n 1 | cut -c9-60)
    if [ $rc -eq 0 ] && [ -n "$after" ]; then
      row "main job, device=cuda" info "before ${before} / after ${after} ($(( $(date +%s) - start )) s)"
    else
      row "main job, device=cuda" FAIL "exit $rc (log: main_job_cuda.log)"
    fi
  fi
fi

# the emulation, as CI runs it
if want emulation; then
  run_kernels "cuda kernels, host emulation" 60 "$OUT/cuda_kernels_emulated.log" "$PACK/bin/cuda_kernels_emulated"
  run_kernels "cuda sampling, host emulation" 30 "$OUT/cuda_sampling_emulated.log" "$PACK/bin/cuda_sampling_emulated"
  run_kernels "cuda kernels, emulation reversed" 60 "$OUT/cuda_kernels_emulated_reverse.log" \
    env EMPO_CUDA_EMULATION_ORDER=reverse "$PACK/bin/cuda_kernels_emulated"
  run_kernels "cuda sampling, emulation reversed" 30 "$OUT/cuda_sampling_emulated_reverse.log" \
    env EMPO_CUDA_EMULATION_ORDER=reverse "$PACK/bin/cuda_sampling_emulated"
fi

# compute-sanitizer
if want sanitizer; then
  SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [ -n "$SAN" ]; then
    for tool in memcheck racecheck synccheck; do
      run_kernels "compute-sanitizer $tool" 100 "$OUT/sanitizer_$tool.log" \
        "$SAN" --tool "$tool" --error-exitcode 9 "$PACK/bin/cuda_kernels"
    done
    for tool in memcheck racecheck; do
      run_kernels "compute-sanitizer $tool (sampling)" 60 "$OUT/sanitizer_sampling_$tool.log" \
        "$SAN" --tool "$tool" --error-exitcode 9 "$PACK/bin/cuda_sampling"
    done
  else
    row "compute-sanitizer" FAIL "not found on this machine"
  fi
fi

echo
echo "== tests/device/check.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(($(date +%s) - START)) s, logs in $OUT"
cat "$ROWS"
grep -q '  FAIL  ' "$ROWS" && exit 1
exit 0
