# Context parallel is the same training as one process. The tiny recipe of train_fsdp.sh with 4x4
# patches (16 tokens per clip, 4 per image; 2 blocks, global batch 4, 3 steps) runs alone and with
# every sample's tokens split over 2 ranks in each cp_mode (allgather_kv, ulysses, ring), then on
# 4 ranks as FSDP 2 x CP 2 with and without activation checkpointing, as 2 replicas x CP 2 (HSDP
# over the cp ranks), as CP 2 x TP 2, and as CP 2 x TP 2 with sequence parallel and checkpointing. Every run logs the same losses and gradient
# norms and ends with the same weights, EMA and Adam moments as the one-process run
# (same_training). A CP checkpoint resumes on one process. Buckets whose tokens do not split over
# cp are refused before any step.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" model.depth=2 model.patch=[1,4,4] trainer.steps=3 trainer.ema_decay=0.5
      trainer.ckpt_every=2 trainer.keep_last=0 trainer.grad_clip=0.3)
MPI=(mpirun --allow-run-as-root --oversubscribe)
train_as one 1
for mode in allgather_kv ulysses ring; do
  train_as "cp2_$mode" 2 parallel.cp=2 parallel.dp_shard=1 parallel.cp_mode=$mode
  same_training "$WORK/one" "$WORK/cp2_$mode" 3
done
# On 4 ranks the weights agree to 2e-5: the adaLN input's gradient (tiny while the zero-initialised
# adaLN grows) is summed in another order, and Adam's first steps move the biases it reaches by ~lr
# whatever its size (largest seen: 1.16e-5, transformer.time_embed.fc2.bias and text_pool.bias).
train_as fsdp2_cp2 4 parallel.cp=2 parallel.dp_shard=2
same_training "$WORK/one" "$WORK/fsdp2_cp2" 3 2e-5
train_as fsdp2_cp2_ac 4 parallel.cp=2 parallel.dp_shard=2 parallel.activation_checkpointing=full
same_training "$WORK/one" "$WORK/fsdp2_cp2_ac" 3 2e-5
train_as rep2_cp2 4 parallel.cp=2 parallel.dp_replicate=2 parallel.dp_shard=1 parallel.cp_mode=ring
same_training "$WORK/one" "$WORK/rep2_cp2" 3 2e-5
train_as cp2_tp2 4 parallel.cp=2 parallel.tp=2 parallel.dp_shard=1
same_training "$WORK/one" "$WORK/cp2_tp2" 3 2e-5
train_as cp2_tp2_sp 4 parallel.cp=2 parallel.tp=2 parallel.dp_shard=1 parallel.sequence_parallel=true \
  parallel.activation_checkpointing=full
same_training "$WORK/one" "$WORK/cp2_tp2_sp" 3 2e-5

# CP 2's step-2 checkpoint, resumed by one process, ends where the uninterrupted run ends.
mkdir -p "$WORK/resume_one/checkpoints"
cp "$WORK/cp2_ring/checkpoints/step_00000002.h5" "$WORK/resume_one/checkpoints/"
echo step_00000002.h5 > "$WORK/resume_one/checkpoints/latest"
train_as resume_one 1 --resume
grep -q "resumed from .*step_00000002.h5 at step 2" "$WORK/resume_one.log" || die "no resume: $(cat "$WORK/resume_one.log")"
for prefix in model/ ema/ optim/; do
  "$REEL" ckpt compare "$WORK/one/checkpoints/step_00000003.h5" "$WORK/resume_one/checkpoints/step_00000003.h5" \
    --prefix $prefix --rtol 3e-5 || die "resume_one: $prefix differs from the uninterrupted run"
done

# With 8x8 patches an 8x8 image is one token, which 2 cp ranks cannot split.
set +e
out=$("${MPI[@]}" -np 2 "$REEL" train $R "${ARGS[@]}" run.dir="$WORK/bad" parallel.cp=2 parallel.dp_shard=1 \
  model.patch=[1,8,8] 2>&1)
rc=$?
set -e
[[ $rc -eq 2 ]] || die "1-token images over cp 2: exit $rc, expected 2: $out"
[[ $(grep -c "has bucket 1x8x8 of 1 tokens, which do not split into parallel.cp x parallel.tp" <<<"$out") -eq 1 ]] ||
  die "message: $out"

# bench step under CP 2 reports the mesh.
out=$("${MPI[@]}" -np 2 "$REEL" bench step $R "${ARGS[@]}" run.dir="$WORK/bench" parallel.cp=2 parallel.dp_shard=1 \
  --steps 2 --warmup 1 2>&1) || die "bench step: $out"
[[ $(grep -c "mesh dp_replicate 1 x dp_shard 1 x cp 2 x tp 1 (rank 0's times)" <<<"$out") -eq 1 ]] ||
  die "bench step output: $out"
echo "PASS"
