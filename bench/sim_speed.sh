#!/usr/bin/env bash
# Speed of the CUDA-on-CPU simulator (tests/simt), recorded in bench/RESULTS.md.
#
#   bench/sim_speed.sh [REPS]   builds simt_bench (Release, in build-sim/) and runs it: the raw fiber
#                               switch (and ucontext's for comparison), a barrier-free kernel over 1M
#                               threads (target < 0.1 s), the same kernel forced onto fibers by one
#                               __syncthreads, and a block reduction of 1024 blocks x 256 threads with a
#                               shared-memory and a warp-shuffle stage (target < 0.5 s); medians of REPS
#                               (default 7) after a warm-up, each result validated before it is timed.
#                               Then the wall time of the whole simulated test suite (ctest -L sim: the
#                               simulator's and the kernel tests in every thread order; target < 2 min).
# Appends one row to the "CUDA-on-CPU simulator speed" section. The log goes to bench/logs/sim_speed.log.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-7}
[ -f build-sim/build.ninja ] || cmake -S . -B build-sim -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-sim --target simt_bench >/dev/null
mkdir -p bench/logs
cmd="build-sim/tests/simt/simt_bench $reps"
$cmd | tee bench/logs/sim_speed.log

machine="$(nproc)-core $(uname -m) dev VM, no GPU ($(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1))"
# "+dirty" when what simt_bench is built from differs from the commit.
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- tests/simt tests/kernels/device_array.h \
  kernels/cuda_compat.h kernels/cuda_check.h kernels/cuda_fwd.h kernels/launch.h || echo "+dirty")
today=$(date -u +%F)
log=bench/logs/sim_speed.log
ns() { sed -n "s/^$1 *\([0-9.]*\) ns.*/\1/p" "$log"; }
med() { sed -n "s/^$1 *median *\([0-9.]*\) s.*/\1/p" "$log"; }
switch=$(ns "raw fiber switch (simulator's)")
ucontext=$(ns "ucontext swapcontext, for comparison")
fast=$(med "barrier-free kernel, 1M threads (fast path)")
fibers=$(med "same kernel with a __syncthreads (fibers)")
reduce=$(med "block reduction, 1024 x 256 (shared + warp)")
suite="not measured (build or tests failed)"
if cmake --build build-sim --target simt_tests kernel_tests_sim >/dev/null 2>&1; then
  start=$(date +%s.%N)
  if ctest --test-dir build-sim -L sim -j"$(nproc)" >bench/logs/sim_suite.log 2>&1; then
    suite=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    suite="$suite ($(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' bench/logs/sim_suite.log) tests)"
  fi
fi
verdict=$(awk -v f="$fast" -v r="$reduce" 'BEGIN { print ((f < 0.1 ? "met" : "MISSED") " / " (r < 0.5 ? "met" : "MISSED")) }')
python3 bench/append_row.py "CUDA-on-CPU simulator speed" \
  "date|machine|commit|command|switch (ns)|ucontext switch (ns)|barrier-free 1M threads (s)|same on fibers (s)|reduction 1024x256 (s)|targets < 0.1 s / < 0.5 s|sim test suite (s, ctest -L sim -j$(nproc))" \
  "$today|$machine|$commit|\`bench/sim_speed.sh $reps\`|$switch|$ucontext|$fast|$fibers|$reduce|$verdict|$suite"
echo "recorded: switch $switch ns, barrier-free $fast s, fibers $fibers s, reduction $reduce s ($verdict); test suite: $suite"
