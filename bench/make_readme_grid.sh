#!/usr/bin/env bash
# Regenerates docs/predictions.png and docs/misclassified.png, the pictures in README.md ("See what
# the network sees").
#
#   bench/make_readme_grid.sh          train the seed network for 2 epochs on the CPU (about a minute on
#                                      2 cores; the model is thrown away afterwards), then draw
#   bench/make_readme_grid.sh MODEL    draw with MODEL, a file written by 'convnet train --save'
#
# The pictures are the README's own commands: 64 test digits chosen by seed 1, 8 per row, and 16 of
# the test digits the model gets wrong; each digit upscaled x2 (rather than the default x3, which
# keeps the committed PNGs small). Training is deterministic on the CPU, so a rerun draws the same
# pictures. Needs build/convnet (or $CONVNET_BIN) and MNIST in $MNIST_DIR or data/mnist.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CONVNET_BIN:-build/convnet}
[ -x "$bin" ] || { echo "bench/make_readme_grid.sh: $bin not built (cmake --build build)" >&2; exit 2; }
model=${1:-}
if [ -z "$model" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  model=$tmp/seed-2-epochs.cnvn
  "$bin" train --epochs 2 --device cpu --save "$model"
fi
mkdir -p docs
"$bin" show --model "$model" --out docs/predictions.png --count 64 --cols 8 --scale 2 --seed 1 --device cpu
"$bin" show --model "$model" --out docs/misclassified.png --misclassified --count 16 --cols 8 --scale 2 --seed 1 \
  --device cpu
