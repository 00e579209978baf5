#!/bin/sh
# tests/kernels/standalone.sh ROOT [CC] — every kernel source compiles with
# nothing of core/ on its include path but the public API
# (core/include/empo/): kernels depend on kernels/*.h alone, so a backend
# or another revision's kernels build on their own (tests/bench/decode_ab.sh).
set -eu
ROOT=${1:?usage: standalone.sh ROOT [CC]}
CC=${2:-cc}
DNNL=$(dirname "$(find /usr/include /usr/local/include -name dnnl.h -path '*oneapi*' 2>/dev/null | head -n 1)")/../..
n=0
for f in "$ROOT"/kernels/*.c "$ROOT"/kernels/*/*.c; do
    "$CC" -std=gnu11 -fsyntax-only -fopenmp -march=x86-64-v3 -Wall -Werror -I"$ROOT" -I"$ROOT/core/include" \
        -I"$DNNL" "$f" || { echo "standalone: $f does not compile without core's headers"; exit 1; }
    n=$((n + 1))
done
echo "standalone: $n kernel sources compile with only kernels/ and the public API"
