# `mpirun -np 2 reel bench comm` runs every operation over the size range and prints one row per
# (operation, size) with positive times and the nccl-tests bus-bandwidth factor; bad sizes and an
# unknown backend exit 2; --backend nccl runs on a GPU or says why it cannot.
source "$(dirname "$0")/lib/common.bash"
out=$(mpirun --allow-run-as-root --oversubscribe -np 2 "$REEL" bench comm --min-bytes 1024 --max-bytes 65536) ||
  die "bench comm failed: $out"
rows=$(grep -cE '^(all_reduce|all_gather|reduce_scatter|all_to_all) ' <<<"$out")
[[ $rows -eq 28 ]] || die "expected 4 operations x 7 sizes = 28 rows, got $rows: $out"
# all_reduce's bus bandwidth is algbw x 2(n-1)/n = algbw on 2 ranks; the others' is algbw / 2
# (3 printed decimals: small sizes on a loaded machine print 0.000).
awk '$1 == "all_reduce" && ($4 <= 0 || ($6 - $5) > 0.002 + 0.01 * $5) { bad = 1 }
     $1 == "all_gather" && ($4 <= 0 || ($6 - $5 / 2) > 0.002 + 0.01 * $5) { bad = 1 }
     END { exit bad }' <<<"$out" || die "bandwidth columns inconsistent: $out"
expect_exit 2 "min \\(8\\) <= max \\(4\\)" -- "$REEL" bench comm --min-bytes 8 --max-bytes 4
expect_exit 2 "--backend must be mpi or nccl, got 'gloo'" -- "$REEL" bench comm --backend gloo
# NCCL: where this reel's LibTorch sees no GPU the refusal says so; where one is visible, one rank
# per GPU times the same rows on CUDA tensors.
rc=0
nccl=$("$REEL" bench comm --backend nccl --min-bytes 1024 --max-bytes 4096 2>&1) || rc=$?
if [[ $rc -eq 0 ]]; then
  grep -q "bench comm: NCCL, 1 ranks, fp32 CUDA tensors (cuda:0)" <<<"$nccl" || die "NCCL header: $nccl"
  [[ $(grep -cE '^(all_reduce|all_gather|reduce_scatter|all_to_all) ' <<<"$nccl") -eq 12 ]] || die "NCCL rows: $nccl"
else
  [[ $rc -eq 2 ]] && grep -qE "sees no CUDA device|built without NCCL" <<<"$nccl" ||
    die "bench comm --backend nccl without a GPU exited $rc: $nccl"
fi
echo "PASS"
