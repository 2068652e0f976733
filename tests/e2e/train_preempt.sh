# Preemption: SIGUSR1 or SIGTERM ends a run after the current step with a checkpoint of that step
# and exit code 75, on every rank even when only one was signalled, and --resume then continues
# exactly: the same losses and byte-identical weights, Adam state and EMA as a run never stopped
# (one process, and FSDP 2 x TP 2 on 4 ranks). REEL_TEST_PREEMPT_AT_STEP=N makes rank 0 act as
# if signalled after step N; the last two checks send real signals.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" trainer.steps=6 trainer.ckpt_every=100 trainer.ema_decay=0.9
      trainer.keep_last=0)

# resumed_exactly NAME RANKS ARGS...: stopped after step 3, resumed to 6, same as never stopped.
resumed_exactly() {
  local name=$1 np=$2
  shift 2
  train_as "${name}_straight" "$np" "$@"
  REEL_TEST_PREEMPT_AT_STEP=3 expect_exit 75 "stopped by signal 10 \(SIGUSR1\) after step 3 with its checkpoint written" \
    -- reel_on "$np" train $R "${ARGS[@]}" run.dir="$WORK/$name" "$@"
  [ "$(cat "$WORK/$name/checkpoints/latest")" = "step_00000003.h5" ] || die "$name: latest is not step 3"
  train_as "$name" "$np" "$@" --resume
  local a="$WORK/${name}_straight" b="$WORK/$name"
  python3 - "$a/metrics.jsonl" "$b/metrics.jsonl" <<'PY' || die "$name: losses differ after the resume"
import json, sys
def losses(path):
    return {r["step"]: r["loss"] for r in map(json.loads, open(path))}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert sorted(a) == [1, 2, 3, 4, 5, 6] and a == b, f"\n straight {a}\n resumed  {b}"
PY
  for group in /model /optim /ema; do
    h5diff "$a/checkpoints/step_00000006.h5" "$b/checkpoints/step_00000006.h5" $group $group ||
      die "$name: $group differs from the run never stopped"
  done
}
resumed_exactly one 1
resumed_exactly fsdp2_tp2 4 parallel.dp_shard=2 parallel.tp=2

# steps_logged DIR: how many steps metrics.jsonl holds so far.
steps_logged() {
  local n=0
  [ -f "$1/metrics.jsonl" ] && n=$(grep -c '"step"' "$1/metrics.jsonl" || true)
  echo "${n:-0}"
}
# wait_for_steps DIR N PID: until the run has logged N steps (dies if PID ends first).
wait_for_steps() {
  for _ in $(seq 600); do
    [ "$(steps_logged "$1")" -ge "$2" ] && return 0
    kill -0 "$3" 2>/dev/null || die "$1: the run ended before it was signalled"
    sleep 0.1
  done
  die "$1: no $2 steps within 60 s"
}
# last_checkpoint_is_last_step DIR: `latest` names the last step metrics.jsonl logged.
last_checkpoint_is_last_step() {
  local last
  last=$(grep -o '"step":[0-9]*' "$1/metrics.jsonl" | tail -1 | cut -d: -f2)
  [ "$(cat "$1/checkpoints/latest")" = "$(printf "step_%08d.h5" "$last")" ] ||
    die "$1: latest ($(cat "$1/checkpoints/latest")) is not the last step ($last)"
  "$REEL" ckpt inspect "$1/checkpoints/$(cat "$1/checkpoints/latest")" > /dev/null || die "$1: bad checkpoint"
}

# SIGTERM to one process.
"$REEL" train $R "${ARGS[@]}" trainer.steps=100000 run.dir="$WORK/term" > "$WORK/term.log" 2>&1 &
pid=$!
wait_for_steps "$WORK/term" 2 $pid
kill -TERM $pid
rc=0; wait $pid || rc=$?
[ $rc = 75 ] || die "SIGTERM: exit $rc, expected 75: $(cat "$WORK/term.log")"
grep -q "stopped by signal 15 (SIGTERM)" "$WORK/term.log" || die "SIGTERM: no message"
last_checkpoint_is_last_step "$WORK/term"

# SIGUSR1 to one rank of two (FSDP 2): both stop after the same step.
mpirun --allow-run-as-root --oversubscribe -np 2 "$REEL" train $R "${ARGS[@]}" trainer.steps=100000 \
  parallel.dp_shard=2 run.dir="$WORK/usr1" > "$WORK/usr1.log" 2>&1 &
pid=$!
wait_for_steps "$WORK/usr1" 2 $pid
ranks=($(pgrep -P $pid))
[ ${#ranks[@]} = 2 ] || die "SIGUSR1: expected 2 rank processes under mpirun, found ${#ranks[@]}"
kill -USR1 "${ranks[1]}"
rc=0; wait $pid || rc=$?
[ $rc = 75 ] || die "SIGUSR1 to one rank: mpirun exit $rc, expected 75: $(cat "$WORK/usr1.log")"
last_checkpoint_is_last_step "$WORK/usr1"
echo "PASS"
