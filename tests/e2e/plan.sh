# `reel plan`: the published 30B stage-3 recipe plans to a ~30B transformer, 73,728 tokens per
# 256-frame 768 px sample and a per-GPU memory that fits 80 GB on 6,144 H100s; every full-size
# stage plans; and on tiny recipes the planner's FLOPs and memory are within 10% of what a
# training step measures (`reel bench step --measure`: the profiler's matrix-product FLOPs, and
# the state plus the peak tensor memory the step allocates), on sizes other than those its
# activation coefficients were fitted on. (The FLOPs compared are those that run: with activation
# checkpointing, the model's plus the blocks' recomputed forward.)
source "$(dirname "$0")/lib/common.bash"
export OMP_NUM_THREADS=1

"$REEL" plan recipes/video/03_t2iv_768.yaml --gpus 6144 --json > "$WORK/plan03.json" || die "plan 03 failed"
python3 - "$WORK/plan03.json" <<'PY' || die "stage-3 plan: $(cat "$WORK/plan03.json")"
import json, sys
p = json.load(open(sys.argv[1]))
for k in ["params_total", "tokens_per_sample", "flops_per_step", "memory_per_gpu_bytes", "predicted_step_s", "predicted_mfu"]:
    assert k in p, k
assert abs(p["params_transformer"] / 30e9 - 1) <= 0.05, p["params_transformer"]
assert p["tokens_per_sample"] == 73728, p["tokens_per_sample"]
assert p["memory_per_gpu_bytes"] <= 80e9 and p["fits"], p["memory_per_gpu_bytes"]
assert p["mesh"] == {"dp_replicate": 1, "dp_shard": 768, "cp": 2, "tp": 4}, p["mesh"]
assert p["memory"]["activations_no_checkpointing"] > 80e9  # checkpointing is what makes it fit
mem = p["memory"]
assert abs(mem["parameters"] + mem["gradients"] + mem["optimizer"] + mem["ema"] - mem["state"]) < 1
assert mem["optimizer"] == 2 * mem["parameters"] and mem["ema"] == 0  # AdamW's two moments; no EMA in stage 3
assert 0 < p["predicted_mfu"] < 1 and p["predicted_step_s"] > 0
PY
for s in 01_t2i_256 02_t2iv_256 04_finetune; do
  "$REEL" plan "recipes/video/$s.yaml" --gpus 6144 --gpu h200 > "$WORK/$s.txt" || die "plan $s: $(cat "$WORK/$s.txt")"
  grep -q "transformer: 29.34B" "$WORK/$s.txt" || die "$s: $(cat "$WORK/$s.txt")"
done
expect_exit 2 "--gpus 100 is not a multiple of dp_replicate x cp x tp = 8" -- "$REEL" plan recipes/video/03_t2iv_768.yaml --gpus 100
expect_exit 2 "unknown GPU 'a100'" -- "$REEL" plan recipes/video/03_t2iv_768.yaml --gpu a100
# A plan that does not fit is printed with a warning (exit 0: a plan is information, not an error).
"$REEL" plan recipes/video/03_t2iv_768.yaml --gpus 6144 parallel.activation_checkpointing=none > "$WORK/nofit.txt" ||
  die "plan without checkpointing failed"
grep -q "warning: does not fit: .* per GPU > 80.00 GB on h100; parallel.activation_checkpointing: full would need" \
  "$WORK/nofit.txt" || die "no warning: $(cat "$WORK/nofit.txt")"

# Tiny: plan against a measured step (one bucket, so every batch has the planned shape).
"$REEL" data synth --out "$WORK/data" --buckets 8x16x16 --train-per-bucket 96 --val-per-bucket 8 --seed 2 >/dev/null
check() {  # name, overrides...
  local name="$1"; shift
  "$REEL" bench step recipes/tiny/t2v.yaml data.dir="$WORK/data" trainer.batch_threads=1 trainer.threads=1 \
    data.workers=0 run.dir="$WORK/$name" "$@" --steps 1 --warmup 1 --measure > "$WORK/$name.log" 2>&1 ||
    die "bench $name: $(cat "$WORK/$name.log")"
  "$REEL" plan recipes/tiny/t2v.yaml data.dir="$WORK/data" plan.clip=8x16x16 "$@" --json > "$WORK/$name.plan.json" ||
    die "plan $name"
  python3 - "$WORK/$name/bench/measure.json" "$WORK/$name.plan.json" "$name" <<'PY' || die "$name: plan and measurement disagree"
import json, sys
m, p, name = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
flops, memory = p["hardware_flops_per_step"] / m["matmul_flops"], p["memory_per_gpu_bytes"] / m["peak_bytes"]
print(f"{name}: FLOPs plan/measured {flops:.3f}, memory plan/measured {memory:.3f} "
      f"({p['memory_per_gpu_bytes'] / 1e6:.1f} / {m['peak_bytes'] / 1e6:.1f} MB)")
assert abs(flops - 1) <= 0.10 and abs(memory - 1) <= 0.10
PY
}
check small model.dim=128 model.heads=2 model.depth=3 data.batch_size=24 "model.patch=[1,4,4]" \
  model.text_encoders.0.depth=1 model.text_encoders.0.dim=96
check ckpt model.dim=192 model.heads=3 model.depth=2 data.batch_size=16 parallel.activation_checkpointing=full \
  trainer.ema_decay=0
echo "plan: OK"
