#!/bin/sh
# tests/run.sh — set up (packages, build) and run every test with ctest.
# Usage: tests/run.sh [--sanitize]   (ASan + UBSan build in build-sanitize/)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# a warning counts as a failed test (setup's default: -Werror)
BUILD=$("$ROOT/tests/setup.sh" "$@")
if [ "${1:-}" = "--sanitize" ]; then
  # LuaJIT's allocator and OpenMP's thread pool keep memory until exit;
  # tests that run a plain luajit load the instrumented libempo with dlopen
  export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # no block reuse, so ASan sees every use after free
  export EMPO_CACHE_LIMIT_MB=0
fi
ctest --test-dir "$BUILD" --output-on-failure -j "$(nproc)"
