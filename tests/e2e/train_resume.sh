# A run stopped after 3 steps and resumed gives the same losses and byte-identical weights as
# an uninterrupted 6-step run; checkpoints, latest and metrics.jsonl are written as documented.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
common=("${TINY[@]}" data.dir="$WORK/data" trainer.steps=6 trainer.ckpt_every=3 trainer.ema_decay=0.9)

"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/straight" > "$WORK/straight.log"
"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/resumed" trainer.steps=3 > "$WORK/part1.log"
[ "$(cat "$WORK/resumed/checkpoints/latest")" = "step_00000003.h5" ] || die "latest does not name step 3"
"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/resumed" --resume > "$WORK/part2.log"
grep -q "resumed from" "$WORK/part2.log" || die "the second part did not say it resumed"

for f in straight resumed; do
  [ -f "$WORK/$f/metrics.jsonl" ] || die "no metrics.jsonl in $f"
  [ -f "$WORK/$f/recipe.yaml" ] || die "no resolved recipe.yaml in $f"
  [ -f "$WORK/$f/checkpoints/step_00000006.h5" ] || die "no final checkpoint in $f"
done
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
def losses(path):
    recs = [json.loads(l) for l in open(path)]
    for r in recs:
        for k in ("step", "loss", "lr", "grad_norm", "samples_per_s", "tokens_per_s", "flops_per_s", "mfu"):
            assert k in r, f"{path}: record {r} lacks {k}"
    return {r["step"]: r["loss"] for r in recs}
a, b = losses(f"{w}/straight/metrics.jsonl"), losses(f"{w}/resumed/metrics.jsonl")
assert sorted(a) == [1, 2, 3, 4, 5, 6], a
assert a == b, f"losses differ:\n straight {a}\n resumed  {b}"
val = [json.loads(l) for l in open(f"{w}/straight/metrics.jsonl") if "val_loss" in l]
assert val and len(val[0]["val_loss_t"]) == 8, "no validation at 8 fixed t"
assert val[0]["val_loss_uncond"] > 0, "no caption-free validation loss"
PY
# Byte-identical weights, optimizer state and EMA.
h5diff "$WORK/straight/checkpoints/step_00000006.h5" "$WORK/resumed/checkpoints/step_00000006.h5" /model /model \
  || die "model weights differ after resume"
h5diff "$WORK/straight/checkpoints/step_00000006.h5" "$WORK/resumed/checkpoints/step_00000006.h5" /optim /optim \
  || die "optimizer state differs after resume"
h5diff "$WORK/straight/checkpoints/step_00000006.h5" "$WORK/resumed/checkpoints/step_00000006.h5" /ema /ema \
  || die "EMA differs after resume"
# A checkpoint's data position counts global batches of its size: resumed with another
# data.batch_size (a published batch change inside a stage), training goes on at the new size
# from the next epoch, with the step, weights and Adam state carried on.
cp -r "$WORK/resumed" "$WORK/grown"
"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" data.batch_size=8 trainer.steps=8 run.dir="$WORK/grown" --resume \
  > "$WORK/grown.log" 2>&1 || die "resume with another batch size: $(tail -20 "$WORK/grown.log")"
grep -q "step_00000006.h5 was written with data.batch_size = 4, data.batch_budget = 0; the recipe has 8 and 0: training goes on with the new batch from the start of epoch" \
  "$WORK/grown.log" || die "no warning about the batch change: $(grep -v '^  ' "$WORK/grown.log" | head -20)"
grep -q "resumed from .*step_00000006.h5 at step 6" "$WORK/grown.log" || die "did not resume at step 6"
python3 - "$WORK/grown/metrics.jsonl" <<'PY' || die "the grown run's last steps are not there"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["step"] for r in recs][-2:] == [7, 8], [r["step"] for r in recs]
PY
grep -q "meta mesh: one process" <<<"$("$REEL" ckpt inspect "$WORK/resumed/checkpoints/step_00000006.h5")" ||
  die "ckpt inspect does not show the mesh"

# init_from starts a new stage from a run's weights: the same tensors copied, the grown h position
# table resampled, a new layer fresh; a changed width is refused, naming the tensor.
"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" trainer.steps=1 model.max_height=16 model.pooled_text=false \
  init_from="$WORK/straight" run.dir="$WORK/stage2" > "$WORK/stage2.log"
grep -q "init_from $WORK/straight/checkpoints/step_00000006.h5: [0-9]* tensors copied; position tables resampled: transformer.pos_embed.h; new (fresh initialization): none; in the checkpoint only: transformer.text_pool.bias, transformer.text_pool.weight" \
  "$WORK/stage2.log" || die "init_from did not report what it did: $(grep init_from "$WORK/stage2.log")"
expect_exit 2 "model/transformer.patch_embed.weight: checkpoint \[32, 192\] vs model \[48, 192\]" -- \
  "$REEL" train recipes/tiny/t2v.yaml "${common[@]}" model.dim=48 init_from="$WORK/straight" run.dir="$WORK/stage2b"

# Checkpoints written in the background (trainer.async_save) hold the same bytes, and resume alike.
"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/async" trainer.steps=3 trainer.ckpt_every=1 \
  trainer.async_save=true > "$WORK/async1.log"
grep -q "step_00000002.h5 (writing in the background)" "$WORK/async1.log" || die "no background checkpoint write"
"$REEL" train recipes/tiny/t2v.yaml "${common[@]}" run.dir="$WORK/async" trainer.async_save=true --resume > "$WORK/async2.log"
for group in /model /optim /ema; do
  h5diff "$WORK/straight/checkpoints/step_00000006.h5" "$WORK/async/checkpoints/step_00000006.h5" $group $group ||
    die "$group differs after background checkpoint writes"
done
"$REEL" ckpt verify "$WORK"/async/checkpoints/step_*.h5 > /dev/null || die "a background-written checkpoint does not verify"
echo "PASS"
