#!/usr/bin/env bash
# Give BINARY... the shared libraries that the loader cannot find for them on this machine, by linking
# each into LIBDIR from where the machine keeps it. Made for the GPU check (bench/gpu_check.sh): the
# bundle's binaries carry the DT_RPATH $ORIGIN/lib (bench/gpu_bundle.sh), which the loader also uses
# for their libraries' own libraries, so a link in the bundle's lib/ serves cuBLAS and the cuBLASLt it
# needs without an LD_LIBRARY_PATH that the Python frameworks of the side-by-side run would inherit.
# The bundle cannot carry cuBLAS itself (hundreds of MB): the GPU machine brings its own, in a place
# not known in advance.
#
#   bench/gpu_libs.sh LIBDIR BINARY...
#
# Prints "SONAME => PATH" for each library it links. Exit 0 when every library of every binary then
# resolves; 1 when one does not, with a line per problem naming the binary and the library (a library
# found nowhere, or one found in a version too old for the binary) and a last line listing the folders
# searched; 2 on bad usage.
# Searched, in order: the folders in GPU_LIBS_PATH (colon-separated); the CUDA toolkit's lib64, lib and
# targets/x86_64-linux/lib under CUDA_HOME, CUDA_PATH, the folder above nvcc's and /usr/local/cuda*;
# then nvidia/*/lib in each site-packages folder of GPU_LIBS_PYTHON (default: $PYTHON, else python3, as
# bench/side_by_side.sh chooses) (PyTorch's and JAX's nvidia-cublas wheels). A failure ends with the
# folders searched.
set -uo pipefail

if [ $# -lt 2 ] || [ ! -d "$1" ]; then
  echo "usage: bench/gpu_libs.sh LIBDIR BINARY... (LIBDIR an existing folder)" >&2
  exit 2
fi
command -v ldd >/dev/null || { echo "gpu_libs.sh: needs ldd (glibc's), which is not on PATH" >&2; exit 2; }
libdir=$1
shift
for b in "$@"; do
  [ -f "$b" ] || { echo "gpu_libs.sh: $b: no such file" >&2; exit 2; }
done

search_dirs() {
  local IFS=:
  for d in ${GPU_LIBS_PATH:-}; do [ -n "$d" ] && echo "$d"; done
  unset IFS
  local roots=() nvcc
  [ -n "${CUDA_HOME:-}" ] && roots+=("$CUDA_HOME")
  [ -n "${CUDA_PATH:-}" ] && roots+=("$CUDA_PATH")
  nvcc=$(command -v nvcc 2>/dev/null) && roots+=("$(dirname "$(dirname "$nvcc")")")
  roots+=(/usr/local/cuda /usr/local/cuda-*)
  for r in "${roots[@]}"; do
    for sub in lib64 lib targets/x86_64-linux/lib; do [ -d "$r/$sub" ] && echo "$r/$sub"; done
  done
  "${GPU_LIBS_PYTHON:-${PYTHON:-python3}}" -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' \
    2>/dev/null | while read -r sp; do
    for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && echo "$d"; done
  done
}

# ldd's report of every binary, one "BINARY<TAB>line" per line.
report() {
  for b in "$@"; do ldd "$b" 2>&1 | sed "s|^[[:space:]]*|$b\t|"; done
}

# Absolute, so that the links hold wherever they are followed from.
mapfile -t dirs < <(search_dirs | while read -r d; do (cd "$d" 2>/dev/null && pwd -P); done | awk '!seen[$0]++')
# A linked library may need others in turn (cuBLAS needs cuBLASLt), which the next round sees.
for _round in 1 2 3 4; do
  mapfile -t missing < <(report "$@" | awk -F'\t' '$2 ~ / => not found/ { split($2, f, " "); print f[1] }' | sort -u)
  [ ${#missing[@]} -eq 0 ] && break
  linked=0
  for soname in "${missing[@]}"; do
    [ -e "$libdir/$soname" ] && continue  # linked already, and still not loadable: reported below
    for d in "${dirs[@]}"; do
      if [ -e "$d/$soname" ]; then
        ln -sfn "$d/$soname" "$libdir/$soname" && echo "$soname => $d/$soname" && linked=1
        break
      fi
    done
  done
  [ $linked -eq 0 ] && break
done

failed=0
while IFS=$'\t' read -r b line; do
  case $line in
    *"=> not found"*)
      soname=$(echo "$line" | awk '{print $1}')
      echo "gpu_libs.sh: $b needs $soname: not found on the loader's path nor in the ${#dirs[@]} folders searched (GPU_LIBS_PATH=DIR adds one)" >&2
      failed=1 ;;
    *"version \`"*"' not found"*)
      echo "gpu_libs.sh: $b: ${line#"$b: "}" >&2  # ldd's line names the binary too
      failed=1 ;;
  esac
done < <(report "$@")
if [ $failed = 1 ]; then
  echo "gpu_libs.sh: searched after the loader's own path: $(IFS=:; echo "${dirs[*]:-nothing}")" >&2
fi
exit $failed
