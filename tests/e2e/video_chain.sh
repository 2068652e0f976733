# The tiny staged video chain (recipes/tiny/video/): text-to-image, image+video, higher resolution,
# fine-tune, each stage through launch/reel-run with 2 ranks (FSDP 2) for a few steps, starting
# from the one before (init_from) with its position tables grown as published (stage 2: spatial
# x2 and 8 frames from 1; stage 3: spatial x3 of stage 1), then two fine-tunes averaged.
source "$(dirname "$0")/lib/common.bash"
D=recipes/tiny/video
"$REEL" data synth --out "$WORK/s1" --buckets 1x16x16 --train-per-bucket 32 --val-per-bucket 8 --seed 0 >/dev/null
"$REEL" data synth --out "$WORK/s2" --buckets 8x16x16,1x16x16 --train-per-bucket 32 --val-per-bucket 8 --seed 1 >/dev/null
"$REEL" data synth --out "$WORK/s3" --buckets 8x32x32,1x32x32 --train-per-bucket 32 --val-per-bucket 8 --seed 2 >/dev/null
COMMON=(data.batch_size=8 data.workers=1 trainer.steps=3 trainer.warmup_steps=1 trainer.log_every=1
        trainer.val_every=3 trainer.val_samples=4 trainer.ckpt_every=3)
stage() {  # name recipe data init_from [overrides...]
  local name="$1" recipe="$2" data="$3" init="$4"; shift 4
  local args=("$D/$recipe" "${COMMON[@]}" data.dir="$WORK/$data" run.dir="$WORK/$name" "$@")
  if [ -n "$init" ]; then args+=(init_from="$WORK/$init"); fi
  launch/reel-run --reel "$REEL" -n 2 -t 1 --max-restarts 0 "${args[@]}" > "$WORK/$name.log" 2>&1 ||
    die "stage $name: $(tail -30 "$WORK/$name.log")"
  [ -f "$WORK/$name/checkpoints/step_00000003.h5" ] || die "stage $name wrote no step-3 checkpoint"
}
stage 01 01_t2i.yaml s1 ""
grep -q "mesh: dp_replicate 1 x dp_shard 2 x cp 1 x tp 1 (2 ranks)" "$WORK/01.log" ||
  die "stage 01 did not run sharded over 2 ranks: $(grep -v '<stdout>:  ' "$WORK/01.log" | head -20)"
stage 02 02_t2iv.yaml s2 01
grep -q "position tables resampled: transformer.pos_embed.h, transformer.pos_embed.t, transformer.pos_embed.w" \
  "$WORK/02.log" || die "stage 02 did not grow its position tables: $(grep init_from "$WORK/02.log")"
stage 03 03_t2iv_hi.yaml s3 02
grep -q "position tables resampled: transformer.pos_embed.h, transformer.pos_embed.w;" "$WORK/03.log" ||
  die "stage 03 did not grow its spatial tables: $(grep init_from "$WORK/03.log")"
stage 04a 04_finetune.yaml s3 03 seed=1
stage 04b 04_finetune.yaml s3 03 seed=2
"$REEL" ckpt average "$WORK/04a/checkpoints/latest" "$WORK/04b/checkpoints/latest" -o "$WORK/average.h5" \
  > "$WORK/average.log" 2>&1 || die "average: $(cat "$WORK/average.log")"
"$REEL" ckpt verify "$WORK/average.h5" > /dev/null || die "the averaged checkpoint does not verify"
"$REEL" ckpt inspect "$WORK/average.h5" > "$WORK/inspect.log" || die "inspect the average"
for slot in ul2 metaclip byt5; do
  grep -q "model/text.$slot.encoder" "$WORK/inspect.log" || die "the averaged model has no $slot slot"
done
# Other seeds fine-tune to other weights, so the average is a third model.
rc=0
"$REEL" ckpt compare "$WORK/04a" "$WORK/04b" > "$WORK/cmp.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || die "two seeds should fine-tune to other weights (exit 1), got exit $rc: $(cat "$WORK/cmp.log")"

# A slot loaded from a weights file: stage 1's UL2 encoder, frozen, in a fresh run; it stays as loaded.
stage w 02_t2iv.yaml s2 "" init_from= model.text_encoders.0.weights="$WORK/01" model.text_encoders.0.trainable=false
grep -q "text slot 'ul2': [0-9]* encoder tensors from $WORK/01/checkpoints/step_00000003.h5" "$WORK/w.log" ||
  die "no weights line: $(grep -v '<stdout>:  ' "$WORK/w.log" | head -20)"
"$REEL" ckpt compare "$WORK/01" "$WORK/w" --prefix model/text.ul2.encoder --rtol 0 > "$WORK/w.cmp" ||
  die "the loaded frozen encoder differs from stage 1's: $(cat "$WORK/w.cmp")"
rc=0
"$REEL" ckpt compare "$WORK/01" "$WORK/w" --prefix model/text.metaclip.encoder > /dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || die "the metaclip slot (not loaded) should differ from stage 1's, exit $rc"
echo "video_chain: OK"
