#!/usr/bin/env bash
# The watchdog bar: one rank stalls -> every rank exits non-zero within timeout + 30 s and the
# message names the stalled rank. Usage: watchdog_stall.sh MPIRUN... -- BINARY
set -uo pipefail
mpirun=()
while [[ $1 != -- ]]; do mpirun+=("$1"); shift; done
shift
bin=$1
timeout_s=3
fail() { echo "FAIL: $*"; echo "--- output:"; cat "$out"; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check() {  # name, expected words..., -- extra args
  local name=$1; shift
  local words=()
  while [[ $1 != -- ]]; do words+=("$1"); shift; done
  shift
  local start=$(date +%s)
  timeout 120 "${mpirun[@]}" -np 3 "$bin" --stall-rank 1 --timeout $timeout_s "$@" > "$out" 2>&1
  local rc=$? elapsed=$(( $(date +%s) - start ))
  [[ $rc -ne 0 ]] || fail "$name: the job exited 0"
  [[ $rc -ne 124 ]] || fail "$name: the job hung until the test's own 120 s limit"
  (( elapsed <= timeout_s + 30 )) || fail "$name: took ${elapsed}s, more than timeout ${timeout_s}s + 30s"
  grep -q "did not stop the job" "$out" && fail "$name: a rank passed the stalled collective"
  for w in "${words[@]}"; do grep -qF -- "$w" "$out" || fail "$name: the message does not say '$w'"; done
  echo "ok: $name (exit $rc after ${elapsed}s)"
}

check collective "watchdog on rank 0" "all_reduce(sum) of 16 Float" "group 'world'" "waiting: ranks 0 2" \
  "did not arrive (1)" "rank 1: busy outside any collective" -- 
check p2p "watchdog on rank 0" "recv of 16 Float from rank 1" "the peer did not post" -- --p2p
