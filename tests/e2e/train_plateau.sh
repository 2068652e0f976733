# trainer.plateau_*: the LR is multiplied by plateau_factor after plateau_patience validations
# without an improvement of the best validation loss, never below min_lr, on every rank alike
# (2 ranks, FSDP 2), and a run stopped between validations and resumed continues with the
# lowered LR and the same counts: the same LRs and losses as an uninterrupted run.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
export OMP_NUM_THREADS=1
# threshold 0.9: only a 90% drop counts as an improvement, so every validation after the first is
# a plateau; patience 1 lowers the LR at steps 4 and 6, and the floor stops it at 2.5e-4.
common=("${TINY[@]}" data.dir="$WORK/data" trainer.steps=8 trainer.val_every=2 trainer.ckpt_every=3
        trainer.schedule=constant trainer.warmup_steps=0 trainer.lr=1e-3 trainer.min_lr=2.5e-4
        trainer.plateau_patience=1 trainer.plateau_factor=0.5 trainer.plateau_threshold=0.9)

reel_on 2 train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/straight" > "$WORK/straight.log" 2>&1 ||
  die "$(tail -20 "$WORK/straight.log")"
grep -q "has not improved on .* in 1 validations: LR 0.001 -> 0.0005" "$WORK/straight.log" ||
  die "no plateau line: $(grep -v '<stdout>:  ' "$WORK/straight.log" | tail -20)"
rc=0
REEL_TEST_PREEMPT_AT_STEP=5 reel_on 2 train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/resumed" \
  > "$WORK/a.log" 2>&1 || rc=$?
[ "$rc" = 75 ] || die "expected the preempted run to exit 75, got $rc: $(tail -20 "$WORK/a.log")"
reel_on 2 train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/resumed" --resume > "$WORK/b.log" 2>&1 ||
  die "$(tail -20 "$WORK/b.log")"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
def read(path):
    return {r["step"]: (r["lr"], r["loss"]) for r in map(json.loads, open(path))}
a = read(f"{w}/straight/metrics.jsonl")
lrs = [a[s][0] for s in sorted(a)]
assert lrs == [1e-3] * 4 + [5e-4] * 2 + [2.5e-4] * 2, lrs
b = read(f"{w}/resumed/metrics.jsonl")
# The first part was preempted after step 5 (between validations) and its checkpoint resumed:
# the LR lowered at step 4 and the plateau counts carried over.
assert a == b, f"straight {a}\nresumed  {b}"
PY
grep -q '"lr_plateau"' <(h5dump -A "$WORK/resumed/checkpoints/step_00000005.h5" 2>/dev/null) ||
  grep -q "lr_plateau" <("$REEL" ckpt inspect "$WORK/resumed/checkpoints/step_00000005.h5") ||
  die "the checkpoint does not carry the plateau state"
echo "train_plateau: OK"
