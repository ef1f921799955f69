#!/usr/bin/env bash
# Download the wheels bench/keras_seed.py needs on the lent GPU machine into a git-ignored folder
# (default .whl/), for the device tool to carry. That machine's Python (3.12) already has JAX with
# its CUDA 13 plugin, numpy, h5py, ml-dtypes, rich, absl-py and packaging (see the device notes);
# what Keras 3 adds is keras itself, namex and optree, plus optree's dependency typing_extensions
# (the device has it; a Python without it fails Keras' import, and keras_seed.py puts these wheels
# after the Python's own packages on sys.path, so a version already there is the one used): about
# 2.9 MiB, which fits beside .gpu-bundle and .mnist (~57 MiB) under the 64 MiB carry limit. The
# whole JAX stack would not: `pip download keras "jax[cuda13-local]"` is 270 MiB, "jax[cuda13]"
# 2511 MiB (2026-11-28). The versions are pinned to what CI tests the same way (.ci/run: jax from
# PyPI, then these wheels through KERAS_WHEELS).
# Usage: bench/keras_wheels.sh [DIR]     then carry [".gpu-bundle", ".mnist", ".whl"]
# Needs PyPI; set KERAS_WHEELS_PYTHON (default 3.12) for another target Python.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
pyver=${KERAS_WHEELS_PYTHON:-3.12}
mkdir -p "$dir"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  "${platforms[@]}" -d "$dir" keras==3.15.1 namex==0.1.0 \
  optree==0.20.0 typing_extensions==4.16.0
du -sh "$dir"
ls "$dir"
