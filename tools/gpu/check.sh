#!/usr/bin/env bash
# One pass of Reel on a lent GPU machine (a PyTorch install with CUDA LibTorch, nvcc, no
# internet): unpacks the Debian libraries carried in .gpu/debs (tools/gpu/unpack_deps.sh), builds
# reel and the GPU tests against PyTorch's LibTorch and NCCL, runs the CUDA kernel and NCCL tests,
# the trainer.device=cuda end-to-end test, `bench comm --backend nccl`, `bench step` on the GPU in
# fp32 and bf16, and a long demo training on the GPU scored on the CPU. Each phase is cut to the
# time left of BUDGET seconds. Logs go to /tmp/reel-gpu-logs; $OUT (default /tmp/reel-gpu) gets
# few files: summary.txt, logs.tgz and the long run's eval.json and metrics.jsonl.
#   tools/gpu/check.sh [BUDGET_S]
set -uo pipefail
cd "$(dirname "$0")/../.."
BUDGET=${1:-560}
OUT=${OUT:-/tmp/reel-gpu}
LOGS=/tmp/reel-gpu-logs
mkdir -p "$OUT" "$LOGS"
START=$(date +%s)
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
# phase NAME CAP_S CMD...: runs CMD with at most min(CAP_S, time left - 5) seconds, its output in
# $LOGS/NAME.log; notes the exit code and seconds.
phase() {
  local name=$1 cap=$2 t0 rc
  shift 2
  local limit=$(($(left) - 5))
  [[ $limit -gt $cap ]] && limit=$cap
  if [[ $limit -lt 5 ]]; then note "$name: skipped (no time left)"; return 1; fi
  t0=$(date +%s)
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  note "$name: rc=$rc $(($(date +%s) - t0))s (limit ${limit}s)"
  return $rc
}

note "host: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1); $(nproc) cores"
note "os: $(. /etc/os-release; echo "$PRETTY_NAME"), glibc $(ldd --version | head -1 | awk '{print $NF}')"
export PATH=/usr/local/cuda/bin:$PATH
note "torch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1)"

PREFIX=/tmp/reel-deps
# PyTorch's paths first, before env.sh puts the carried libraries on LD_LIBRARY_PATH.
TORCH_PREFIX=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
NCCL_ROOT=$(python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null)
NCCL_ARGS=()
if [[ -n "$NCCL_ROOT" && -f "$NCCL_ROOT/include/nccl.h" ]]; then  # the NCCL PyTorch itself loads
  NCCL_ARGS=(-DREEL_NCCL_INCLUDE="$NCCL_ROOT/include" -DREEL_NCCL_LIB="$(ls "$NCCL_ROOT"/lib/libnccl.so* | head -1)")
fi
note "nccl: ${NCCL_ARGS[*]:-from /usr/local/cuda}"
phase unpack 90 bash tools/gpu/unpack_deps.sh "$PREFIX"
tail -3 "$LOGS/unpack.log" >> "$SUMMARY"
# shellcheck disable=SC1091
source "$PREFIX/env.sh"
mapfile -t DEP_ARGS < "$PREFIX/cmake_args.txt"
phase configure 90 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DREEL_CUDA=ON \
  "${DEP_ARGS[@]}" -DTorch_DIR="$TORCH_PREFIX/Torch" "${NCCL_ARGS[@]}"
grep -E "LibTorch|BLAS|MPI|HDF5|FFmpeg|CUDA|NCCL|C\+\+" "$LOGS/configure.log" | head -12 >> "$SUMMARY"
MODE=${2:-full}  # full | suites: every test binary built and CTest's unit and multi-rank suites run
TARGETS=(reel test_kernels test_parallel)
[[ $MODE == suites ]] && TARGETS=(test_parallel all)
for target in "${TARGETS[@]}"; do
  phase "build_$target" 330 cmake --build build-gpu --target "$target" -j "$(nproc)" -- -k 0
  grep -E "error|Error" "$LOGS/build_$target.log" | head -20 >> "$SUMMARY"
done
ldd build-gpu/reel 2>&1 | grep "not found" >> "$SUMMARY"
B=build-gpu
MPI=(mpirun --allow-run-as-root --oversubscribe)

phase kernels 60 "$B/tests/test_kernels" --gtest_filter='*Cuda*:Modulate*'
tail -3 "$LOGS/kernels.log" >> "$SUMMARY"
phase nccl 90 "${MPI[@]}" -np 1 "$B/tests/test_parallel" --gtest_filter='Nccl*'
tail -3 "$LOGS/nccl.log" >> "$SUMMARY"
if [[ $MODE == suites ]]; then  # LibTorch 2.x under every unit and multi-rank test (CPU tensors)
  phase ctest 600 ctest --test-dir build-gpu -LE e2e -j 4 --timeout 200
  tail -15 "$LOGS/ctest.log" >> "$SUMMARY"
  note "total $(($(date +%s) - START))s"
  cp "$SUMMARY" "$LOGS/"
  tar czf "$OUT/logs.tgz" -C "$LOGS" . 2>/dev/null
  cat "$SUMMARY"
  exit 0
fi
phase e2e_train_cuda 150 bash tests/e2e/train_cuda.sh "$B/reel" /tmp/e2e_train_cuda
tail -2 "$LOGS/e2e_train_cuda.log" >> "$SUMMARY"
phase bench_comm_nccl 60 "$B/reel" bench comm --backend nccl --max-bytes 268435456
tail -25 "$LOGS/bench_comm_nccl.log" >> "$SUMMARY"

# bench step: the demo recipe, and a wider model on larger clips that fills the GPU better.
phase synth 60 "$B/reel" data synth --out /tmp/synth --seed 0
phase synth_big 60 "$B/reel" data synth --out /tmp/synth_big --buckets 8x64x64 --train-per-bucket 64 \
  --val-per-bucket 8 --seed 0
DEMO=(recipes/tiny/t2v.yaml data.dir=/tmp/synth trainer.device=cuda)
for dtype in fp32 bf16; do
  phase "bench_demo_$dtype" 60 "$B/reel" bench step "${DEMO[@]}" trainer.dtype=$dtype run.dir=/tmp/bench_demo_$dtype \
    --steps 30 --warmup 5
  grep -E "bench step|achieved|matmul" "$LOGS/bench_demo_$dtype.log" >> "$SUMMARY"
done
BIG=(recipes/tiny/t2v.yaml data.dir=/tmp/synth_big trainer.device=cuda model.patch=[1,2,2] model.dim=1024
     model.depth=8 model.heads=8 model.max_frames=8 model.max_height=64 model.max_width=64 data.batch_size=4
     sample.bucket=8x64x64)
for dtype in bf16 fp32; do
  phase "bench_big_$dtype" 90 "$B/reel" bench step "${BIG[@]}" trainer.dtype=$dtype run.dir=/tmp/bench_big_$dtype \
    --steps 10 --warmup 3
  grep -E "bench step|achieved|matmul|parameters" "$LOGS/bench_big_$dtype.log" >> "$SUMMARY"
done

# The demo recipe trained 10x longer on the GPU (fp32), then scored on the CPU (reel eval).
phase demo_long 200 "$B/reel" train "${DEMO[@]}" run.dir=/tmp/demo_long trainer.steps=10000 trainer.warmup_steps=500 \
  trainer.ckpt_every=2000 trainer.val_every=2000 trainer.log_every=500
grep -E "step +[0-9]+|val" "$LOGS/demo_long.log" | tail -8 >> "$SUMMARY"
phase demo_long_eval 60 "$B/reel" eval --ckpt /tmp/demo_long --out /tmp/demo_long/eval --no-videos
tail -6 "$LOGS/demo_long_eval.log" >> "$SUMMARY"
cp /tmp/demo_long/eval/eval.json "$OUT/demo_long_eval.json" 2>/dev/null
cp /tmp/demo_long/metrics.jsonl "$OUT/demo_long_metrics.jsonl" 2>/dev/null
note "total $(($(date +%s) - START))s"
cp "$SUMMARY" "$LOGS/"
tar czf "$OUT/logs.tgz" -C "$LOGS" . 2>/dev/null
cat "$SUMMARY"
