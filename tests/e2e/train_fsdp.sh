# FSDP and HSDP are the same training as one process. A tiny recipe (2 blocks) trains 3 steps on
# a global batch of 4: alone, as FSDP over 2 and over 4 ranks, as HSDP (2 replicas x 2 shards) over 4 ranks,
# as FSDP without resharding after forward, and with activation checkpointing alone and inside
# FSDP 2; every run logs the same losses and ends with the
# same weights, EMA and Adam moments (same_training). Every rank writes its own shards of a
# checkpoint, in the foreground or the background, into the same bytes. Checkpoints do not depend on the mesh: an
# FSDP run resumed from step 2 under FSDP, and the same checkpoint resumed by one process, both
# end where the uninterrupted run ends.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" model.depth=2 trainer.steps=3 trainer.ema_decay=0.5 trainer.ckpt_every=2
      trainer.keep_last=0)
MPI=(mpirun --allow-run-as-root --oversubscribe)
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/one" > "$WORK/one.log" 2>&1 || die "one process: $(cat "$WORK/one.log")"
"${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/fsdp2" parallel.dp_shard=2 > "$WORK/fsdp2.log" 2>&1 ||
  die "FSDP 2: $(cat "$WORK/fsdp2.log")"
same_training "$WORK/one" "$WORK/fsdp2" 3
# Each rank writes its shards into the one file (parallel HDF5), also from a background thread
# while training goes on (trainer.async_save): the same bytes as the synchronous write.
"${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/fsdp2_async" parallel.dp_shard=2 trainer.async_save=true \
  > "$WORK/fsdp2_async.log" 2>&1 || die "FSDP 2 async: $(cat "$WORK/fsdp2_async.log")"
grep -q "step_00000002.h5 (writing in the background)" "$WORK/fsdp2_async.log" || die "no background write under FSDP"
for group in /model /optim /ema; do
  h5diff "$WORK/fsdp2/checkpoints/step_00000002.h5" "$WORK/fsdp2_async/checkpoints/step_00000002.h5" $group $group ||
    die "$group of the background-written FSDP checkpoint differs"
done
"$REEL" ckpt verify "$WORK"/fsdp2_async/checkpoints/step_*.h5 > /dev/null || die "an FSDP background checkpoint does not verify"
"${MPI[@]}" -np 4 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/fsdp4" parallel.dp_shard=4 > "$WORK/fsdp4.log" 2>&1 ||
  die "FSDP 4: $(cat "$WORK/fsdp4.log")"
same_training "$WORK/one" "$WORK/fsdp4" 3
"${MPI[@]}" -np 4 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/hsdp" parallel.dp_replicate=2 parallel.dp_shard=2 \
  > "$WORK/hsdp.log" 2>&1 || die "HSDP 2x2: $(cat "$WORK/hsdp.log")"
same_training "$WORK/one" "$WORK/hsdp" 3
"${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/keep" parallel.dp_shard=2 \
  parallel.reshard_after_forward=false > "$WORK/keep.log" 2>&1 || die "FSDP 2 without reshard: $(cat "$WORK/keep.log")"
same_training "$WORK/one" "$WORK/keep" 3
# Activation checkpointing (every block recomputed in backward), alone and inside FSDP.
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/one_ac" parallel.activation_checkpointing=full > "$WORK/one_ac.log" 2>&1 ||
  die "one process with checkpointing: $(cat "$WORK/one_ac.log")"
same_training "$WORK/one" "$WORK/one_ac" 3
"${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/fsdp_ac" parallel.dp_shard=2 \
  parallel.activation_checkpointing=full > "$WORK/fsdp_ac.log" 2>&1 || die "FSDP 2 with checkpointing: $(cat "$WORK/fsdp_ac.log")"
same_training "$WORK/one" "$WORK/fsdp_ac" 3

# bf16 autocast runs alone and under FSDP 2 (the parameters and shards stay fp32); the two agree
# to bf16 rounding (1e-2 relative) at every step.
for mesh in one fsdp; do
  launch=("$REEL"); extra=()
  [[ $mesh == fsdp ]] && launch=("${MPI[@]}" -np 2 "$REEL") && extra=(parallel.dp_shard=2)
  "${launch[@]}" train $R "${ARGS[@]}" trainer.dtype=bf16 run.dir="$WORK/bf16_$mesh" "${extra[@]}" \
    > "$WORK/bf16_$mesh.log" 2>&1 || die "bf16 $mesh: $(cat "$WORK/bf16_$mesh.log")"
done
bf16_losses() { grep -o '"loss":[-0-9.e]*' "$1" | cut -d: -f2; }
paste <(bf16_losses "$WORK/bf16_one/metrics.jsonl") <(bf16_losses "$WORK/bf16_fsdp/metrics.jsonl") |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-2 * $1) { print "step " NR ": " $1 " vs " $2; bad = 1 } }
       END { exit bad || NR != 3 }' || die "bf16 losses of one process and FSDP 2 differ"

# Resume: the FSDP run's step-2 checkpoint, continued under FSDP and by one process.
for mesh in fsdp one; do
  mkdir -p "$WORK/resume_$mesh/checkpoints"
  cp "$WORK/fsdp2/checkpoints/step_00000002.h5" "$WORK/resume_$mesh/checkpoints/"
  echo step_00000002.h5 > "$WORK/resume_$mesh/checkpoints/latest"
done
"${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/resume_fsdp" parallel.dp_shard=2 --resume \
  > "$WORK/resume_fsdp.log" 2>&1 || die "FSDP resume: $(cat "$WORK/resume_fsdp.log")"
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/resume_one" --resume > "$WORK/resume_one.log" 2>&1 ||
  die "one-process resume of an FSDP checkpoint: $(cat "$WORK/resume_one.log")"
for dir in resume_fsdp resume_one; do
  grep -q "resumed from .*step_00000002.h5 at step 2" "$WORK/$dir.log" || die "$dir did not resume: $(cat "$WORK/$dir.log")"
  for prefix in model/ ema/ optim/; do
    "$REEL" ckpt compare "$WORK/one/checkpoints/step_00000003.h5" "$WORK/$dir/checkpoints/step_00000003.h5" \
      --prefix $prefix --rtol 3e-5 || die "$dir: $prefix differs from the uninterrupted run"
  done
done

# bench step under FSDP reports the mesh and the time spent waiting on collectives, once.
out=$("${MPI[@]}" -np 2 "$REEL" bench step $R "${ARGS[@]}" run.dir="$WORK/bench" parallel.dp_shard=2 --steps 2 \
  --warmup 1 2>&1) || die "bench step: $out"
[[ $(grep -c "mesh dp_replicate 1 x dp_shard 2 x cp 1 x tp 1 (rank 0's times): .* ms/step waiting" <<<"$out") -eq 1 ]] ||
  die "bench step output: $out"
echo "PASS"
