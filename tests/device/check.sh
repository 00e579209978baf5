#!/bin/sh
# tests/device/check.sh OUT — the checks only a GPU can make, in one call
# (docs/device.md). Runs on a machine with an NVIDIA GPU from the build
# that tests/device/pack.sh made here (device-pack/, carried along), in
# well under 8 minutes:
#   1. the GPU, the driver and the pack's revision;
#   2. every CUDA kernel against the reference table on the GPU
#      (tests/cuda/cuda_kernels.c: fresh random inputs, gradients included);
#   3. the same under compute-sanitizer: memcheck, racecheck, synccheck
#      (what the host emulation in CI cannot see);
#   4. the same kernels under the host emulation, on this CPU, as CI runs them.
# Full logs go to OUT; a short table is printed last. Exit status: 0 when
# every row that ran passed.
set -u
OUT=${1:?usage: check.sh OUT_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PACK="$ROOT/device-pack"
mkdir -p "$OUT"
ROWS="$OUT/table.txt"
: > "$ROWS"
failed=0
row() {   # row NAME RESULT DETAIL
  printf '%-34s %-8s %s\n' "$1" "$2" "$3" >> "$ROWS"
  [ "$2" = FAIL ] && failed=1
  return 0
}
if [ ! -x "$PACK/bin/cuda_kernels" ]; then
  echo "check: no device-pack/ here: run tests/device/pack.sh first and carry device-pack" >&2
  exit 2
fi
export LD_LIBRARY_PATH="$PACK/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}"

# 1. the machine
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -n 1)
row "gpu" info "${gpu:-none found (nvidia-smi)}"
row "pack revision" info "$(cut -c1-12 "$PACK/REVISION") (working tree $(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo '?'))"

# 2. the kernels on the GPU
run_kernels() {   # run_kernels NAME LOG COMMAND...
  name=$1 log=$2
  shift 2
  start=$(date +%s)
  timeout 300 "$@" > "$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  summary=$(grep -E 'checks, [0-9]+ failed|ERROR SUMMARY|SKIP' "$log" | tail -n 2 | tr '\n' ' ')
  case $rc in
    0) row "$name" pass "$summary(${secs} s)" ;;
    77) if [ -n "$gpu" ]; then row "$name" FAIL "skipped on a machine with a GPU: $summary"
        else row "$name" skipped "$summary"; fi ;;
    124) row "$name" FAIL "timed out after 300 s" ;;
    *) row "$name" FAIL "exit $rc: $summary(log: $(basename "$log"))" ;;
  esac
}
run_kernels "cuda kernels vs reference" "$OUT/cuda_kernels.log" "$PACK/bin/cuda_kernels"

# 3. compute-sanitizer
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$SAN" ]; then
  for tool in memcheck racecheck synccheck; do
    run_kernels "compute-sanitizer $tool" "$OUT/sanitizer_$tool.log" \
      "$SAN" --tool "$tool" --error-exitcode 9 "$PACK/bin/cuda_kernels"
  done
else
  row "compute-sanitizer" FAIL "not found on this machine"
fi

# 4. the emulation, as CI runs it
run_kernels "cuda kernels, host emulation" "$OUT/cuda_kernels_emulated.log" "$PACK/bin/cuda_kernels_emulated"

# not yet: they need tensors on the device (issue 25, part 2)
row "qwen2 fwd/bwd + 20 AdamW steps" pending "needs device tensors (t:to('cuda')), not built yet"
row "training step vs PyTorch" pending "needs device tensors, not built yet"

echo
echo "== tests/device/check.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), logs in $OUT"
cat "$ROWS"
exit $failed
