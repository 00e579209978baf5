#!/bin/sh
# tests/kernels/isa.sh ISA COMMAND... — runs COMMAND with the kernel table
# ISA (EMPO_ISA=avx2|avx512), or, when this CPU cannot run that table,
# says so and exits 77 (ctest's SKIP_RETURN_CODE for these tests).
set -eu
isa=${1:?usage: isa.sh avx2|avx512 COMMAND...}
shift
if [ "$isa" = avx512 ]; then
    for f in avx512f avx512cd avx512bw avx512vl avx512dq; do
        if ! grep -qw "$f" /proc/cpuinfo; then
            echo "SKIP: this CPU has no $f: the avx512 table cannot run here"
            exit 77
        fi
    done
fi
EMPO_ISA=$isa exec "$@"
