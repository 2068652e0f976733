# A non-finite loss or gradient norm skips the update on every rank (weights, Adam state and EMA
# stay as they were), training goes on, and trainer.max_nonfinite in a row stop the run with a
# message, its checkpoints intact. REEL_TEST_NONFINITE_STEPS makes rank 0's loss NaN in the
# steps it lists.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" trainer.steps=5 trainer.ema_decay=0.5 trainer.ckpt_every=1
      trainer.keep_last=0)

# skipped_alike DIR: step 3 was skipped, steps 2 and 3 hold the same state, step 4 trained on.
skipped_alike() {
  local dir="$WORK/$1" log="$WORK/$1.log"
  grep -q "step 3: loss nan.*update skipped (1 in a row" "$log" || die "$1: no warning for step 3: $(cat "$log")"
  grep -q '"skipped":true,"step":3' "$dir/metrics.jsonl" || grep -q '"step":3.*"skipped":true' "$dir/metrics.jsonl" ||
    die "$1: metrics.jsonl does not mark step 3 skipped"
  for group in /model /optim /ema; do
    h5diff "$dir/checkpoints/step_00000002.h5" "$dir/checkpoints/step_00000003.h5" $group $group >/dev/null ||
      die "$1: $group changed in the skipped step 3"
  done
  ! h5diff "$dir/checkpoints/step_00000003.h5" "$dir/checkpoints/step_00000004.h5" /model /model >/dev/null ||
    die "$1: step 4 did not update the weights"
  python3 - "$dir/metrics.jsonl" <<'PY' || die "$1: bad losses after the skipped step"
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
trained = {r["step"]: r["loss"] for r in recs if "loss" in r}
assert sorted(trained) == [1, 2, 4, 5], trained
assert all(math.isfinite(v) for v in trained.values()), trained
PY
}

REEL_TEST_NONFINITE_STEPS=3 train_as one 1
skipped_alike one
# Under FSDP 2 only rank 0's loss is NaN; the global gradient norm makes every rank skip.
REEL_TEST_NONFINITE_STEPS=3 train_as fsdp 2 parallel.dp_shard=2
skipped_alike fsdp

# Three in a row stop the run; the checkpoints written before stay valid and resumable.
expect_exit 2 "steps 2-4: 3 non-finite losses or gradient norms in a row \(trainer.max_nonfinite = 3\)" -- \
  env REEL_TEST_NONFINITE_STEPS=2,3,4 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/stop"
[ "$(cat "$WORK/stop/checkpoints/latest")" = "step_00000003.h5" ] || die "stop: latest is not step 3"
[ ! -e "$WORK/stop/checkpoints/step_00000004.h5" ] || die "stop: a checkpoint was written for the failed step"
"$REEL" ckpt inspect "$WORK/stop/checkpoints/step_00000003.h5" >/dev/null || die "stop: step 3 checkpoint unreadable"
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/stop" --resume > "$WORK/stop_resume.log" 2>&1 ||
  die "stop: resume failed: $(cat "$WORK/stop_resume.log")"
[ -e "$WORK/stop/checkpoints/step_00000005.h5" ] || die "stop: the resumed run did not finish"
echo "PASS"
