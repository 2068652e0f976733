# Data parallelism is the same training as one process: 3 steps of a tiny recipe on one global
# batch of 4, once alone and once as 2 replicas under mpirun (2 samples each), give the same
# loss at every step (1e-6 relative) and the same final weights and EMA (||a - b|| / ||a|| within
# 2e-5) and Adam moments (3e-5: the second moment squares the gradients' rounding). The largest
# weight difference is the text encoder's final_norm.bias, whose tiny gradient Adam turns into a
# full-size step whatever its rounding: 9.2e-6 on one VM, 1.51e-5 on an AMD EPYC VM with the same
# code (issue 3 tracks this class of difference against its 1e-5 bar).
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" trainer.steps=3 trainer.ema_decay=0.5 data.batch_size=4)
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/one" > "$WORK/one.log" 2>&1 || die "one process: $(cat "$WORK/one.log")"
mpirun --allow-run-as-root --oversubscribe -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/two" \
  parallel.dp_replicate=2 parallel.dp_shard=1 > "$WORK/two.log" 2>&1 || die "2 replicas: $(cat "$WORK/two.log")"
# metrics.jsonl: one line per step, rank 0 only.
[[ $(wc -l < "$WORK/two/metrics.jsonl") -eq 3 ]] || die "2 replicas wrote $(wc -l < "$WORK/two/metrics.jsonl") metric lines"
same_training "$WORK/one" "$WORK/two" 3 2e-5
a="$WORK/one/checkpoints/step_00000003.h5"
# A difference is caught: one more step is not the same model.
"$REEL" train $R "${ARGS[@]}" trainer.steps=4 run.dir="$WORK/four" > /dev/null 2>&1
set +e
"$REEL" ckpt compare "$a" "$WORK/four/checkpoints/step_00000004.h5" > /dev/null
rc=$?
set -e
[[ $rc -eq 1 ]] || die "compare of different weights exited $rc, expected 1"
# bench step under mpirun reports the replicas' compute and communication time, once.
out=$(mpirun --allow-run-as-root --oversubscribe -np 2 "$REEL" bench step $R "${ARGS[@]}" run.dir="$WORK/bench" \
  parallel.dp_replicate=2 parallel.dp_shard=1 --steps 2 --warmup 1 2>&1) || die "bench step: $out"
[[ $(grep -c "mesh dp_replicate 2 x dp_shard 1 x cp 1 x tp 1 (rank 0's times): .* ms/step computing, .* ms/step waiting" <<<"$out") -eq 1 ]] ||
  die "bench step output: $out"
echo "PASS"
