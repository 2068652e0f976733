# `mpirun -np 2 reel bench comm` runs every operation over the size range and prints one row per
# (operation, size) with positive times and the nccl-tests bus-bandwidth factor; bad sizes exit 2.
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
echo "PASS"
