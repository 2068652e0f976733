# A checkpoint written on FSDP 4 resumes on one process, on FSDP 2 x TP 2 and on FSDP 2 x CP 2:
# the next 3 steps' losses match the FSDP 4 run continuing (1e-5 relative; equal losses on the
# same global batch mean the same samples were drawn), and so do the final weights. 4x4 patches:
# every bucket's tokens split over cp 2.
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" model.depth=2 model.patch=[1,4,4] trainer.steps=6 trainer.ckpt_every=3 trainer.keep_last=0
      trainer.ema_decay=0.9)
train_as fsdp4 4 parallel.dp_shard=4
# resumed_on NAME RANKS ARGS...: a copy of the FSDP 4 run's step-3 checkpoint, resumed on this mesh.
resumed_on() {
  local name=$1 np=$2
  shift 2
  mkdir -p "$WORK/$name/checkpoints"
  cp "$WORK/fsdp4/checkpoints/step_00000003.h5" "$WORK/$name/checkpoints/"
  echo step_00000003.h5 > "$WORK/$name/checkpoints/latest"
  head -3 "$WORK/fsdp4/metrics.jsonl" > "$WORK/$name/metrics.jsonl"
  train_as "$name" "$np" "$@" --resume
  grep -q "resumed from .*step_00000003.h5 at step 3" "$WORK/$name.log" || die "$name did not resume from step 3"
  python3 - "$WORK/fsdp4/metrics.jsonl" "$WORK/$name/metrics.jsonl" <<'PY' || die "$name: losses differ from FSDP 4"
import json, sys
a, b = ({r["step"]: r["loss"] for r in map(json.loads, open(p))} for p in sys.argv[1:])
assert sorted(b) == [1, 2, 3, 4, 5, 6], b
for s in (4, 5, 6):
    assert abs(a[s] - b[s]) <= 1e-5 * abs(a[s]), f"step {s}: {a[s]} vs {b[s]}"
PY
  for prefix in model/ ema/; do
    "$REEL" ckpt compare "$WORK/fsdp4/checkpoints/step_00000006.h5" "$WORK/$name/checkpoints/step_00000006.h5" \
      --prefix $prefix --rtol 2e-5 > /dev/null || die "$name: $prefix differs from FSDP 4 at step 6"
  done
}
resumed_on one 1
resumed_on fsdp2_tp2 4 parallel.dp_shard=2 parallel.tp=2
resumed_on fsdp2_cp2 4 parallel.dp_shard=2 parallel.cp=2
echo "PASS"
