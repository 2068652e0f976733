#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit tests, multi-rank
# tests under mpirun, end-to-end tests) through CTest. Extra arguments go to ctest
# (e.g. tools/test.sh -R Flow).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
tools/setup.sh
tools/build.sh
built=$(date +%s)
echo "test: build took $((built - start))s"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@" || status=$?
echo "test: whole run took $(( $(date +%s) - start ))s"
exit $status
