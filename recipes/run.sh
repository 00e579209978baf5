#!/bin/sh
# recipes/run.sh — set up (Debian packages, build) and run the main job.
# Usage: recipes/run.sh [recipe.lua] [key=value ...]   (default recipes/math.lua:
# EMPO on the arith world, accuracy before and after; prints the wall time)
set -eu
T0=$(date +%s)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$("$ROOT/tests/setup.sh" --runtime)
RECIPE="$ROOT/recipes/math.lua"
case "${1:-}" in *.lua) RECIPE=$1; shift ;; esac
T1=$(date +%s)
"$BUILD/empo" run "$RECIPE" "$@"
T2=$(date +%s)
echo "wall time: $((T2 - T0)) s (set-up and build $((T1 - T0)) s, the run $((T2 - T1)) s)"
