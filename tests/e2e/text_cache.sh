# `reel data encode-text` and data.text_cache: a frozen text encoder's outputs cached by one
# process and by `mpirun -np 2` are identical bit for bit (h5diff); an interrupted job finishes on a
# rerun without touching complete chunks; training that reads a float32 cache gives the losses of
# training that runs the frozen encoder, and validation and resume work with it; a cache of other
# weights, a trainable slot and a caption missing from the cache are refused with exit 2.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
export OMP_NUM_THREADS=1
R=recipes/tiny/t2v.yaml
ARGS=("${TINY[@]}" data.dir="$WORK/data" model.text_encoders.0.trainable=false model.text_encoders.0.ngram=3
      trainer.steps=6 trainer.ckpt_every=3 trainer.val_every=3 trainer.grad_clip=0.3)

# 128 train + 16 val clips: the unique conditioning texts, cut into chunks of 16.
"$REEL" data encode-text --model "$R" "${ARGS[@]}" --in "$WORK/data" --out "$WORK/one" --chunk 16 --batch 5 \
  --dtype float32 --threads 1 > "$WORK/one.log" 2>&1 || die "$(cat "$WORK/one.log")"
chunks=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['chunks'])" "$WORK/one/text_cache.json")
strings=$(python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print(m['strings'])" "$WORK/one/text_cache.json")
[ "$chunks" -ge 4 ] || die "expected at least 4 chunks, the manifest says $chunks"
grep -q "encode-text rank 0/1: $chunks of $chunks chunks ($strings strings in all), 0 complete before, $strings strings encoded" \
  "$WORK/one.log" || die "$(cat "$WORK/one.log")"
reel_on 2 data encode-text --model "$R" "${ARGS[@]}" --in "$WORK/data" --out "$WORK/two" --chunk 16 --batch 5 \
  --dtype float32 --threads 1 > "$WORK/two.log" 2>&1 || die "$(cat "$WORK/two.log")"
grep -q "encode-text rank 1/2: $((chunks / 2)) of $chunks chunks" "$WORK/two.log" || die "$(cat "$WORK/two.log")"
cmp "$WORK/one/text_cache.json" "$WORK/two/text_cache.json" || die "manifests differ between 1 and 2 ranks"
for f in "$WORK"/one/chunk_*.h5; do
  h5diff "$f" "$WORK/two/$(basename "$f")" || die "$(basename "$f") differs between 1 and 2 ranks"
done

# Interrupted: one chunk gone, another left as a partial file. The rerun writes just those two.
rm "$WORK/two/chunk_00001.h5"
mv "$WORK/two/chunk_00002.h5" "$WORK/two/chunk_00002.h5.partial.999"
touch -d "2020-01-01" "$WORK/two/chunk_00000.h5"
reel_on 2 data encode-text --model "$R" "${ARGS[@]}" --in "$WORK/data" --out "$WORK/two" --chunk 16 --batch 5 \
  --dtype float32 --threads 1 > "$WORK/again.log" 2>&1 || die "$(cat "$WORK/again.log")"
for r in 0 1; do
  grep -Eq "encode-text rank $r/2: .* 16 strings encoded" "$WORK/again.log" ||
    die "expected rank $r to encode just its broken chunk (16 strings) again: $(cat "$WORK/again.log")"
done
[ "$(stat -c %Y "$WORK/two/chunk_00000.h5")" = "$(date -d 2020-01-01 +%s)" ] || die "a complete chunk was rewritten"
for f in "$WORK"/one/chunk_*.h5; do
  h5diff "$f" "$WORK/two/$(basename "$f")" || die "$(basename "$f") differs after the rerun"
done

# Training with the cache gives the losses of training with the frozen encoder running.
train_as live 1
train_as cached 1 data.text_cache="$WORK/one"
grep -q "text cache $WORK/one: $strings strings stand in for the encoder of text slot(s) byte" "$WORK/cached.log" ||
  die "the cache was not used: $(cat "$WORK/cached.log")"
python3 - "$WORK/live/metrics.jsonl" "$WORK/cached/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 7)), (a, b)
for x, y in zip(a, b):
    for k in ("loss", "grad_norm", "val_loss"):
        if k in x:
            assert abs(x[k] - y[k]) <= 1e-5 * max(1.0, abs(x[k])), (k, x, y)
PY
# Resume with the cache: the same losses as the uninterrupted run.
rc=0
REEL_TEST_PREEMPT_AT_STEP=3 "$REEL" train "$R" "${ARGS[@]}" data.text_cache="$WORK/one" run.dir="$WORK/resumed" \
  > "$WORK/resumed.log" 2>&1 || rc=$?
[ "$rc" = 75 ] || die "the preempted run exited $rc, not 75: $(cat "$WORK/resumed.log")"
train_as resumed 1 data.text_cache="$WORK/one" --resume
python3 - "$WORK/cached/metrics.jsonl" "$WORK/resumed/metrics.jsonl" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
a = {r["step"]: r["loss"] for r in a}
b = {r["step"]: r["loss"] for r in b}
assert set(b) == set(range(1, 7)), b
assert all(abs(a[s] - b[s]) <= 1e-6 * max(1.0, abs(a[s])) for s in b), (a, b)
PY

# Refusals: weights of another seed; a trainable slot; a dataset with captions not in the cache.
expect_exit 2 "built from other weights of text slot 'byte'" -- \
  "$REEL" train "$R" "${ARGS[@]}" seed=5 data.text_cache="$WORK/one" run.dir="$WORK/bad1"
expect_exit 2 "which is trainable here" -- \
  "$REEL" train "$R" "${ARGS[@]}" model.text_encoders.0.trainable=true data.text_cache="$WORK/one" run.dir="$WORK/bad2"
"$REEL" data synth --out "$WORK/other" --buckets 4x8x8 --train-per-bucket 16 --val-per-bucket 4 --seed 9 > /dev/null
expect_exit 2 "has no entry for .*built from another dataset" -- \
  "$REEL" train "$R" "${ARGS[@]}" data.dir="$WORK/other" data.text_cache="$WORK/one" run.dir="$WORK/bad3"
expect_exit 2 "every text slot of .* is trainable" -- \
  "$REEL" data encode-text --model "$R" "${TINY[@]}" data.dir="$WORK/data" --in "$WORK/data" --out "$WORK/bad4"
expect_exit 2 "already holds a text cache of other encoder weights" -- \
  "$REEL" data encode-text --model "$R" "${ARGS[@]}" seed=5 --in "$WORK/data" --out "$WORK/one" --chunk 16 --dtype float32
expect_exit 2 "key 'data.text_cache' = '$WORK/none': no such directory" -- \
  "$REEL" train "$R" "${ARGS[@]}" data.text_cache="$WORK/none" run.dir="$WORK/bad5"
echo "text_cache: OK ($strings strings in $chunks chunks)"
