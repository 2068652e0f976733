# The parallel layout is checked before any work: an impossible mesh or a tp that does not divide
# the heads exits 2 on every rank with one message (from rank 0) printing every factor; so does a
# global batch that does not split over the data-parallel ranks.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
D=data.dir="$WORK/data"
MPI=(mpirun --allow-run-as-root --oversubscribe -np 2)

expect_exit 2 "parallel.dp_replicate = 1, parallel.dp_shard = -1, parallel.cp = 1, parallel.tp = 2; world size 1" -- \
  "$REEL" train $R "$D" parallel.tp=2 model.heads=2 run.dir="$WORK/r1"
expect_exit 2 "parallel.tp.*does not divide model.heads = 2" -- "$REEL" train $R "$D" parallel.tp=4 run.dir="$WORK/r1"
expect_exit 2 "parallel.dp_shard' = 0" -- "$REEL" train $R "$D" parallel.dp_shard=0 run.dir="$WORK/r1"

set +e
out=$("${MPI[@]}" "$REEL" train $R "$D" parallel.dp_shard=3 run.dir="$WORK/r2" 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || die "impossible mesh under mpirun: exit $rc, expected 2: $out"
n=$(grep -c "impossible mesh: parallel.dp_replicate = 1, parallel.dp_shard = 3, parallel.cp = 1, parallel.tp = 1; world size 2" <<<"$out")
[[ $n -eq 1 ]] || die "expected the mesh message once (rank 0), got $n: $out"

set +e
out=$("${MPI[@]}" "$REEL" train $R "$D" parallel.dp_replicate=2 parallel.dp_shard=1 data.batch_size=5 run.dir="$WORK/r4" 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || die "odd batch over 2 replicas: exit $rc, expected 2: $out"
n=$(grep -c "data.batch_size = 5 does not split over 2 data-parallel ranks" <<<"$out")
[[ $n -eq 1 ]] || die "expected the batch message once, got $n: $out"
echo "PASS"
