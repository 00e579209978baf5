#!/bin/sh
# tests/dist/mpirun.sh — mpirun for the tests: N ranks of one thread each
# on this machine (--oversubscribe: CI has 2 cores; --allow-run-as-root
# when CI runs as root). Usage: mpirun.sh N command...
N=$1
shift
ROOT_FLAG=""
[ "$(id -u)" = 0 ] && ROOT_FLAG="--allow-run-as-root"
PASS=""
for v in LUA_PATH EMPO_SOURCE_DIR EMPO_BINARY EMPO_PYTHON EMPO_CUDA_LIBRARY EMPO_DIST_NCCL; do
  eval "set_=\${$v+x}"
  [ -n "$set_" ] && PASS="$PASS -x $v"
done
exec mpirun $ROOT_FLAG --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 $PASS -np "$N" "$@"
