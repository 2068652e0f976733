# Per-frame noise levels (model.frame_time, flow.frame_times: diffusion forcing) and QK-norm
# (model.qk_norm) train the same on every mesh: the tiny recipe of train_cp.sh with both switched
# on and every clip drawing its own time per frame runs alone, with context parallel (ring), as
# FSDP 2, and as TP 2 with sequence parallel; every run logs the same losses and ends with the
# same weights as the one-process run (same_training). Its checkpoint samples and evaluates frame
# after frame (--stagger); a model without frame_time refuses both flow.frame_times and --stagger
# with exit 2.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" model.depth=2 model.patch=[1,4,4] trainer.steps=3 trainer.ema_decay=0.5
      trainer.grad_clip=0.3 model.frame_time=true model.qk_norm=true flow.frame_times=1)
train_as one 1
grep -q "frame_time_proj" <("$REEL" ckpt inspect "$WORK/one") || die "the checkpoint has no frame_time_proj"
train_as cp2 2 parallel.cp=2 parallel.dp_shard=1 parallel.cp_mode=ring
same_training "$WORK/one" "$WORK/cp2" 3
train_as fsdp2 2 parallel.dp_shard=2
same_training "$WORK/one" "$WORK/fsdp2" 3
train_as tp2_sp 2 parallel.tp=2 parallel.sequence_parallel=true parallel.dp_shard=1
same_training "$WORK/one" "$WORK/tp2_sp" 3
# Per-frame times change the training: the same run with one time per clip logs other losses.
train_as clip_times 1 flow.frame_times=0
cmp -s <(grep -o '"loss":[^,]*' "$WORK/one/metrics.jsonl") <(grep -o '"loss":[^,]*' "$WORK/clip_times/metrics.jsonl") &&
  die "flow.frame_times=1 trained exactly like flow.frame_times=0"
"$REEL" eval --ckpt "$WORK/one" --out "$WORK/eval" --no-videos --stagger 0.5 > "$WORK/eval.log" 2>&1 ||
  die "eval --stagger: $(cat "$WORK/eval.log")"
grep -q '"stagger": 0.5' "$WORK/eval/eval.json" || die "eval.json does not record the stagger"
"$REEL" sample --ckpt "$WORK/one" --prompt "a red circle slides to the left" --out "$WORK/samples" --steps 4 \
  --stagger 1 > "$WORK/sample.log" 2>&1 || die "sample --stagger: $(cat "$WORK/sample.log")"
[[ -s "$WORK/samples/000.mp4" ]] || die "sample --stagger wrote no video"
expect_exit 2 "key 'flow.frame_times' = 0.5 gives the frames of a clip different noise levels" -- \
  "$REEL" recipe $R "${TINY[@]}" data.dir="$WORK/data" flow.frame_times=0.5
train_as plain 1 model.frame_time=false model.qk_norm=false flow.frame_times=0
expect_exit 2 "was trained without model.frame_time" -- \
  "$REEL" sample --ckpt "$WORK/plain" --prompt "a red ball" --out "$WORK/plain_samples" --stagger 1
echo "PASS"
