# trainer.batch_threads splits every micro-batch over threads, each with its own copy of the
# model: 3 steps of a tiny recipe on a global batch of 4 give the same losses, weights, EMA and
# Adam moments (same_training) with 1, 2 and 3 batch threads (3: parts of 2, 1 and 1 rows), also
# with gradient accumulation and across a resume; it cannot be combined with FSDP (exit 2, one message).
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" model.depth=2 trainer.steps=3 trainer.ema_decay=0.5 trainer.threads=2)
for bt in 1 2 3; do
  "$REEL" train $R "${ARGS[@]}" trainer.batch_threads=$bt run.dir="$WORK/bt$bt" > "$WORK/bt$bt.log" 2>&1 ||
    die "batch_threads $bt: $(cat "$WORK/bt$bt.log")"
done
same_training "$WORK/bt1" "$WORK/bt2" 3
same_training "$WORK/bt1" "$WORK/bt3" 3
for bt in 1 2; do
  "$REEL" train $R "${ARGS[@]}" trainer.batch_threads=$bt trainer.grad_accum=2 run.dir="$WORK/acc$bt" \
    > "$WORK/acc$bt.log" 2>&1 || die "grad_accum 2, batch_threads $bt: $(cat "$WORK/acc$bt.log")"
done
same_training "$WORK/acc1" "$WORK/acc2" 3
# Resume with batch threads: step 2's checkpoint continued to step 3 ends where bt1 ends.
"$REEL" train $R "${ARGS[@]}" trainer.batch_threads=2 trainer.steps=2 run.dir="$WORK/resume" > "$WORK/resume.log" 2>&1 ||
  die "2 steps: $(cat "$WORK/resume.log")"
"$REEL" train $R "${ARGS[@]}" trainer.batch_threads=2 run.dir="$WORK/resume" --resume >> "$WORK/resume.log" 2>&1 ||
  die "resume: $(cat "$WORK/resume.log")"
for prefix in model/ ema/ optim/; do
  "$REEL" ckpt compare "$WORK/bt1/checkpoints/step_00000003.h5" "$WORK/resume/checkpoints/step_00000003.h5" \
    --prefix $prefix --rtol 3e-5 || die "resumed with batch threads: $prefix differs"
done
set +e
out=$(mpirun --allow-run-as-root --oversubscribe -np 2 "$REEL" train $R "${ARGS[@]}" trainer.batch_threads=2 \
  parallel.dp_shard=2 run.dir="$WORK/fsdp" 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || die "batch_threads with FSDP: exit $rc, expected 2: $out"
[[ $(grep -c "trainer.batch_threads = 2 cannot be combined with FSDP, context or tensor parallel" <<<"$out") -eq 1 ]] || die "message: $out"
echo "PASS"
