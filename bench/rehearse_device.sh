#!/usr/bin/env bash
# A rehearsal of the GPU check, for a session without a GPU: bench/gpu_check.sh as a dry run
# (GPU_CHECK_DRY_RUN=1, the side-by-side step included) inside an Ubuntu 24.04 chroot set up like the
# lent GPU machine's image (Python 3.12 at /opt/torch/.venv with that machine's PyTorch, JAX and
# numpy, g++ and Python's headers, no network), on a copy of the working tree in another folder
# (/repo: what the device tool sends) with the carried .gpu-bundle, .mnist and .whl.
# What it catches that a dry run here cannot: a binary that needs a library or a glibc the image
# lacks, a test that finds files through a path compiled in on this machine, a script that breaks on
# that Python or those package versions, Keras wheels that do not install there. What it cannot:
# anything of the GPU (kernels, CUDA graphs, cuBLAS calls, speed), nor what that image has that this
# one lacks (the CUDA toolkit, nvidia-smi): those steps are "skipped (dry run)".
# Needs root, debootstrap and zstd (Debian's packages), the Ubuntu archive and PyPI. The first run
# sets the chroot up (about 6 GB, a few minutes); later runs reuse it. The archive is read without
# signature checks (Debian has no Ubuntu keyring): the chroot is a scratch test bed, nothing more.
# Usage: bench/gpu_bundle.sh && bench/rehearse_device.sh      exit status: gpu_check.sh's
#   REHEARSAL_ROOT=DIR        the chroot (default /var/tmp/convnet-device-rehearsal)
#   SIDE_BY_SIDE_BUDGET_S=N   the side-by-side step's budget (default 150 s)
# gpu_check.sh's files ($OUT there) are copied to bench/logs/rehearsal/.
set -euo pipefail
cd "$(dirname "$0")/.."
prog=rehearse_device.sh
fail() { echo "$prog: $*" >&2; exit 2; }
root=${REHEARSAL_ROOT:-/var/tmp/convnet-device-rehearsal}
budget=${SIDE_BY_SIDE_BUDGET_S:-150}
[[ $budget =~ ^[0-9]+$ ]] || fail "SIDE_BY_SIDE_BUDGET_S=$budget: expected a whole number of seconds"
[[ $root = /* && $root != / ]] || fail "REHEARSAL_ROOT=$root: expected an absolute path other than /"
[ -f .gpu-bundle/bundle.tar.gz ] || fail "no .gpu-bundle/bundle.tar.gz here: run bench/gpu_bundle.sh first"
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mount)"
for tool in debootstrap zstd unshare; do
  command -v "$tool" >/dev/null || fail "needs $tool (apt-get install debootstrap zstd)"
done
# The GPU machine's image, as the device tool's KINDS.md lists it (its pip list, 2026-11).
packages="torch==2.11.0 jax==0.11.2 jaxlib==0.11.2 numpy==2.5.2 matplotlib h5py rich absl-py packaging"
venv=/opt/torch/.venv

# ---- the chroot, set up once ----------------------------------------------------------------------
if [ ! -f "$root/.rehearsal-base" ]; then
  echo "== setting up $root: Ubuntu 24.04 (debootstrap)"
  debootstrap --no-check-gpg --variant=minbase --components=main,universe \
    --include=python3,python3-venv,python3-dev,g++,ca-certificates \
    noble "$root" http://archive.ubuntu.com/ubuntu /usr/share/debootstrap/scripts/gutsy >/dev/null
  # Certificates this machine trusts beyond the usual ones (a proxy's), so pip reaches PyPI there too.
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  touch "$root/.rehearsal-base"
fi
if [ "$(cat "$root/.rehearsal-packages" 2>/dev/null)" != "$packages" ]; then
  echo "== setting up $root: Python 3.12 at $venv with $packages"
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root bash -ec "
    python3 -m venv $venv
    $venv/bin/python3 -m pip install -q --disable-pip-version-check $packages"
  echo "$packages" > "$root/.rehearsal-packages"
fi

# ---- the working tree, as the device tool sends it ------------------------------------------------
rm -rf "$root/repo" && mkdir "$root/repo"
git ls-files -co --exclude-standard -z | tar --null --ignore-failed-read -T - -cf - | tar -C "$root/repo" -xf -
for carried in .gpu-bundle .mnist .whl; do [ -e "$carried" ] && cp -a "$carried" "$root/repo/"; done
bundle=$(cat .gpu-bundle/COMMIT 2>/dev/null || echo '?')
head=$(git rev-parse --short HEAD)
[ "$bundle" = "$head" ] || echo "$prog: note: the bundle was built at $bundle, HEAD is $head (bench/gpu_bundle.sh)" >&2

# ---- the check, with no network (as there) ----------------------------------------------------------
mounted=()
cleanup() { local i; for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[i]}" || umount -l "${mounted[i]}"; done; }
trap cleanup EXIT
# dev/pts too (a bind of /dev leaves it out): the tests that run train on a pseudo-terminal need it.
for m in proc dev dev/pts; do
  mountpoint -q "$root/$m" && continue
  if [ $m = proc ]; then mount -t proc proc "$root/proc"; else mount --bind "/$m" "$root/$m"; fi
  mounted+=("$root/$m")
done
rm -rf "$root/tmp/rehearsal-out"
rc=0
unshare --net chroot "$root" /usr/bin/env -i PATH="$venv/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME=/root \
  OUT=/tmp/rehearsal-out GPU_CHECK_DRY_RUN=1 GPU_CHECK_SIDE_BY_SIDE=1 SIDE_BY_SIDE_BUDGET_S="$budget" \
  bash -c 'cd /repo && bash bench/gpu_check.sh' || rc=$?
rm -rf bench/logs/rehearsal && mkdir -p bench/logs/rehearsal
cp -a "$root/tmp/rehearsal-out/." bench/logs/rehearsal/ 2>/dev/null || true
echo "$prog: gpu_check.sh exit $rc in the Ubuntu 24.04 rehearsal; its files are in bench/logs/rehearsal/"
exit $rc
