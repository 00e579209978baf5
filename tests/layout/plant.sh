#!/bin/sh
# plant.sh — the layout check can fail: on a copy of the tree (sources and
# pages, no builds), each planted fault must make check_layout.py exit 1
# naming it, and the untouched copy must pass. Faults: a file whose first
# line names another file, a comment naming a header that does not exist,
# a page naming a C function that no source has.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CHECK="$ROOT/tests/layout/check_layout.py"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fresh() {
  rm -rf "$WORK/tree"
  mkdir "$WORK/tree"
  (cd "$ROOT" && tar cf - --exclude='./build*' --exclude=./device-pack --exclude=./.git --exclude=./runs --exclude=./node_modules .) | (cd "$WORK/tree" && tar xf -)
}
expect_fail() {   # what, the text the report must hold
  if python3 "$CHECK" "$WORK/tree" > "$WORK/out" 2>&1; then
    echo "FAIL: $1 was not caught"; cat "$WORK/out"; exit 1
  fi
  grep -qF "$2" "$WORK/out" || { echo "FAIL: $1: the report lacks '$2'"; cat "$WORK/out"; exit 1; }
  echo "caught: $1: $(grep -F "$2" "$WORK/out" | head -1)"
}
fresh
python3 "$CHECK" "$WORK/tree" > "$WORK/out" 2>&1 || { echo "FAIL: the untouched copy does not pass"; cat "$WORK/out"; exit 1; }
# a stale first line (a file copied and renamed without its header)
sed -i '1s/op_optim\.c/optim.c/' "$WORK/tree/core/ops/op_optim.c"
expect_fail 'a stale file name in a first line' 'core/ops/op_optim.c:1: the first line does not name the file'
fresh
# a comment naming a header that is gone
printf '/* see empo_gone.h and empo/gone.h */\n' >> "$WORK/tree/core/ops/op_optim.c"
expect_fail 'a missing header (empo_gone.h)' 'names empo_gone.h, which does not exist'
expect_fail 'a missing public header (empo/gone.h)' 'names empo/gone.h, which does not exist'
fresh
printf '\nCall `empo_gone_function` first.\n' >> "$WORK/tree/docs/c_api.md"
expect_fail 'a page naming a function that is gone' 'names empo_gone_function, which no source defines or uses'
echo "plant: every planted fault caught"
