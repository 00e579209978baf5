#!/bin/sh
# tests/dist/trainer.sh — data-parallel EMPO on the arith world, 2 ranks
# of one thread against one process of one thread (the matrix products'
# sums depend on the thread count, so both sides run one):
#   1. dist.reduce=exact: every metric and weight the same bits (with
#      dynamic sampling's extra rounds);
#   2. dist.reduce=fast: the same samples at step 1, weights within 1e-4;
#   3. resume: 2 ranks stopped after step 2 and resumed equal the run of 3;
#   3b. the collapse guard, set to fire: its rollbacks (each rank restores
#      its own snapshots) leave 2 ranks equal to one process, bit for bit;
#   4. a weight planted on rank 1: the lockstep check stops the run at the
#      next step, naming the rank, the last good checkpoint latest;
#   5. a rank killed mid-run: the job ends with a message naming it, and
#      the last checkpoint loads;
#   6. empo attach on 2 ranks: rank 0 serves the client, both ranks apply
#      its changes at the same step (weights compared every step), and
#      one process replaying the recorded changes gives the same bits.
# Usage: trainer.sh SOURCE_DIR EMPO_BINARY
set -eu
SRC=$1
EMPO=$2
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MPI="sh $SRC/tests/dist/mpirun.sh 2"
RUN="run $SRC/recipes/math.lua eval=false prompts_per_step=8 out=$T"
cmp() { "$EMPO" run "$SRC/tests/dist/compare_runs.lua" "$@"; }

OMP_NUM_THREADS=1 "$EMPO" $RUN steps=3 name=one dist.reduce=exact >"$T/one.log" 2>&1 || { cat "$T/one.log"; exit 1; }
$MPI "$EMPO" $RUN steps=3 name=two dist.reduce=exact >"$T/two.log" 2>&1 || { cat "$T/two.log"; exit 1; }
cmp "$T/one" "$T/two" same
OMP_NUM_THREADS=1 "$EMPO" $RUN steps=2 dynamic_sampling=2 name=dyn1 dist.reduce=exact >"$T/dyn1.log" 2>&1 ||
  { cat "$T/dyn1.log"; exit 1; }
$MPI "$EMPO" $RUN steps=2 dynamic_sampling=2 name=dyn2 dist.reduce=exact >"$T/dyn2.log" 2>&1 || { cat "$T/dyn2.log"; exit 1; }
cmp "$T/dyn1" "$T/dyn2" same
grep -q '"rounds":[1-9]' "$T/dyn2/metrics.jsonl" || { echo "trainer.sh: no extra sampling round ran"; exit 1; }

$MPI "$EMPO" $RUN steps=3 name=fast >"$T/fast.log" 2>&1 || { cat "$T/fast.log"; exit 1; }
cmp "$T/one" "$T/fast" close

$MPI "$EMPO" $RUN steps=2 save_every=1 name=res dist.reduce=exact >"$T/res1.log" 2>&1 || { cat "$T/res1.log"; exit 1; }
$MPI "$EMPO" $RUN steps=3 save_every=1 name=res resume=true dist.reduce=exact >"$T/res2.log" 2>&1 ||
  { cat "$T/res2.log"; exit 1; }
cmp "$T/one" "$T/res" same

GUARD="guard.drift=1.0001 guard.drift_min=0 guard.window=1 guard.warmup=2 guard.patience=1 guard.every=1 optim.lr=1e-4"
OMP_NUM_THREADS=1 "$EMPO" $RUN steps=5 name=g1 dist.reduce=exact $GUARD >"$T/g1.log" 2>&1 || { cat "$T/g1.log"; exit 1; }
$MPI "$EMPO" $RUN steps=5 name=g2 dist.reduce=exact $GUARD >"$T/g2.log" 2>&1 || { cat "$T/g2.log"; exit 1; }
grep -q "rolled back" "$T/g2.log" || { echo "trainer.sh: the guard did not fire"; cat "$T/g2.log"; exit 1; }
cmp "$T/g1" "$T/g2" same

# a weight changed on rank 1 after step 2: step 3's lockstep check stops the job, checkpoint-2 intact
if EMPO_SOURCE_DIR="$SRC" $MPI "$EMPO" run "$SRC/tests/dist/planted_drift.lua" eval=false prompts_per_step=8 out="$T" \
     steps=4 save_every=1 name=drift >"$T/drift.log" 2>&1; then
  echo "trainer.sh: a planted weight difference went unnoticed"; cat "$T/drift.log"; exit 1
fi
grep -q "after step 3 the ranks' weights differ" "$T/drift.log" || { echo "trainer.sh: no lockstep message"; cat "$T/drift.log"; exit 1; }
[ "$(cat "$T/drift/latest")" = "checkpoint-2" ] || { echo "trainer.sh: latest is not checkpoint-2"; exit 1; }
echo "trainer.sh: the planted difference stopped the run at step 3; checkpoint-2 is latest"

# a rank killed once the first checkpoint exists
$MPI "$EMPO" $RUN steps=200 save_every=1 name=kill >"$T/kill.log" 2>&1 &
JOB=$!
i=0
while [ ! -e "$T/kill/checkpoint-2" ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
VICTIM=""
for p in $(pgrep -f "name=kill" || true); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then VICTIM=$p; fi
done
[ -n "$VICTIM" ] || { echo "trainer.sh: no rank 1 to kill"; cat "$T/kill.log"; exit 1; }
kill -9 "$VICTIM"
if wait $JOB; then echo "trainer.sh: the job went on after a rank was killed"; exit 1; fi
grep -q "signal 9" "$T/kill.log" || { echo "trainer.sh: no message about the killed rank"; cat "$T/kill.log"; exit 1; }
"$EMPO" -e "
local empo = require 'empo'
local dir = '$T/kill'
local latest = empo.fs.read_text(dir .. '/latest'):gsub('%s+\$', '')
local m = empo.models.from_pretrained(dir .. '/' .. latest)
assert(m:num_parameters() > 0)
print('trainer.sh: after the kill, ' .. latest .. ' loads')"
# and the killed run resumes (its lock is a dead process's) for one more step
N=$(sed 's/checkpoint-//' "$T/kill/latest")
$MPI "$EMPO" $RUN steps=$((N + 1)) save_every=1 name=kill resume=true >"$T/kill2.log" 2>&1 || { cat "$T/kill2.log"; exit 1; }
[ "$(cat "$T/kill/latest")" = "checkpoint-$((N + 1))" ] || { echo "trainer.sh: the resume did not reach step $((N + 1))"; exit 1; }
echo "trainer.sh: the killed run resumed from checkpoint-$N to checkpoint-$((N + 1))"

# empo attach: the client's changes reach every rank at the same step
$MPI "$EMPO" $RUN steps=8 name=att dist.reduce=exact dist.checksum_every=1 >"$T/att.log" 2>&1 &
JOB=$!
i=0
while [ ! -S "$T/att/attach.sock" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
printf 't.recipe.optim.lr = 3e-5\nodd = function(g) return #g.completions[1] %% 2 == 1 end\nt.recipe.filter = odd\n' |
  "$EMPO" attach "$T/att" >"$T/att_client.log" 2>&1
wait $JOB || { cat "$T/att.log"; exit 1; }
grep -q '"changes":\["optim.lr = 3e-05"' "$T/att/metrics.jsonl" ||
  { echo "trainer.sh: the attached change is not in the metrics"; cat "$T/att.log" "$T/att_client.log"; exit 1; }
mkdir "$T/att1"
cp "$T/att/recipe.json" "$T/att1/"
OMP_NUM_THREADS=1 "$EMPO" $RUN steps=8 name=att1 resume=true dist.reduce=exact >"$T/att1.log" 2>&1 ||
  { cat "$T/att1.log"; exit 1; }
cmp "$T/att" "$T/att1" same
echo "trainer.sh: changes made through empo attach on 2 ranks replay in one process to the same bits"
echo "trainer.sh: all passed"
