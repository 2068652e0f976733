# Bad input gives one clear message and exit code 2, before any work, and leaves nothing
# partial under a final name.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
D=data.dir="$WORK/data"
expect_exit 2 "no/such/recipe.yaml" -- "$REEL" train no/such/recipe.yaml
printf 'trainer:\n  stepz: 10\n' > "$WORK/unknown.yaml"
expect_exit 2 "unknown.yaml:2:.*trainer.stepz.*did you mean 'trainer.steps'" -- "$REEL" train "$WORK/unknown.yaml" "$D"
printf 'model:\n  dim: abc\n' > "$WORK/type.yaml"
expect_exit 2 "type.yaml:2:.*model.dim.*integer" -- "$REEL" train "$WORK/type.yaml" "$D"
printf 'trainer:\n  lr: -1\n' > "$WORK/range.yaml"
expect_exit 2 "range.yaml:2:.*trainer.lr" -- "$REEL" train "$WORK/range.yaml" "$D"
printf 'model:\n  dim: [1\n' > "$WORK/syntax.yaml"
expect_exit 2 "syntax.yaml:[0-9]+" -- "$REEL" train "$WORK/syntax.yaml" "$D"
expect_exit 2 "command line override 'trainer.steps=abc'" -- "$REEL" train $R "$D" trainer.steps=abc
expect_exit 2 "data.dir.*$WORK/nothing" -- "$REEL" train $R data.dir="$WORK/nothing"
expect_exit 2 "heads" -- "$REEL" train $R "$D" model.heads=5
# A bucket the model cannot hold is refused before training.
expect_exit 2 "4x8x8" -- "$REEL" train $R "$D" "${TINY[@]}" model.max_frames=2 run.dir="$WORK/r0"
# Checkpoints: missing, not HDF5, truncated.
expect_exit 2 "$WORK/missing.h5" -- "$REEL" sample --ckpt "$WORK/missing.h5" --prompt x --out "$WORK/s"
head -c 5000 /dev/urandom > "$WORK/garbage.h5"
expect_exit 2 "garbage.h5" -- "$REEL" sample --ckpt "$WORK/garbage.h5" --prompt x --out "$WORK/s"
"$REEL" train $R "$D" "${TINY[@]}" trainer.steps=2 run.dir="$WORK/run" > /dev/null
ck="$WORK/run/checkpoints/step_00000002.h5"
head -c $(( $(stat -c %s "$ck") / 2 )) "$ck" > "$WORK/truncated.h5"
expect_exit 2 "truncated.h5" -- "$REEL" eval --ckpt "$WORK/truncated.h5" --out "$WORK/e"
[ ! -e "$WORK/e/eval.json" ] || die "a failed eval left eval.json"
# CLI misuse.
expect_exit 2 "unknown command" -- "$REEL" fly
expect_exit 2 "unknown option '--stepz'" -- "$REEL" sample --stepz 3
expect_exit 2 "exactly one of --prompt" -- "$REEL" sample --ckpt "$ck" --out "$WORK/s"
expect_exit 2 "buckets|FxHxW|bucket" -- "$REEL" data synth --out "$WORK/d2" --buckets 8x16
# No temporary or partial files under final names anywhere in the work dir.
left=$(find "$WORK" -name '*.tmp.*')
[ -z "$left" ] || die "temporary files left: $left"
echo "PASS"
