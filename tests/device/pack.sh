#!/bin/sh
# tests/device/pack.sh — run here (no GPU needed): builds empo with the CUDA
# backend (the default RelWithDebInfo, in build-device/) and packs what tests/device/check.sh
# runs on a GPU machine into device-pack/ (git-ignored, about 20 MiB):
#   device-pack/bin/   the test programs and the empo command
#   device-pack/lua/   the generated FFI declarations (empo/cdef.lua); the
#                      Lua library itself comes with the working tree
#   device-pack/lib/   libempo, libempo_cuda, libempo_nccl, and the Debian libraries they
#                      need that a GPU machine may lack (oneDNN, LuaJIT,
#                      cJSON, libedit, PCRE2, utf8proc ...), stripped
# The GPU machines have the CUDA runtime, cuBLASLt and NCCL themselves; glibc,
# libstdc++ and libgcc are taken from the machine too. Then:
#   device tool: carry ["device-pack"], command: sh tests/device/check.sh "$OUT"
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD="$ROOT/build-device"
PACK="$ROOT/device-pack"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMPO_CUDA=ON -DEMPO_WERROR=ON >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target empo_cli cuda_kernels cuda_kernels_emulated cuda_sampling cuda_sampling_emulated empo_nccl >/dev/null
rm -rf "$PACK"
mkdir -p "$PACK/bin" "$PACK/lib" "$PACK/lua/empo"
cp "$BUILD/lua/empo/cdef.lua" "$PACK/lua/empo/"
cp "$BUILD/empo" "$BUILD"/tests/cuda_kernels* "$BUILD"/tests/cuda_sampling* "$PACK/bin/"
cp -L "$BUILD/libempo.so.0" "$BUILD/libempo_cuda.so.0" "$BUILD/libempo_nccl.so.0" "$PACK/lib/"
# every library of theirs outside the CUDA toolkit and the C/C++ runtime
for f in "$PACK"/bin/* "$PACK"/lib/*; do
  ldd "$f" | awk '/=> \// { print $1, $3 }'
done | sort -u | while read -r name path; do
  case "$name" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|libstdc++.so*|libgcc_s.so*) continue ;;
    libcudart.so*|libcublas*|libcuda.so*|libnccl.so*|libempo*) continue ;;   # (NCCL: 200 MB, the machine's)
  esac
  cp -L "$path" "$PACK/lib/$name"
done
strip --strip-unneeded "$PACK"/bin/* "$PACK"/lib/* 2>/dev/null || true
git -C "$ROOT" rev-parse HEAD > "$PACK/REVISION"
echo "device-pack: $(du -sh "$PACK" | cut -f1) for revision $(cut -c1-12 "$PACK/REVISION")"
