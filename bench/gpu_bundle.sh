#!/usr/bin/env bash
# Prepare what bench/gpu_check.sh needs on a lent GPU machine that has CUDA but no GoogleTest,
# OpenBLAS, zlib or stb headers (and no network): build here, for sm_90 (H100/H200) plus PTX, and
# collect the binaries, the non-system shared libraries they need, and a copy of MNIST into
# git-ignored folders that the device tool carries:
#   .gpu-bundle/   bundle.tar.gz (convnet, the test binaries, lib/*.so*; gpu_check.sh unpacks it), COMMIT
#   .mnist/        the four MNIST files (from $MNIST_DIR, else ../shared/data/mnist, else data/mnist)
#   .whl/          keras, namex, optree and typing_extensions wheels for the device's Python
#                  (bench/keras_wheels.sh, 2.9 MiB, pinned, from PyPI) so the side-by-side step measures the Keras 3 / JAX row;
#                  without PyPI the bundle is made without them and that row says not measured
# Needs patchelf (Debian's package) besides the build dependencies.
# Usage: bench/gpu_bundle.sh    then carry [".gpu-bundle", ".mnist", ".whl"] and run bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v patchelf >/dev/null || { echo "gpu_bundle.sh: needs patchelf (apt-get install patchelf)" >&2; exit 1; }
build=build-gpu
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCONVNET_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 >/dev/null
cmake --build "$build"

rm -rf .gpu-bundle && mkdir -p .gpu-bundle/lib
bins=(convnet convnet_tests simt_tests kernel_tests_sim kernel_tests_gpu)
for b in "${bins[@]}"; do
  path=$(find "$build" -name "$b" -type f -perm -u+x | head -1)
  [ -n "$path" ] || { echo "gpu_bundle.sh: $b was not built" >&2; exit 1; }
  cp "$path" .gpu-bundle/
done
# Shared libraries outside glibc and the CUDA toolkit (the device brings its own CUDA 13).
for b in "${bins[@]}"; do ldd ".gpu-bundle/$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s|ld-linux[^/]*)\.so|/cuda' |
  while read -r lib; do cp -L "$lib" .gpu-bundle/lib/; done
# The binaries look in lib/ beside them first, with no LD_LIBRARY_PATH (which the side-by-side run's
# Python would inherit): DT_RPATH, not RUNPATH, so that the libraries' own needs are looked for there
# too (OpenBLAS's libgfortran here; on the GPU machine cuBLAS's cuBLASLt, which gpu_check.sh links in
# with bench/gpu_libs.sh when the machine keeps them off the loader's path).
for b in "${bins[@]}"; do
  patchelf --force-rpath --set-rpath '$ORIGIN/lib' ".gpu-bundle/$b"
  while read -r soname _ path _; do
    [ ! -e ".gpu-bundle/lib/$soname" ] || [ "$path" -ef ".gpu-bundle/lib/$soname" ] ||
      { echo "gpu_bundle.sh: .gpu-bundle/$b loads $path, not lib/$soname, after patchelf" >&2; exit 1; }
  done < <(ldd ".gpu-bundle/$b" | awk '$2 == "=>"')
done
git rev-parse --short HEAD > .gpu-bundle/COMMIT
# Packed: 53 MB of binaries and libraries (36 MB of it OpenBLAS) are 17 MB gzipped, which leaves the
# 64 MiB carry room for MNIST and the wheels; gpu_check.sh unpacks it.
tar -C .gpu-bundle -czf .gpu-bundle/bundle.tar.gz lib "${bins[@]}"
rm -rf .gpu-bundle/lib && (cd .gpu-bundle && rm -f "${bins[@]}")

src=${MNIST_DIR:-}
for d in "$src" ../shared/data/mnist data/mnist; do
  if [ -n "$d" ] && [ -d "$d" ]; then src=$d; break; fi
done
rm -rf .mnist && mkdir -p .mnist && cp "$src"/*-ubyte* .mnist/
rm -rf .whl
bench/keras_wheels.sh .whl >/dev/null || echo "gpu_bundle.sh: no keras wheels (PyPI unreachable?); the keras/jax row will say not measured" >&2
du -sh .gpu-bundle .mnist .whl 2>/dev/null || true
echo "carry: [\".gpu-bundle\", \".mnist\", \".whl\"] (64 MiB at most, the working tree included); run: bash bench/gpu_check.sh"
