#!/bin/sh
# recipes/run.sh — set up (Debian packages, build) and run the main job.
# Usage: recipes/run.sh [recipe.lua] [key=value ...]   (default recipes/demo.lua)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$("$ROOT/tests/setup.sh")
RECIPE="$ROOT/recipes/demo.lua"
case "${1:-}" in *.lua) RECIPE=$1; shift ;; esac
exec "$BUILD/empo" run "$RECIPE" "$@"
