# trainer.device=cuda. Where LibTorch sees no GPU (a CPU-only LibTorch, or no device) the run is
# refused with exit 2 and a message saying why, before it writes anything. Where one is visible:
# 3 fp32 steps on the GPU log the CPU's losses (1e-3 relative: cuDNN may run the patchify
# convolution in TF32) and end at its weights (1e-3; an H200 gave 2e-5 on 2026-11-27), the
# checkpoint evaluates on the CPU, and bf16 (CUDA autocast) trains with finite losses; under
# mpirun it is refused (one process, one GPU so far).
source "$(dirname "$0")/lib/common.bash"
make_tiny_data
R=recipes/tiny/t2v.yaml
ARGS=(data.dir="$WORK/data" "${TINY[@]}" trainer.steps=3 trainer.batch_threads=1)
rc=0
out=$("$REEL" train $R "${ARGS[@]}" trainer.device=cuda run.dir="$WORK/cuda" 2>&1) || rc=$?
if [[ $rc -ne 0 ]]; then
  [[ $rc -eq 2 ]] || die "trainer.device=cuda without a GPU exited $rc, expected 2: $out"
  grep -q "trainer.device = cuda, but this reel's LibTorch (.*) sees no CUDA device" <<<"$out" ||
    die "the refusal does not say why: $out"
  [[ ! -e "$WORK/cuda" ]] || die "the refused run wrote $WORK/cuda"
  echo "PASS (no CUDA device here: the refusal is checked; the GPU comparison runs where one is visible)"
  exit 0
fi
grep -q "FLOP/s (fp32, 8192^3, cuda" <<<"$out" || die "the GPU run's MFU reference is not the GPU's: $out"
"$REEL" train $R "${ARGS[@]}" run.dir="$WORK/cpu" > "$WORK/cpu.log" 2>&1 || die "cpu: $(cat "$WORK/cpu.log")"
logged() { grep -o "\"loss\":[-0-9.e]*" "$1" | cut -d: -f2; }
paste <(logged "$WORK/cpu/metrics.jsonl") <(logged "$WORK/cuda/metrics.jsonl") |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-3 * $1) { print "step " NR ": " $1 " vs " $2; bad = 1 } }
       END { exit bad || NR != 3 }' || die "GPU losses differ from the CPU's"
"$REEL" ckpt compare "$WORK/cpu/checkpoints/step_00000003.h5" "$WORK/cuda/checkpoints/step_00000003.h5" \
  --prefix model/ --rtol 1e-3 || die "GPU weights differ from the CPU's"
"$REEL" eval --ckpt "$WORK/cuda" --out "$WORK/eval" --no-videos > "$WORK/eval.log" 2>&1 ||
  die "eval of the GPU checkpoint: $(cat "$WORK/eval.log")"
expect_exit 2 "trainer.device = cuda trains in one process on one GPU so far, and this job has 2 ranks" -- \
  mpirun --allow-run-as-root --oversubscribe -np 2 "$REEL" train $R "${ARGS[@]}" trainer.device=cuda \
  run.dir="$WORK/two" parallel.dp_replicate=2 parallel.dp_shard=1
"$REEL" train $R "${ARGS[@]}" trainer.device=cuda trainer.dtype=bf16 run.dir="$WORK/bf16" > "$WORK/bf16.log" 2>&1 ||
  die "bf16 on the GPU: $(cat "$WORK/bf16.log")"
[[ $(logged "$WORK/bf16/metrics.jsonl" | awk '$1 > 0 && $1 < 10' | wc -l) -eq 3 ]] ||
  die "bf16 GPU losses: $(logged "$WORK/bf16/metrics.jsonl")"
echo "PASS (GPU)"
