#!/usr/bin/env bash
# The side-by-side benchmark (issue #6): one script, one GPU, one run. The seed recipe (Adam, batch
# 128, 15 epochs, validation 0.1, test accuracy) trained by
#   convnet-graphs-on   this trainer, `convnet train --device gpu --graphs on`
#   convnet-graphs-off  the same with --graphs off
#   torch-eager         bench/torch_convnet.py --mode eager (data resident on the GPU, no DataLoader)
#   torch-compile       bench/torch_convnet.py --mode compile (torch.compile, mode="reduce-overhead")
#   keras-jax           bench/keras_seed.py: the seed's own Keras model code on Keras 3 / JAX
# at batch 128 (3 seeds) and batch 1024 (1 seed), then the table (steady ms/epoch, images/s, recipe
# total, test accuracy mean ± sd, × the FP32 floor, speed-up against the PyTorch rows; see
# bench/side_by_side.py) on stdout, appended to bench/RESULTS.md (section "Side-by-side: ...") with
# device, date, commit and command. A row that did not run, failed or ran out of budget says
# "not measured (why)"; nothing is ever estimated in its place.
#
# Order: seed 1 of every row at batch 128, then the other seeds at 128, then batch 1024; every run
# gets the budget that is left (timeout), and a row whose first run failed is not retried.
#
# Knobs (environment):
#   SIDE_BY_SIDE_BUDGET_S=240      seconds for all runs together (the table takes no measurable time)
#   SIDE_BY_SIDE_ROWS="convnet-graphs-on convnet-graphs-off torch-eager torch-compile keras-jax"
#   SIDE_BY_SIDE_SEEDS="1 2 3"     seeds at batch 128
#   SIDE_BY_SIDE_SEEDS_1024="1"    seeds at batch 1024
#   SIDE_BY_SIDE_BATCHES="128 1024"
#   SIDE_BY_SIDE_EPOCHS=15
#   SIDE_BY_SIDE_DRY_RUN=1         exercise every path on any machine (the CPU when there is no GPU),
#                                  2 epochs on 1024 training images, 1000 validation/test images in
#                                  the Python rows; the table is printed, never appended
#   SIDE_BY_SIDE_LIMIT_TRAIN / SIDE_BY_SIDE_LIMIT_EVAL   the dry run's subset sizes
#   SIDE_BY_SIDE_TF32=1            every row with TF32 allowed (--tf32); default strict FP32
#   CONVNET_BIN                    default build-bundle/convnet (the carried bundle, once bench/gpu_check.sh
#                                  has unpacked it), else build/convnet
#   PYTHON=python3                 MNIST_DIR=data/mnist
#   KERAS_WHEELS=DIR               wheels keras_seed.py installs when keras is missing
#                                  (bench/keras_wheels.sh makes them; .whl/ is used when present)
#   SIDE_BY_SIDE_OUT=DIR           logs: results.jsonl, table.md, runs/ (default bench/logs/side_by_side)
#   OUT=DIR                        (the device tool, which brings back at most 8 files) without
#                                  SIDE_BY_SIDE_OUT: after every run, DIR gets side_by_side_results.jsonl,
#                                  side_by_side.md once the table is made, and side_by_side_runs.tar.gz
# Without a GPU and without SIDE_BY_SIDE_DRY_RUN=1 it refuses to run (exit 2): it never writes a
# CPU number where a GPU one belongs. Exit status: 0 when every row was measured, 1 otherwise.
set -uo pipefail
fetch=""
if [ -z "${SIDE_BY_SIDE_OUT:-}" ] && [ -n "${OUT:-}" ]; then
  fetch=$(mkdir -p "$OUT" && cd "$OUT" && pwd) || { echo "side_by_side.sh: error: cannot write to OUT=$OUT" >&2; exit 2; }
fi
cd "$(dirname "$0")/.." || exit 2
dry=${SIDE_BY_SIDE_DRY_RUN:-0}
budget=${SIDE_BY_SIDE_BUDGET_S:-240}
rows=${SIDE_BY_SIDE_ROWS:-convnet-graphs-on convnet-graphs-off torch-eager torch-compile keras-jax}
seeds=${SIDE_BY_SIDE_SEEDS:-1 2 3}
seeds_1024=${SIDE_BY_SIDE_SEEDS_1024:-1}
batches=${SIDE_BY_SIDE_BATCHES:-128 1024}
bin=${CONVNET_BIN:-}
# The bundle carried from bench/gpu_bundle.sh, as bench/gpu_check.sh unpacks it (its binaries find
# their lib/ themselves).
[ -z "$bin" ] && [ -x build-bundle/convnet ] && bin=build-bundle/convnet
bin=${bin:-build/convnet}
tf32=()
[ "${SIDE_BY_SIDE_TF32:-0}" = 1 ] && tf32=(--tf32)
py=${PYTHON:-python3}
out=${SIDE_BY_SIDE_OUT:-bench/logs/side_by_side}
export MNIST_DIR=${MNIST_DIR:-$PWD/data/mnist}
[ -z "${KERAS_WHEELS:-}" ] && [ -d .whl ] && export KERAS_WHEELS=$PWD/.whl
helper=bench/side_by_side.py
runs=$out/runs  # per-run output
rm -rf "$runs" "$out/table.md" && mkdir -p "$runs" && : > "$out/results.jsonl" ||
  { echo "side_by_side.sh: error: cannot write to $out" >&2; exit 2; }
# shellcheck source=bench/out_files.sh
. bench/out_files.sh
# publish: the results so far into $OUT (see OUT above).
publish() {
  [ -n "$fetch" ] || return 0
  place "$out/results.jsonl" "$fetch/side_by_side_results.jsonl"
  place "$out/table.md" "$fetch/side_by_side.md"
  place_tar "$fetch/side_by_side_runs.tar.gz" -C "$out" runs
}

if nvidia-smi -L >/dev/null 2>&1; then
  gpu=1 convnet_device=gpu py_device=cuda
  device_name=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1 | sed 's/, / (driver /; s/$/)/')
else
  gpu=0 convnet_device=cpu py_device=cpu device_name="none: CPU ($(nproc) cores), no GPU"
  if [ "$dry" != 1 ]; then
    echo "side_by_side.sh: error: no GPU (nvidia-smi -L failed); SIDE_BY_SIDE_DRY_RUN=1 exercises the script on the CPU" >&2
    exit 2
  fi
fi
limits=()
if [ "$dry" = 1 ]; then
  epochs=${SIDE_BY_SIDE_EPOCHS:-2}
  limit_train=${SIDE_BY_SIDE_LIMIT_TRAIN:-1024}
  limit_eval=${SIDE_BY_SIDE_LIMIT_EVAL:-1000}
  limits=(--limit-train "$limit_train")
else
  epochs=${SIDE_BY_SIDE_EPOCHS:-15}
fi
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && ! git diff --quiet HEAD -- host kernels bench CMakeLists.txt ':!bench/RESULTS.md'; then
  commit+="+dirty"
fi
[ -f "$(dirname "$bin")/COMMIT" ] && commit="$commit (convnet built at $(cat "$(dirname "$bin")/COMMIT"))"
today=$(date -u +%F)
# The meta line (date, device, commit, FP32 peak) first, so results cut short still make a table.
dry_flag=()
[ "$dry" = 1 ] && dry_flag=(--dry-run)
"$py" "$helper" meta --date "$today" --device-name "$device_name" --commit "$commit" --convnet "$bin" \
  "${dry_flag[@]}" >> "$out/results.jsonl" || exit 2
start=$(date +%s)

# Does the binary know --graphs? A flag it does not know is refused before any data is read.
graphs=1
probe=$("$bin" train --graphs off --data /nonexistent-side-by-side 2>&1)
[[ $probe == *"unknown flag --graphs"* ]] && graphs=0
convnet_note=""
[ $gpu = 0 ] && convnet_note="CPU backend, --graphs not passed (dry run on a machine without a GPU)"
torch_why=$("$py" -c 'import torch' 2>&1 | tail -1) && torch_why=""

# note NAME COMMAND BATCH SEED WHY: a run that was not measured, as a line of results.jsonl.
declare -A row_failed  # row -> why its first run failed, so its other runs are not attempted
note() { "$py" "$helper" not-measured --row "$1" --command "$2" --batch "$3" --seed "$4" --reason "$5" >> "$out/results.jsonl"; }

# command_for ROW BATCH SEED LOG: the command line of one run, one word per line.
command_for() {
  local row=$1 batch=$2 seed=$3 log=$4
  local common=(--batch-size "$batch" --epochs "$epochs" --seed "$seed" "${tf32[@]}")
  case $row in
    convnet-graphs-on|convnet-graphs-off)
      local g=()
      # --graphs selects how the GPU backend launches; the CPU of a dry run has no such choice.
      [ $graphs = 1 ] && [ $gpu = 1 ] && g=(--graphs "${row#convnet-graphs-}")
      printf '%s\n' "$bin" train --device "$convnet_device" "${g[@]}" "${common[@]}" "${limits[@]}" --log "$log" ;;
    torch-eager|torch-compile)
      local e=()
      [ "$dry" = 1 ] && e=("${limits[@]}" --limit-eval "$limit_eval")
      printf '%s\n' "$py" bench/torch_convnet.py --mode "${row#torch-}" --device "$py_device" "${common[@]}" "${e[@]}" ;;
    keras-jax)
      local e=()
      [ "$dry" = 1 ] && e=("${limits[@]}" --limit-eval "$limit_eval")
      printf '%s\n' "$py" bench/keras_seed.py --device "$py_device" "${common[@]}" "${e[@]}" ;;
  esac
}

row_name() {
  case $1 in
    convnet-graphs-on) [ $graphs = 1 ] && echo "convnet --graphs on" || echo "convnet (no --graphs flag)" ;;
    convnet-graphs-off) echo "convnet --graphs off" ;;
    torch-eager) echo "pytorch eager" ;;
    torch-compile) echo "pytorch compile" ;;
    keras-jax) echo "keras/jax" ;;
    *) echo "$1" ;;
  esac
}

# why_not ROW: a reason the row cannot run at all here, or nothing.
why_not() {
  case $1 in
    convnet-graphs-off) [ $graphs = 0 ] && echo "binary has no --graphs flag" ;;
    convnet-*) [ -x "$bin" ] || echo "$bin is not built" ;;
    torch-*) [ -n "$torch_why" ] && echo "PyTorch not importable by $py: $torch_why" ;;
    keras-jax|"") ;;
    *) echo "unknown row (SIDE_BY_SIDE_ROWS)" ;;
  esac
}

# failure_line FILE: what a failed run's stderr says went wrong, for its row's note: the last error
# line (a Python exception, or "prog: error: ..."), which the hints PyTorch prints after a traceback
# ("Set TORCHDYNAMO_VERBOSE=1 ...") would otherwise hide; else the last line that is not empty.
failure_line() {
  local line
  line=$(grep -E '^[A-Za-z_][A-Za-z0-9_.]*(Error|Exception|Exit|Interrupt)(:|$)|: error: ' "$1" | tail -1)
  [ -n "$line" ] || line=$(grep -v '^\s*$' "$1" | tail -1)
  printf '%s' "$line" | cut -c1-240
}

run_one() {
  local row=$1 batch=$2 seed=$3
  local name tag log
  name=$(row_name "$row")
  tag="$row-b$batch-s$seed"
  log="$runs/$tag.jsonl"
  rm -f "$log"
  local -a cmd
  mapfile -t cmd < <(command_for "$row" "$batch" "$seed" "$log")
  local shown="${cmd[*]}"
  shown=${shown//$runs\//}
  local why
  why=$(why_not "$row")
  [ -z "$why" ] && why=${row_failed[$row]:-}
  if [ -z "$why" ]; then
    local left=$(( budget - ($(date +%s) - start) ))
    if [ $left -le 0 ]; then
      why="the ${budget} s budget was spent (SIDE_BY_SIDE_BUDGET_S)"
    else
      echo "== $name, batch $batch, seed $seed (${left} s of budget left): ${cmd[*]}"
      KERAS_BACKEND=jax timeout --kill-after=5 "$left" "${cmd[@]}" > "$runs/$tag.out" 2> "$runs/$tag.err"
      local rc=$?
      if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
        why="stopped at the ${budget} s budget (SIDE_BY_SIDE_BUDGET_S)"
      elif [ $rc -ne 0 ]; then
        why="exit $rc: $(failure_line "$runs/$tag.err")"
        row_failed[$row]="first run failed: $why"
      elif [[ $row == convnet-* ]]; then
        "$py" "$helper" convnet-result --row "$name" --command "$shown" --batch "$batch" --seed "$seed" \
          --log "$log" --stdout "$runs/$tag.out" --note "$convnet_note" >> "$out/results.jsonl" ||
          why="could not read its output"
      else
        "$py" "$helper" python-result --command "$shown" --stdout "$runs/$tag.out" >> "$out/results.jsonl" ||
          why="could not read its output"
      fi
      tail -n 3 "$runs/$tag.out"
    fi
  fi
  [ -n "$why" ] && { echo "== $name, batch $batch, seed $seed: not measured ($why)"; note "$name" "$shown" "$batch" "$seed" "$why"; }
  publish
  return 0
}

for batch in $batches; do
  if [ "$batch" = 128 ]; then set -- $seeds; else set -- $seeds_1024; fi
  first=$1
  for row in $rows; do run_one "$row" "$batch" "$first"; done
  shift
  for seed in "$@"; do
    for row in $rows; do run_one "$row" "$batch" "$seed"; done
  done
done

append=()
[ "$dry" != 1 ] && append=(--append)
echo
"$py" "$helper" table "$out/results.jsonl" "${append[@]}" | tee "$out/table.md"
[ "${PIPESTATUS[0]}" = 0 ] || exit 2
publish
echo "side-by-side: $(( $(date +%s) - start )) s; logs in $out${fetch:+ (results, table and runs also in $fetch)}"
grep -q '"not_measured"' "$out/results.jsonl" && exit 1
exit 0
