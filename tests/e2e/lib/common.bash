# Shared helpers for the end-to-end tests. Each test script is called as
#   bash tests/e2e/NAME.sh REEL_BINARY WORK_DIR
# from the repository root, and fails (non-zero exit) with a message on the first broken check.
set -euo pipefail
REEL="$1"
WORK="$2"
rm -rf "$WORK"
mkdir -p "$WORK"

die() { echo "FAIL: $*" >&2; exit 1; }

# expect_exit CODE PATTERN -- command...: runs the command, checks its exit code and that
# stderr+stdout contain PATTERN (a grep -E regex).
expect_exit() {
  local code="$1" pattern="$2"; shift 3
  local out rc=0
  out=$("$@" 2>&1) || rc=$?
  [ "$rc" = "$code" ] || die "expected exit $code, got $rc from: $*
$out"
  grep -Eq -- "$pattern" <<<"$out" || die "output of '$*' lacks /$pattern/:
$out"
}

# A tiny dataset and recipe overrides that train in seconds.
make_tiny_data() {
  "$REEL" data synth --out "$WORK/data" --buckets 4x8x8,1x8x8 --train-per-bucket 64 \
    --val-per-bucket 8 --samples-per-shard 32 --seed 1 >/dev/null
}
TINY=(model.dim=32 model.depth=1 model.heads=2 model.max_frames=4 model.max_height=8
      model.max_width=8 model.text_encoders.0.dim=32 model.text_encoders.0.depth=1
      model.text_encoders.0.heads=2 model.text_encoders.0.max_len=48 data.batch_size=4
      data.workers=1 trainer.warmup_steps=2 trainer.log_every=1 trainer.val_every=3
      trainer.val_samples=4 trainer.threads=1 sample.bucket=4x8x8 sample.scale=2
      eval.prompts=8 eval.steps=4)

# train_as NAME RANKS KEY=VALUE...: `reel train $R "${ARGS[@]}"` into $WORK/NAME (its log in
# $WORK/NAME.log), under mpirun with RANKS > 1; dies with the log when it fails.
train_as() {
  local name=$1 np=$2
  shift 2
  reel_on "$np" train "$R" "${ARGS[@]}" run.dir="$WORK/$name" "$@" > "$WORK/$name.log" 2>&1 ||
    die "$name: $(cat "$WORK/$name.log")"
}

# reel_on RANKS ARGS...: `reel ARGS...`, under mpirun with RANKS > 1.
reel_on() {
  local np=$1
  shift
  if [[ $np -gt 1 ]]; then
    mpirun --allow-run-as-root --oversubscribe -np "$np" "$REEL" "$@"
  else
    "$REEL" "$@"
  fi
}

# same_training DIR_A DIR_B STEP [RTOL]: the runs logged the same loss (1e-6 relative) and gradient
# norm (1e-5) at every step, and their step-STEP checkpoints hold the same weights and EMA
# (||a - b|| / ||a|| <= RTOL, default 1e-5) and Adam moments (3e-5: the second moment squares the
# gradients' rounding).
same_training() {
  local a="$1" b="$2" step rtol="${4:-1e-5}"
  step=$(printf "%08d" "$3")
  logged() { grep -o "\"$1\":[-0-9.e]*" "$2" | cut -d: -f2; }
  paste <(logged loss "$a/metrics.jsonl") <(logged loss "$b/metrics.jsonl") |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6 * ($1 < 0 ? -$1 : $1)) { print "step " NR ": " $1 " vs " $2; bad = 1 } }
         END { exit bad || NR == 0 }' || die "losses of $a and $b differ"
  paste <(logged grad_norm "$a/metrics.jsonl") <(logged grad_norm "$b/metrics.jsonl") |
    awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * $1) { print "step " NR ": " $1 " vs " $2; bad = 1 } }
         END { exit bad || NR == 0 }' || die "gradient norms of $a and $b differ"
  for prefix in model/ ema/; do
    "$REEL" ckpt compare "$a/checkpoints/step_$step.h5" "$b/checkpoints/step_$step.h5" --prefix $prefix --rtol "$rtol" ||
      die "$prefix tensors of $a and $b differ"
  done
  "$REEL" ckpt compare "$a/checkpoints/step_$step.h5" "$b/checkpoints/step_$step.h5" --prefix optim/ --rtol 3e-5 ||
    die "optimizer moments of $a and $b differ"
}
