# `reel data encode`: a tiny TAE's latents of a dataset, written by one process and by
# `mpirun -np 2`, are identical bit for bit (h5diff), and an interrupted
# job (one shard missing, one left as a partial file) finishes on a rerun without touching the
# complete shards. The text-to-video model trains and resumes on the latents, and samples and
# evaluates through the TAE. Bad arguments are refused.
source "$(dirname "$0")/lib/common.bash"
"$REEL" data synth --out "$WORK/data" --buckets 4x8x8,1x8x8,8x8x12 --train-per-bucket 40 --val-per-bucket 8 \
  --samples-per-shard 16 --seed 2 > /dev/null
"$REEL" train recipes/tiny/tae.yaml data.dir="$WORK/data" "model.tae.channels=[16,16,16]" model.tae.norm_groups=8 \
  model.tae.latent_channels=4 data.batch_size=4 data.workers=1 trainer.steps=2 trainer.val_every=2 \
  trainer.val_samples=1 trainer.warmup_steps=1 trainer.threads=1 run.dir="$WORK/tae" > "$WORK/tae.log" 2>&1 ||
  die "$(cat "$WORK/tae.log")"

export OMP_NUM_THREADS=1
"$REEL" data encode --tae "$WORK/tae" --in "$WORK/data" --out "$WORK/one" --batch 5 --threads 1 > "$WORK/one.log" 2>&1 ||
  die "$(cat "$WORK/one.log")"
grep -q "encode rank 0/1: 12 of 12 shards, 0 complete before, 144 clips encoded" "$WORK/one.log" || die "$(cat "$WORK/one.log")"
reel_on 2 data encode --tae "$WORK/tae" --in "$WORK/data" --out "$WORK/two" --batch 5 --threads 1 > "$WORK/two.log" 2>&1 ||
  die "$(cat "$WORK/two.log")"
grep -q "encode rank 1/2: 6 of 12 shards" "$WORK/two.log" || die "$(cat "$WORK/two.log")"
n=0
for f in "$WORK"/one/train/*.h5 "$WORK"/one/val/*.h5; do
  rel=${f#"$WORK/one/"}
  h5diff "$f" "$WORK/two/$rel" /latents /latents || die "$rel: latents differ between 1 and 2 ranks"
  n=$((n + 1))
done
[ "$n" = 12 ] || die "expected 12 latent shards, found $n"
h5ls "$WORK/one/train/4x8x8_00000.h5/latents" | grep -Eq "\{16(/Inf)?, 4, 1, 2, 2\}" ||
  die "wrong latent shape: $(h5ls "$WORK/one/train/4x8x8_00000.h5/latents")"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); assert m['latent_channels']==4 and m['dtype']=='bfloat16', m" \
  "$WORK/one/latents.json" || die "bad latents.json"

# Interrupted: one shard gone, another only partly written. The rerun encodes just those two.
rm "$WORK/two/train/8x8x12_00001.h5"
cp "$WORK/one/val/1x8x8_00000.h5" "$WORK/two/val/1x8x8_00000.h5.partial.12345"
mv "$WORK/two/val/1x8x8_00000.h5" "$WORK/two/val/1x8x8_00000.h5.partial.999"
touch -d "2020-01-01" "$WORK/two/train/4x8x8_00000.h5"
reel_on 2 data encode --tae "$WORK/tae" --in "$WORK/data" --out "$WORK/two" --batch 5 --threads 1 > "$WORK/again.log" 2>&1 ||
  die "$(cat "$WORK/again.log")"
grep -q "encode rank 0/2: 6 of 12 shards, 6 complete before, 0 clips encoded" "$WORK/again.log" &&
  grep -q "encode rank 1/2: 6 of 12 shards, 4 complete before, 24 clips encoded" "$WORK/again.log" ||
  die "expected only the 2 broken shards encoded again: $(cat "$WORK/again.log")"
[ "$(stat -c %Y "$WORK/two/train/4x8x8_00000.h5")" = "$(date -d 2020-01-01 +%s)" ] || die "a complete shard was rewritten"
ls "$WORK"/two/val/*.partial.* 2>/dev/null && die "partial files left behind"
for rel in train/8x8x12_00001.h5 val/1x8x8_00000.h5; do
  h5diff "$WORK/one/$rel" "$WORK/two/$rel" /latents /latents || die "$rel differs after the rerun"
done

# The text-to-video model trains on the latents (4 channels, buckets 1x2x2 and 2x2x3), validates
# on them, and resumes.
LATENT=("${TINY[@]}" data.dir="$WORK/two" model.in_channels=4 "model.patch=[1,1,1]" trainer.steps=4
        trainer.ckpt_every=2 trainer.val_every=2 trainer.val_samples=2)
"$REEL" train recipes/tiny/t2v.yaml "${LATENT[@]}" run.dir="$WORK/latent_t2v" > "$WORK/latent_t2v.log" 2>&1 ||
  die "$(cat "$WORK/latent_t2v.log")"
python3 - "$WORK/latent_t2v/metrics.jsonl" <<'PY'
import json, math, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert [r["step"] for r in recs] == [1, 2, 3, 4], recs
assert all(math.isfinite(r["loss"]) for r in recs) and "val_loss" in recs[-1], recs
PY
[ $? = 0 ] || die "latent training logged wrong"
"$REEL" train recipes/tiny/t2v.yaml "${LATENT[@]}" run.dir="$WORK/latent_t2v_b" trainer.steps=2 > /dev/null 2>&1 ||
  die "latent part 1 failed"
"$REEL" train recipes/tiny/t2v.yaml "${LATENT[@]}" run.dir="$WORK/latent_t2v_b" --resume > "$WORK/latent_b.log" 2>&1 ||
  die "$(cat "$WORK/latent_b.log")"
h5diff "$WORK/latent_t2v/checkpoints/step_00000004.h5" "$WORK/latent_t2v_b/checkpoints/step_00000004.h5" /model /model ||
  die "the resumed latent run differs"
expect_exit 2 "model.in_channels = 3 but dataset .* holds latents of 4 channels" -- \
  "$REEL" train recipes/tiny/t2v.yaml "${LATENT[@]}" model.in_channels=3 run.dir="$WORK/bad_channels"
# Sampling and evaluating decode through the TAE the dataset's latents.json names (recorded in the
# checkpoint): 4x8x8 pixel clips from 1x2x2 latents, upscaled 2x in the MP4.
"$REEL" sample --ckpt "$WORK/latent_t2v" --prompt "a red circle moving left" --steps 4 --out "$WORK/latent_samples" \
  > "$WORK/latent_sample.log" 2>&1 || die "$(cat "$WORK/latent_sample.log")"
[ "$(ffprobe -v error -select_streams v -count_frames -show_entries stream=width,height,nb_read_frames -of csv=p=0 \
    "$WORK/latent_samples/000.mp4")" = "16,16,4" ] || die "wrong latent sample: $(ffprobe -v error -show_streams "$WORK/latent_samples/000.mp4")"
"$REEL" eval --ckpt "$WORK/latent_t2v" --out "$WORK/latent_eval" > "$WORK/latent_eval.log" 2>&1 ||
  die "$(cat "$WORK/latent_eval.log")"
python3 -c "import json,sys; e=json.load(open(sys.argv[1])); assert e['prompts']==8 and e['sampler']['bucket']=='4x8x8' and e['motion_accuracy'] is not None, e" \
  "$WORK/latent_eval/eval.json" || die "bad latent eval.json"
expect_exit 2 "the TAE trains on pixels, but dataset .* holds latents" -- \
  "$REEL" train recipes/tiny/tae.yaml data.dir="$WORK/two" run.dir="$WORK/tae_on_latents"

expect_exit 2 "--tae is required" -- "$REEL" data encode --in "$WORK/data" --out "$WORK/x"
expect_exit 2 "is not a directory" -- "$REEL" data encode --tae "$WORK/tae" --in "$WORK/nope" --out "$WORK/x"
echo "data encode OK"
