#!/bin/sh
# tests/install_test.sh BUILD_DIR — `cmake --install` into a scratch prefix,
# then a plain luajit must `require 'empo'` from it and the installed `empo`
# command must find its Lua modules next to itself, the REPL and `empo
# generate` included.
set -eu
BUILD=$1
PREFIX=$(mktemp -d)
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
LUA_DIR="$PREFIX/share/lua/5.1"
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libempo.so' | head -n 1)")
out=$(LUA_PATH="$LUA_DIR/?.lua;$LUA_DIR/?/init.lua;;" LD_LIBRARY_PATH="$LIBDIR" \
      luajit -e "local empo = require 'empo'; io.write(empo.tensor({1, 2, 3}):sum():item())")
[ "$out" = "6" ] || { echo "install: plain luajit printed '$out', expected 6"; exit 1; }
out=$(LD_LIBRARY_PATH="$LIBDIR" EMPO_LUA_PATH= "$PREFIX/bin/empo" -e "io.write(package.searchpath('empo', package.path))")
out=$(realpath "$out")
case "$out" in "$LUA_DIR"/*) ;; *) echo "install: installed empo loads Lua modules from '$out', not $LUA_DIR"; exit 1 ;; esac
# the command's own Lua (lua/cli: the REPL, empo generate) is installed too
out=$(echo 'print(6 * 7)' | LD_LIBRARY_PATH="$LIBDIR" EMPO_LUA_PATH= "$PREFIX/bin/empo" repl 2>&1)
case "$out" in *42*) ;; *) echo "install: the installed empo repl printed '$out', expected 42"; exit 1 ;; esac
out=$(LD_LIBRARY_PATH="$LIBDIR" EMPO_LUA_PATH= "$PREFIX/bin/empo" generate 2>&1 || true)
case "$out" in *"usage: empo generate"*) ;; *) echo "install: the installed empo generate printed '$out'"; exit 1 ;; esac
[ -f "$PREFIX/include/empo/empo.h" ] && [ -f "$PREFIX/include/empo/tensor.h" ] || { echo "install: headers missing"; exit 1; }
echo "install: ok (plain luajit and the installed empo command both load empo from $PREFIX)"
