#!/usr/bin/env bash
# CPU benchmarks of the reference backend, recorded in bench/RESULTS.md.
#
#   bench/cpu_train.sh throughput   steady-state images/s (epoch 2 of 2 over 12,800 images, no
#                                   validation) and the time of one full epoch (54,000 images + the
#                                   6,000-image validation); target: a full epoch in <= 60 s
#   bench/cpu_train.sh recipe [SEED] the full seed recipe (Adam, batch 128, 15 epochs, validation
#                                   0.1) and its final test accuracy: the accuracy anchor
# Needs a Release build in build/ (cmake -S . -B build -G Ninja && cmake --build build) and MNIST
# in $MNIST_DIR or data/mnist. Logs go to bench/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/convnet
[ -x "$bin" ] || { echo "bench/cpu_train.sh: $bin not built (cmake --build build)" >&2; exit 2; }
mkdir -p bench/logs
machine="$(nproc)-core $(uname -m) dev VM, no GPU ($(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1))"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- host kernels CMakeLists.txt || echo "+dirty")
today=$(date -u +%F)

case "${1:-}" in
  throughput)
    cmd1="$bin train --epochs 2 --limit-train 12800 --val-split 0 --no-test"
    $cmd1 | tee bench/logs/cpu_throughput.log
    ips=$(grep -E '^100/100' bench/logs/cpu_throughput.log | tail -1 | sed -E 's/.* - ([0-9]+) img\/s/\1/')
    cmd2="$bin train --epochs 1 --no-test"
    $cmd2 | tee bench/logs/cpu_epoch.log
    epoch=$(grep -E '^422/422' bench/logs/cpu_epoch.log | sed -E 's/^422\/422 - ([0-9.]+)s.*/\1/')
    verdict=$(awk -v e="$epoch" 'BEGIN { print (e <= 60 ? "met" : "MISSED") }')
    python3 bench/append_row.py "CPU training throughput and epoch time" \
      "date|machine|commit|command|steady-state img/s|full epoch (s, with validation)|target <= 60 s" \
      "$today|$machine|$commit|\`$cmd1\`; \`$cmd2\`|$ips|$epoch|$verdict"
    echo "steady state: $ips img/s; full epoch: $epoch s ($verdict)"
    ;;
  recipe)
    seed=${2:-1}
    cmd="$bin train --seed $seed"
    start=$(date +%s)
    $cmd | tee "bench/logs/cpu_recipe_seed$seed.log"
    wall=$(( $(date +%s) - start ))
    acc=$(sed -n 's/^Test accuracy: //p' "bench/logs/cpu_recipe_seed$seed.log")
    loss=$(sed -n 's/^Test loss: //p' "bench/logs/cpu_recipe_seed$seed.log")
    val=$(grep -E '^422/422' "bench/logs/cpu_recipe_seed$seed.log" | tail -1 | sed -E 's/.*val_accuracy: ([0-9.]+).*/\1/')
    python3 bench/append_row.py "Accuracy anchor: the full seed recipe on the CPU" \
      "date|machine|commit|command|seed|final val_accuracy|test loss|test accuracy|wall time (s)" \
      "$today|$machine|$commit|\`$cmd\`|$seed|$val|$loss|$acc|$wall"
    ;;
  *)
    echo "usage: bench/cpu_train.sh throughput | recipe [SEED]" >&2
    exit 2
    ;;
esac
