# Tensor and sequence parallel are the same training as one process. The tiny recipe of
# train_fsdp.sh (2 blocks, global batch 4, 3 steps) runs alone, as TP 2, as TP 2 with activation
# checkpointing, as 2 replicas x TP 2 and as FSDP 2 x TP 2 (4 ranks); with 4x4 patches (16
# tokens per clip, 4 per image) alone, as TP 2 with sequence parallel, and as FSDP 2 x TP 2 with
# sequence parallel and checkpointing. Every run logs the same losses and gradient norms and ends
# with the same weights, EMA and Adam moments as its one-process run (same_training): the
# checkpoints hold whole tensors whatever the mesh. A TP checkpoint resumes under TP 2 and under
# one process, and a one-process checkpoint under FSDP 2 x TP 2, each ending where the
# uninterrupted run ends. Sequence parallel refuses buckets whose tokens do not split over tp.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
# grad_clip 0.3 (the norms are ~0.45): the clipped update depends on the norm over every tp slice.
ARGS=(data.dir="$WORK/data" "${TINY[@]}" model.depth=2 trainer.steps=3 trainer.ema_decay=0.5 trainer.ckpt_every=2
      trainer.keep_last=0 trainer.grad_clip=0.3)
MPI=(mpirun --allow-run-as-root --oversubscribe)
train_as one 1
train_as tp2 2 parallel.tp=2 parallel.dp_shard=1
same_training "$WORK/one" "$WORK/tp2" 3
train_as tp2_ac 2 parallel.tp=2 parallel.dp_shard=1 parallel.activation_checkpointing=full
same_training "$WORK/one" "$WORK/tp2_ac" 3
train_as rep2_tp2 4 parallel.tp=2 parallel.dp_replicate=2 parallel.dp_shard=1
same_training "$WORK/one" "$WORK/rep2_tp2" 3
train_as fsdp2_tp2 4 parallel.tp=2 parallel.dp_shard=2
same_training "$WORK/one" "$WORK/fsdp2_tp2" 3

P4=(model.patch=[1,4,4])
train_as one_p4 1 "${P4[@]}"
train_as tp2_sp 2 "${P4[@]}" parallel.tp=2 parallel.dp_shard=1 parallel.sequence_parallel=true
same_training "$WORK/one_p4" "$WORK/tp2_sp" 3
train_as fsdp2_tp2_sp_ac 4 "${P4[@]}" parallel.tp=2 parallel.dp_shard=2 parallel.sequence_parallel=true \
  parallel.activation_checkpointing=full
# Weights to 2e-5: the per-sample adaLN input's gradient is summed over tp, then fsdp, in another
# order, and Adam's first steps move tiny-gradient biases by ~lr whatever the gradient's size
# (largest seen: 1.09e-5, transformer.time_embed.fc2.bias).
same_training "$WORK/one_p4" "$WORK/fsdp2_tp2_sp_ac" 3 2e-5

# Resume: TP 2's step-2 checkpoint under TP 2 and under one process; one process's under FSDP 2 x TP 2.
resume_from() {  # resume_from SOURCE_RUN NAME RANKS KEY=VALUE...
  local src=$1 name=$2
  mkdir -p "$WORK/$name/checkpoints"
  cp "$WORK/$src/checkpoints/step_00000002.h5" "$WORK/$name/checkpoints/"
  echo step_00000002.h5 > "$WORK/$name/checkpoints/latest"
  shift 2
  train_as "$name" "$@" --resume
  grep -q "resumed from .*step_00000002.h5 at step 2" "$WORK/$name.log" || die "$name did not resume: $(cat "$WORK/$name.log")"
  for prefix in model/ ema/ optim/; do
    "$REEL" ckpt compare "$WORK/one/checkpoints/step_00000003.h5" "$WORK/$name/checkpoints/step_00000003.h5" \
      --prefix $prefix --rtol 3e-5 || die "$name: $prefix differs from the uninterrupted run"
  done
}
resume_from tp2 resume_tp2 2 parallel.tp=2 parallel.dp_shard=1
resume_from tp2 resume_one 1
resume_from one resume_fsdp2_tp2 4 parallel.tp=2 parallel.dp_shard=2

# A tp that the FFN width does not split is refused before any work (exit 2), with one message.
set +e
out=$("${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/bad_ffn" parallel.tp=2 parallel.dp_shard=1 \
  model.ffn_dim=33 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || die "FFN width 33 over tp 2: exit $rc, expected 2: $out"
[[ $(grep -c "key 'parallel.tp' = 2 does not divide the FFN width 33 (model.ffn_dim)" <<<"$out") -eq 1 ]] ||
  die "message: $out"

# With 8x8 patches an 8x8 image is one token, which sequence parallel cannot split over 2 ranks.
set +e
out=$("${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/bad_sp" parallel.tp=2 parallel.dp_shard=1 \
  parallel.sequence_parallel=true 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || die "1-token images under sequence parallel: exit $rc, expected 2: $out"
[[ $(grep -c "has bucket 1x8x8 of 1 tokens, which do not split into parallel.cp x parallel.tp (with sequence_parallel) = 2" \
  <<<"$out") -eq 1 ]] || die "message: $out"

# bench step under TP 2 reports the mesh.
out=$("${MPI[@]}" -np 2 "$REEL" bench step $R "${ARGS[@]}" run.dir="$WORK/bench" parallel.tp=2 parallel.dp_shard=1 \
  --steps 2 --warmup 1 2>&1) || die "bench step: $out"
[[ $(grep -c "mesh dp_replicate 1 x dp_shard 1 x cp 1 x tp 2 (rank 0's times)" <<<"$out") -eq 1 ]] ||
  die "bench step output: $out"
echo "PASS"
