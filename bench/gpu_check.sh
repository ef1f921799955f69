#!/usr/bin/env bash
# The GPU check: one command for a lent GPU machine (CUDA 13, CMake, ninja, compute-sanitizer, ncu,
# no network). It
#   1. records the environment (GPU, driver, toolkit);
#   2. uses the binaries in .gpu-bundle/ (made by bench/gpu_bundle.sh on a machine with the build
#      dependencies) or, when there is none, configures and builds Release for the present GPU, and
#      gives them the libraries this machine keeps elsewhere (cuBLAS; bench/gpu_libs.sh);
#   3. runs every test suite on the real GPU and FAILS if any GPU test was skipped (the CPU-bound
#      suites as gtest shards, one per core up to 8);
#   4. trains the full seed recipe (Adam, batch 128, 15 epochs, validation 0.1) on real MNIST from
#      $MNIST_DIR (default .mnist) and compares test accuracy with the CPU anchor in bench/RESULTS.md;
#   5. checks the profiling tools: `convnet train --timing 20` prints its per-kernel table, and
#      scripts/profile.sh runs ncu on a 3-step --profile-steps window and makes the kernel table
#      (this is where ncu's real CSV meets scripts/ncu_table.py). ncu runs with --clock-control none
#      (NCU_FLAGS, when set, replaces that): a lent machine's clocks are not ours to lock to base;
#   6. runs the side-by-side benchmark (bench/side_by_side.sh: this trainer with graphs on and off,
#      PyTorch eager and torch.compile, Keras 3 on JAX when keras is carried in .whl/) and appends
#      its table to bench/RESULTS.md; a row it could not measure says so there and does not fail
#      the check (the script failing does). The table is also printed, before the summary, so it
#      reaches the end of the output; on the device tool, whose RESULTS.md stays on the device,
#      append the fetched results here: bench/side_by_side.py table side_by_side_results.jsonl --append;
#   7. runs compute-sanitizer (memcheck, racecheck, synccheck, initcheck) over the kernel tests;
#   8. prints a short summary table last.
# Logs go to bench/logs/gpu_check/ (emptied first). When $OUT is set (the device tool, which brings
# back at most 8 files from it), $OUT gets a few files, refreshed after every step so that a run
# killed at the tool's limit still brings back what it had found: summary.txt, gpu_check_logs.tar.gz
# (every log), and when made, timing.log, ncu_kernels.md (the ncu table), side_by_side.md and
# side_by_side_results.jsonl (for bench/side_by_side.py table FILE --append here).
# Budget: every step ends inside GPU_CHECK_DEADLINE_S (default 570 s, under the device tool's 10
# minutes a command), less 30 s kept for the summary. The order is what issue #6 needs first: the
# tests, the recipe, the profiles and the side-by-side numbers, then compute-sanitizer. Steps 4-6
# leave GPU_CHECK_SANITIZER_S (default 120) of the deadline to step 7, which also gets whatever they
# did not use. Step 6 gets what steps 4-5 left, at most SIDE_BY_SIDE_BUDGET_S (default 240); under
# 60 s it is skipped, saying so; GPU_CHECK_SIDE_BY_SIDE=0 skips it. A hang fails its own step, not
# the device's whole window: a test shard gets 300 s, the recipe and --timing runs 180 s each,
# profile.sh 150 s, each sanitizer tool 100 s (one that runs out skips the rest), each less when the
# deadline is nearer; a step with under 10 s left is not run, and says so; a library the binaries
# cannot find stops the check at once.
# Exit status: 0 only when every step passed.
# nvcc, compute-sanitizer and ncu not on PATH are looked for in the CUDA and Nsight folders
# (GPU_CHECK_TOOL_DIRS); environment.txt says which ran.
# GPU_CHECK_DRY_RUN=1 exercises the script on a machine without a GPU: GPU-only steps are reported
# as "skipped (dry run)" instead of failing.
set -uo pipefail
deadline=${GPU_CHECK_DEADLINE_S:-570}
keep=0  # seconds promised to later steps (see left)
sanitizer_share=${GPU_CHECK_SANITIZER_S:-120}
for knob in GPU_CHECK_DEADLINE_S=$deadline GPU_CHECK_SANITIZER_S=$sanitizer_share; do
  [[ ${knob#*=} =~ ^[0-9]+$ ]] || { echo "gpu_check.sh: $knob: expected a whole number of seconds" >&2; exit 2; }
done
fetch=${OUT:-}
[ -n "$fetch" ] && { fetch=$(mkdir -p "$fetch" && cd "$fetch" && pwd) || { echo "gpu_check.sh: cannot write to OUT=$OUT" >&2; exit 1; }; }
cd "$(dirname "$0")/.."
out=bench/logs/gpu_check
rm -rf "$out" && mkdir -p "$out" || { echo "gpu_check.sh: cannot empty $out" >&2; exit 1; }
dry=${GPU_CHECK_DRY_RUN:-0}
check_start=$(date +%s)
export MNIST_DIR=${MNIST_DIR:-$PWD/.mnist}
declare -a rows
failed=0

# shellcheck source=bench/out_files.sh
. bench/out_files.sh
# publish: when $OUT is set, the files it should bring back (see the top), as they are now.
publish() {
  [ -n "$fetch" ] || return 0
  local file
  for file in summary.txt:summary.txt timing.log:timing.log profile/kernels.md:ncu_kernels.md \
      side_by_side/table.md:side_by_side.md side_by_side/results.jsonl:side_by_side_results.jsonl; do
    place "$out/${file%%:*}" "$fetch/${file#*:}"
  done
  place_tar "$fetch/gpu_check_logs.tar.gz" -C "$out" .
}
# record NAME STATUS DETAIL SECONDS: a row of the summary, also appended to summary.txt (and published)
# at once, so that a run killed at the device tool's limit still brings back what it had found.
record() {
  rows+=("$(printf '%-22s %-8s %7ss  %s' "$1" "$2" "$4" "$3")")
  printf '%s\n' "${rows[-1]}" >> "$out/summary.txt"
  [ "$2" = FAIL ] && failed=1
  echo "== $1: $2 ($3)"
  publish
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }
has_gpu() { nvidia-smi -L >/dev/null 2>&1; }
# left: the seconds before the deadline, less 30 kept for the summary and the $keep seconds promised
# to later steps (the steps between the tests and compute-sanitizer keep its share for it).
left() { echo $(( deadline - ($(date +%s) - check_start) - 30 - keep )); }
# limit SECONDS: a step's timeout, SECONDS or what is left if less; 0 when under 10 s are left, and
# the step is then not run.
limit() {
  local left
  left=$(left)
  if [ $left -lt 10 ]; then echo 0; elif [ $left -lt "$1" ]; then echo $left; else echo "$1"; fi
}
# ran_past RC STARTED LIMIT: RC is timeout's (124, or 137 after --kill-after) and the limit was used up;
# a process killed for memory also exits 137.
ran_past() {
  { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; } && [ "$(elapsed "$2")" -ge $(( $3 - 1 )) ]
}
# cpu_anchor: the test accuracy of the CPU recipe run (`build/convnet train --seed 1`) in the "Accuracy
# anchor" table of bench/RESULTS.md, its columns found by their headers; empty when there is none.
cpu_anchor() {
  awk -F'|' '
    function cell(i) { v = $i; gsub(/^ +| +$/, "", v); return v }
    /^## / { in_section = ($0 ~ /^## Accuracy anchor/); cmd = acc = 0; next }
    !in_section || !/^\|/ { next }
    !cmd { for (i = 2; i < NF; i++) { if (cell(i) == "command") cmd = i; if (cell(i) == "test accuracy") acc = i }; next }
    acc && cell(cmd) == "`build/convnet train --seed 1`" && cell(acc) ~ /^[0-9.]+$/ { print cell(acc); exit }
  ' bench/RESULTS.md
}
past_deadline() {
  record "$1" FAIL "not run: the ${deadline} s GPU_CHECK_DEADLINE_S is spent$([ "$keep" -gt 0 ] && echo " (${keep} s of it kept for compute-sanitizer)")" 0
}
# bounded STEP SECONDS LOG CMD...: CMD's exit status, CMD run under limit SECONDS (set in `lim`) with
# its output in LOG. When the deadline left no time, or CMD ran past its limit, the step's row is
# recorded here and `settled` is set to 1 (0 otherwise), so the caller records nothing more.
bounded() {
  local step=$1 log=$3 t0 rc
  lim=$(limit "$2")
  shift 3
  t0=$(now)
  settled=1
  if [ "$lim" -eq 0 ]; then
    past_deadline "$step"
    return 0
  fi
  timeout --kill-after=5 "$lim" "$@" > "$log" 2>&1
  rc=$?
  if ran_past $rc "$t0" "$lim"; then
    record "$step" FAIL "ran past $lim s (see $(basename "$log"))" "$(elapsed "$t0")"
    return $rc
  fi
  settled=0
  return $rc
}
echo "GPU check, rows as they come (the full summary replaces them at the end)" > "$out/summary.txt"

# The CUDA tools are not always on PATH (a toolkit in /usr/local/cuda without its bin/ there, Nsight
# Compute in its own folder under /opt/nvidia): the folder of each one missing joins PATH, the first
# of GPU_CHECK_TOOL_DIRS (folders and globs) that holds it, in reverse version order (newest first).
tool_dirs=${GPU_CHECK_TOOL_DIRS:-"/usr/local/cuda/bin /usr/local/cuda/compute-sanitizer /opt/nvidia/nsight-compute/* /usr/local/cuda/nsight-compute-* /opt/nvidia/compute-sanitizer"}
for tool in nvcc compute-sanitizer ncu; do
  command -v "$tool" >/dev/null && continue
  # shellcheck disable=SC2086  # a list of folders and globs
  for dir in $(printf '%s\n' $tool_dirs | sort -rV); do
    [ -x "$dir/$tool" ] && { PATH="$PATH:$dir"; break; }
  done
done

# ---- 1. environment -------------------------------------------------------------------------------
{
  date -u
  # Each under a timeout: a tool that hangs on a sandboxed GPU must not stall the whole check here.
  timeout 30 nvidia-smi || echo "nvidia-smi: not available"
  timeout 20 nvcc --version 2>&1 | tail -1 || true
  timeout 20 cmake --version | head -1 || true
  timeout 20 compute-sanitizer --version 2>&1 | head -2 || true
  timeout 20 ncu --version 2>&1 | tail -1 || true
  git rev-parse --short HEAD 2>/dev/null || true
  # The image, for bench/rehearse_device.sh's copy of it: the system, its C library, its Python.
  grep -m1 '^PRETTY_NAME=' /etc/os-release 2>/dev/null || true
  ldd --version 2>&1 | head -1 || true
  python3 --version 2>&1 || true
  for tool in nvcc compute-sanitizer ncu; do echo "$tool: $(command -v "$tool" || echo "not found (PATH and $tool_dirs)")"; done
} > "$out/environment.txt" 2>&1
gpu_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)
gpu_name=${gpu_name:-none}
if ! has_gpu && [ "$dry" != 1 ]; then
  record environment FAIL "no GPU visible (nvidia-smi -L failed); GPU_CHECK_DRY_RUN=1 to exercise anyway" 0
fi

# ---- 2. binaries ----------------------------------------------------------------------------------
t=$(now)
# The bundle travels gzipped (the carry limit is 64 MiB; OpenBLAS alone is 36 MB unpacked). It is
# unpacked into build-bundle/, which is git-ignored and never carried, so .gpu-bundle stays small.
bundled=0
if [ -f .gpu-bundle/bundle.tar.gz ]; then
  rm -rf build-bundle && mkdir -p build-bundle &&
    tar -C build-bundle -xzf .gpu-bundle/bundle.tar.gz && [ -x build-bundle/convnet ] &&
    { cp .gpu-bundle/COMMIT build-bundle/ 2>/dev/null; bundled=1; } ||
    record binaries FAIL "cannot unpack .gpu-bundle/bundle.tar.gz into build-bundle/" 0
fi
if [ $bundled = 1 ]; then
  bin=build-bundle  # its binaries find lib/ through their DT_RPATH $ORIGIN/lib: no LD_LIBRARY_PATH
  record binaries ok "prebuilt by bench/gpu_bundle.sh at commit $(cat .gpu-bundle/COMMIT 2>/dev/null)" "$(elapsed "$t")"
else
  arch=native
  has_gpu || arch=90
  if cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVNET_CUDA=ON \
       -DCMAKE_CUDA_ARCHITECTURES=$arch > "$out/build.log" 2>&1 &&
     cmake --build build-gpu >> "$out/build.log" 2>&1; then
    bin=.gpu-check-bin
    rm -rf "$bin" && mkdir -p "$bin"
    for b in convnet convnet_tests simt_tests kernel_tests_sim kernel_tests_gpu; do
      cp "$(find build-gpu -name "$b" -type f -perm -u+x | head -1)" "$bin/" 2>/dev/null
    done
    record binaries ok "built here for CUDA architecture $arch" "$(elapsed "$t")"
  else
    record binaries FAIL "build failed (see build.log); without the build dependencies run bench/gpu_bundle.sh elsewhere and carry .gpu-bundle" "$(elapsed "$t")"
    exit 1
  fi
fi
# The tests look for the program and the source tree's scripts (bench/plot_metrics.py) where they
# were built; a bundle made on another machine finds them through these instead.
export CONVNET_BIN="$PWD/$bin/convnet" CONVNET_SOURCE_DIR="$PWD"

# The libraries the binaries need and the loader cannot find here (cuBLAS, which the bundle does not
# carry, kept where this machine keeps it) are linked into $bin/lib; one missing stops the check now
# rather than failing every step after it.
t=$(now)
mkdir -p "$bin/lib"
# The bundle's DT_RPATH covers lib/; binaries built here have none, so they get it on the path.
[ "$bin" = build-bundle ] || export LD_LIBRARY_PATH="$PWD/$bin/lib:${LD_LIBRARY_PATH:-}"
bench/gpu_libs.sh "$bin/lib" "$bin"/convnet "$bin"/*_tests* > "$out/libraries.log" 2>&1
rc=$?
linked=$(grep -c ' => ' "$out/libraries.log")
if [ $rc -eq 0 ]; then
  record libraries ok "$([ "$linked" -eq 0 ] && echo "all found" || grep ' => ' "$out/libraries.log" | tr '\n' ' ')" "$(elapsed "$t")"
else
  # What a second run needs to say where the library is (GPU_LIBS_PATH=DIR bash bench/gpu_check.sh).
  {
    echo "== cuBLAS on this machine: the loader's cache, the file system (30 s at most), PyTorch's folder"
    ldconfig -p 2>/dev/null | grep -i cublas
    timeout 30 find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name 'libcublas*.so*' -print 2>/dev/null | head -20
    python3 -c 'import os, torch; print("torch:", os.path.dirname(torch.__file__))' 2>&1 | tail -1
  } >> "$out/libraries.log"
  record libraries FAIL "$(grep -m1 '^gpu_libs.sh: ' "$out/libraries.log") (see libraries.log; stopped here)" "$(elapsed "$t")"
  exit 1
fi

# ---- 3. tests -------------------------------------------------------------------------------------
# run_suite NAME SHARDS BINARY [gtest args...]: runs the binary as SHARDS gtest shards at once, each
# under a 300 s timeout (a hang must not eat the device's time; the full gtest output names the test
# that hung), and passes when every shard exits 0; counts the passed and skipped tests of all shards.
# The CPU suites are single-threaded: in one process convnet_tests alone takes two minutes, most of it
# the CPU backend training to 90%.
run_suite() {
  local name=$1 shards=$2 binary=$3
  shift 3
  local t0 log="$out/$name.log" i r rc=0 hung=0 lim pids=()
  t0=$(now)
  if [ ! -x "$binary" ]; then
    record "$name" FAIL "$binary missing" 0
    return
  fi
  lim=$(limit 300)
  [ "$lim" -eq 0 ] && { past_deadline "$name"; return; }
  for ((i = 0; i < shards; i++)); do
    GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i OPENBLAS_NUM_THREADS=1 \
      timeout --kill-after=5 "$lim" "$binary" "$@" > "$log.shard$i" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < shards; i++)); do
    wait "${pids[$i]}"
    r=$?
    ran_past $r "$t0" "$lim" && hung=1
    [ $rc -eq 0 ] && rc=$r
    cat "$log.shard$i"
    rm -f "$log.shard$i"
  done > "$log"
  local passed skipped
  passed=$(grep -Eo '\[  PASSED  \] [0-9]+' "$log" | grep -Eo '[0-9]+$' | awk '{ s += $1 } END { print s + 0 }')
  skipped=$(grep -Eo '\[  SKIPPED \] [0-9]+ test' "$log" | grep -Eo '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
  if [ $hung = 1 ]; then
    record "$name" FAIL "a shard ran past $lim s; $passed passed, $skipped skipped (see $name.log)" "$(elapsed "$t0")"
  elif [ $rc -ne 0 ]; then
    record "$name" FAIL "exit $rc; $passed passed, $skipped skipped (see $name.log)" "$(elapsed "$t0")"
  elif [ "$name" = kernel_tests_gpu ] && [ "$skipped" -gt 0 ]; then
    if [ "$dry" = 1 ]; then
      record "$name" skipped "dry run: $skipped GPU tests skipped, $passed passed" "$(elapsed "$t0")"
    else
      record "$name" FAIL "$skipped GPU tests SKIPPED on a GPU machine" "$(elapsed "$t0")"
    fi
  else
    record "$name" ok "$passed passed, $skipped skipped" "$(elapsed "$t0")"
  fi
}
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 1)
shards=$(( cpus < 8 ? cpus : 8 ))
# Some convnet_tests train with --device auto, on the GPU here: one process at a time unless the GPU
# takes several (compute mode Default).
mode=$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | head -1)
gpu_shards=$shards
has_gpu && [ "$mode" != Default ] && gpu_shards=1
run_suite convnet_tests "$gpu_shards" "$bin/convnet_tests"
SIMT_THREAD_ORDER=reverse run_suite simt_tests 1 "$bin/simt_tests"
SIMT_THREAD_ORDER=shuffle:7 run_suite kernel_tests_sim "$shards" "$bin/kernel_tests_sim"
# The GPU suite in one process, as a user runs it: its tests are not CPU-bound on a GPU.
run_suite kernel_tests_gpu 1 "$bin/kernel_tests_gpu"

# ---- 4. the full recipe on the GPU ------------------------------------------------------------------
keep=$sanitizer_share
t0=$(now)
if has_gpu; then
  # Under a second of training on an H100; the timeout only keeps a hang from eating the device's time.
  bounded "train recipe" 180 "$out/train_recipe.log" "$bin/convnet" train --device gpu --data "$MNIST_DIR"
  rc=$?
  [ -f "$out/train_recipe.log" ] && cat "$out/train_recipe.log"
  acc=$(sed -n 's/^Test accuracy: //p' "$out/train_recipe.log" 2>/dev/null)
  wall=$(sed -n 's/^Total time: //p' "$out/train_recipe.log" 2>/dev/null)
  anchor=$(cpu_anchor)
  if [ $settled = 1 ]; then
    :  # recorded by bounded
  elif [ $rc -ne 0 ] || [ -z "$acc" ]; then
    record "train recipe" FAIL "exit $rc" "$(elapsed "$t0")"
  else
    verdict=$(awk -v a="$acc" -v c="${anchor:-0}" 'BEGIN { d = (a - c) * 100; if (d < 0) d = -d; print (c > 0 && d <= 0.2) ? "ok" : "FAIL" }')
    record "train recipe" "$verdict" "test accuracy $acc (CPU anchor ${anchor:-missing}, target within 0.2 points), total $wall" "$(elapsed "$t0")"
  fi
else
  if [ "$dry" = 1 ]; then
    "$bin/convnet" train --device cpu --epochs 1 --limit-train 256 --data "$MNIST_DIR" > "$out/train_recipe.log" 2>&1
    record "train recipe" skipped "dry run: no GPU; CPU smoke run exit $? instead" "$(elapsed "$t0")"
  else
    record "train recipe" FAIL "no GPU" 0
  fi
fi

# ---- 5. profiling: the --timing table and Nsight Compute on the --profile-steps window --------------
t0=$(now)
if has_gpu; then
  bounded timing 180 "$out/timing.log" "$bin/convnet" train --device gpu --timing 20 --data "$MNIST_DIR"
  rc=$?
  per_step=$(sed -n 's/^step, first launch to last (events) *//p' "$out/timing.log" 2>/dev/null)
  if [ $settled = 1 ]; then
    :  # recorded by bounded
  elif [ $rc -eq 0 ] && grep -q '^all kernels .* 100.0%$' "$out/timing.log"; then
    record "timing" ok "--timing 20: ${per_step:-?} us a step from events (table in timing.log)" "$(elapsed "$t0")"
  else
    record "timing" FAIL "exit $rc or no table (see timing.log)" "$(elapsed "$t0")"
  fi
  t0=$(now)
  CONVNET="$bin/convnet" NCU_FLAGS=${NCU_FLAGS-"--clock-control none"} bounded "ncu profile" 150 "$out/profile.log" \
    scripts/profile.sh --steps 3 --out "$out/profile" -- --data "$MNIST_DIR"
  rc=$?
  kernels=$(grep -c '^| [^*-]' "$out/profile/kernels.md" 2>/dev/null)
  if [ $settled = 1 ]; then
    :  # recorded by bounded
  elif [ $rc -eq 0 ] && [ "${kernels:-0}" -gt 1 ]; then
    record "ncu profile" ok "$((kernels - 1)) kernels in profile/kernels.md" "$(elapsed "$t0")"
  else
    record "ncu profile" FAIL "exit $rc (see profile.log; ERR_NVGPUCTRPERM means no counter access)" "$(elapsed "$t0")"
  fi
elif [ "$dry" = 1 ]; then
  record "timing" skipped "dry run: no GPU" 0
  record "ncu profile" skipped "dry run: no GPU" 0
else
  record "timing" FAIL "no GPU" 0
  record "ncu profile" FAIL "no GPU" 0
fi

# ---- 6. side-by-side benchmark ----------------------------------------------------------------------
t0=$(now)
left=$(left)
sbs_budget=${SIDE_BY_SIDE_BUDGET_S:-240}
[ $left -lt "$sbs_budget" ] && sbs_budget=$left
if [ "${GPU_CHECK_SIDE_BY_SIDE:-1}" = 0 ]; then
  record "side-by-side" skipped "GPU_CHECK_SIDE_BY_SIDE=0" 0
elif [ "$sbs_budget" -lt 60 ]; then
  record "side-by-side" skipped "only $left s left of the ${deadline} s GPU_CHECK_DEADLINE_S, less ${keep} s kept for compute-sanitizer" 0
else
  sbs_dry=0
  has_gpu || sbs_dry=$dry
  SIDE_BY_SIDE_DRY_RUN=$sbs_dry SIDE_BY_SIDE_BUDGET_S=$sbs_budget SIDE_BY_SIDE_OUT="$out/side_by_side" \
    bash bench/side_by_side.sh > "$out/side_by_side.log" 2>&1
  rc=$?
  verdict=$(grep -E '^(DRY RUN, not judged: )?targets' "$out/side_by_side.log" | tail -1 | sed 's/.* -- //')
  [ -s "$out/side_by_side/table.md" ] && cat "$out/side_by_side/table.md"
  if [ $rc -eq 2 ] || { [ $rc -ne 0 ] && [ ! -s "$out/side_by_side/table.md" ]; }; then
    record "side-by-side" FAIL "exit $rc (see side_by_side.log)" "$(elapsed "$t0")"
  elif [ "$sbs_dry" = 1 ]; then
    record "side-by-side" skipped "dry run: table printed, nothing appended (side_by_side.log)" "$(elapsed "$t0")"
  else
    rows_missing=$(grep -c '"not_measured"' "$out/side_by_side/results.jsonl")
    record "side-by-side" ok "budget ${sbs_budget} s; $rows_missing runs not measured; ${verdict:-no verdict}" "$(elapsed "$t0")"
  fi
fi

# ---- 7. compute-sanitizer, with what is left (at least GPU_CHECK_SANITIZER_S) -----------------------
keep=0
stuck=""
for tool in memcheck racecheck synccheck initcheck; do
  t0=$(now)
  # A tool that ran out of its time says compute-sanitizer is stuck or far too slow on this machine
  # (a sandboxed GPU, say): the others are not given another 100 s each of the device's time.
  if [ -n "$stuck" ]; then
    record "sanitizer $tool" skipped "not run: $stuck" 0
    continue
  fi
  if ! has_gpu || ! command -v compute-sanitizer >/dev/null; then
    if [ "$dry" = 1 ]; then record "sanitizer $tool" skipped "dry run: no GPU or no compute-sanitizer" 0
    else record "sanitizer $tool" FAIL "compute-sanitizer or GPU missing" 0; fi
    continue
  fi
  # memcheck also runs the backend's training steps (cuBLAS included); the slower hazard tools run
  # the per-kernel tests, which launch every kernel on the MNIST shapes.
  filter='-GpuBackend.*'
  extra=()
  if [ "$tool" = memcheck ]; then
    filter='-GpuBackend.TwentyStepsAreBitIdenticalAcrossRuns'
    extra=(--leak-check full)
  fi
  bounded "sanitizer $tool" 100 "$out/sanitizer_$tool.log" compute-sanitizer --tool "$tool" "${extra[@]}" \
    --error-exitcode 9 "$bin/kernel_tests_gpu" --gtest_filter="$filter"
  rc=$?
  if [ $settled = 1 ]; then
    [ $rc -ne 0 ] && stuck="$tool ran past its $lim s"  # else: not run, the deadline is spent
    continue
  fi
  summary_line=$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer_$tool.log" | tail -1)
  if [ $rc -eq 0 ]; then record "sanitizer $tool" ok "${summary_line:-clean}" "$(elapsed "$t0")"
  else record "sanitizer $tool" FAIL "exit $rc: ${summary_line:-see sanitizer_$tool.log}" "$(elapsed "$t0")"; fi
done

# ---- 8. summary -------------------------------------------------------------------------------------
{
  echo
  # The device tool's copy of the tree has no .git: the bundle's commit says what was tested.
  echo "GPU check summary — GPU: $gpu_name; commit $(git rev-parse --short HEAD 2>/dev/null ||
    echo "unknown, binaries built at $(cat "$bin/COMMIT" 2>/dev/null || echo '?')"); $(date -u +%FT%TZ)"
  printf '%-22s %-8s %8s  %s\n' step result time detail
  printf '%s\n' "${rows[@]}"
  [ -n "$fetch" ] && echo "(logs: gpu_check_logs.tar.gz in \$OUT; tar -xzf it for the logs named above)"
} | tee "$out/summary.txt"
publish
exit $failed
