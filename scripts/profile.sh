#!/usr/bin/env bash
# Profile a short window of GPU training steps with Nsight Compute (default) or Nsight Systems.
#
#   scripts/profile.sh [--nsys] [--steps N] [--warmup W] [--out DIR] [-- CONVNET_TRAIN_FLAGS...]
#
# Builds nothing: it runs the existing build/convnet (CONVNET=path to override) as
#   convnet train --device gpu --profile-steps N --warmup-steps W [flags after --]
# which runs W warm-up steps, then N training steps between cudaProfilerStart and cudaProfilerStop.
#
# ncu (default; NCU=path to override, NCU_FLAGS for extra ncu options such as
# "--clock-control none --cache-control none"): profiles only that window (--profile-from-start off),
# collecting gpu__time_duration.sum, dram__bytes.sum.per_second,
# sm__throughput.avg.pct_of_peak_sustained_elapsed and sm__warps_active.avg.pct_of_peak_sustained_active
# (achieved occupancy) into DIR/ncu.csv, then scripts/ncu_table.py turns
# it into the per-kernel markdown table DIR/kernels.md (also printed). Nsight Compute replays every
# kernel by itself (caches flushed, clocks at base by default): durations per kernel, not step time.
#
# --nsys (NSYS=path to override): nsys profile --capture-range=cudaProfilerApi records the window
# with CUDA, NVTX and cuBLAS tracing into DIR/convnet.nsys-rep, and nsys stats prints the kernel and
# NVTX-range summaries (also DIR/nsys_stats.txt). Open the report in nsys-ui for the timeline.
#
# Defaults: N = 10 steps, W = 5, DIR = build/profile. PROFILE_DRY_RUN=1 prints the commands instead
# of running them (and checks nothing). Exit status: the first failing command's.
set -euo pipefail
cd "$(dirname "$0")/.."

NCU=${NCU:-ncu}
NSYS=${NSYS:-nsys}
CONVNET=${CONVNET:-build/convnet}
PYTHON=${PYTHON:-python3}
DRY=${PROFILE_DRY_RUN:-0}
METRICS=gpu__time_duration.sum,dram__bytes.sum.per_second,sm__throughput.avg.pct_of_peak_sustained_elapsed,sm__warps_active.avg.pct_of_peak_sustained_active

usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

tool=ncu steps=10 warmup=5 out=build/profile
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nsys) tool=nsys ;;
    --steps) steps=${2:?--steps needs a value}; shift ;;
    --warmup) warmup=${2:?--warmup needs a value}; shift ;;
    --out) out=${2:?--out needs a value}; shift ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "profile.sh: unknown option '$1' (convnet flags go after --)" >&2; usage ;;
  esac
  shift
done
bad() { echo "profile.sh: $1" >&2; exit 2; }
[[ $steps =~ ^[1-9][0-9]*$ ]] || bad "--steps: expected a positive integer, got '$steps'"
[[ $warmup =~ ^[0-9]+$ ]] || bad "--warmup: expected a non-negative integer, got '$warmup'"

# Prints a command (words quoted only where the shell needs it); runs it unless this is a dry run.
show() {
  local word line='+'
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then line+=" $word"; else line+=" $(printf '%q' "$word")"; fi
  done
  printf '%s\n' "$line"
}
run() {
  show "$@"
  [[ $DRY == 1 ]] || "$@"
}
# run, with the output also written to file $1.
run_tee() {
  local file=$1
  shift
  show "$@"
  printf '  (output also to %s)\n' "$file"
  [[ $DRY == 1 ]] || "$@" | tee "$file"
}

if [[ $DRY != 1 ]]; then
  [[ -x $CONVNET ]] || { echo "profile.sh: $CONVNET not found: build first (cmake --build build)" >&2; exit 2; }
  tool_path=$([[ $tool == ncu ]] && echo "$NCU" || echo "$NSYS")
  command -v "$tool_path" >/dev/null || { echo "profile.sh: $tool_path not found (set ${tool^^}=path)" >&2; exit 2; }
  mkdir -p "$out"
fi

train=("$CONVNET" train --device gpu --profile-steps "$steps" --warmup-steps "$warmup" "$@")
if [[ $tool == ncu ]]; then
  [[ $DRY == 1 ]] || rm -f "$out/ncu.csv"
  # LC_ALL=C: numbers with '.' decimals and ',' thousands, as ncu_table.py reads them.
  # shellcheck disable=SC2086  # NCU_FLAGS is a list of options
  run env LC_ALL=C "$NCU" --profile-from-start off --metrics "$METRICS" --csv --print-units base \
    --print-kernel-base function --log-file "$out/ncu.csv" ${NCU_FLAGS:-} "${train[@]}"
  run "$PYTHON" scripts/ncu_table.py "$out/ncu.csv" --steps "$steps" --out "$out/kernels.md"
else
  run "$NSYS" profile --capture-range=cudaProfilerApi --capture-range-end=stop --trace=cuda,nvtx,cublas \
    --sample=none --cpuctxsw=none --force-overwrite=true --output="$out/convnet" "${train[@]}"
  run_tee "$out/nsys_stats.txt" "$NSYS" stats --report cuda_gpu_kern_sum,nvtx_sum --force-export=true \
    "$out/convnet.nsys-rep"
fi
