#!/bin/sh
# tests/bench/decode_ab.sh — times the C decode step of git revision REV
# against the working tree's, in one process taking turns (decode_ab.c):
# REV's kernels/ are compiled beside the working tree's build/libempo.so
# with every global symbol renamed old_*. REV must share the working
# tree's kernels/decode_step.h structs (the harness fills them; before the
# subsystem folders that header was decode.h, beside it, with the same structs). REV "." takes
# the working tree's own sources: an A/A run (ctest runs one with same=1).
#
#     sh tests/bench/decode_ab.sh REV tiny|small|arith [own=N] [calls=N] [threads=N] [same=1]
#
# EMPO_BUILD names the build directory (default build/). Needs gcc, git,
# binutils (nm, objcopy) and a built libempo.
set -e
rev=${1:?usage: decode_ab.sh REV tiny|small|arith [own=N] [calls=N] [threads=N] [same=1]}
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${EMPO_BUILD:-$root/build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# REV's kernels/ and core headers, in their own layout (flat core/ before
# the subsystem folders, core/include/empo/ after): the include paths
# below cover both
if [ "$rev" = . ]; then
    (cd "$root" && find kernels core -name '*.[ch]' ! -path 'core/*.c' ! -path 'core/*/*.c') > "$tmp/files"
    while read -r f; do mkdir -p "$tmp/$(dirname "$f")" && cp "$root/$f" "$tmp/$f"; done < "$tmp/files"
else
    for f in $(git -C "$root" ls-tree -r --name-only "$rev" kernels/ core/); do
        case $f in kernels/*.c | kernels/*.h | core/*.h)
            mkdir -p "$tmp/$(dirname "$f")" && git -C "$root" show "$rev:$f" > "$tmp/$f" ;;
        esac
    done
fi
# the library's flags (CMakeLists.txt: RelWithDebInfo, x86-64-v3, OpenMP)
cflags="-O2 -march=x86-64-v3 -mtune=generic -fvect-cost-model=dynamic -fopenmp"
objs=""
for f in decode_step kv_attention attn_rows tile_gemm panel_gemm; do
    gcc $cflags -I"$tmp/kernels/cpu" -I"$tmp/kernels" -I"$tmp" -I"$tmp/core" -I"$tmp/core/include" \
        -c "$tmp/kernels/cpu/$f.c" -o "$tmp/$f.o"
    objs="$objs $tmp/$f.o"
done
# rename what these objects define, in all of them (their calls to each other follow)
nm --defined-only -g $objs | awk 'NF == 3 { print $3 " old_" $3 }' | sort -u > "$tmp/renames"
for o in $objs; do objcopy --redefine-syms="$tmp/renames" "$o"; done
gcc $cflags -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror -I"$root" \
    -I"$root/core/include" "$root/tests/bench/decode_ab.c" $objs -L"$build" -lempo -lm \
    -Wl,-rpath,"$build" -o "$tmp/decode_ab"
"$tmp/decode_ab" "$@"
