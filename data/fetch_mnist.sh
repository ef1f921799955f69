#!/usr/bin/env bash
# Download the four MNIST files into data/mnist (or the folder given as $1) and verify them.
#
# Usage: data/fetch_mnist.sh [DIR]
#
# Each file is fetched gzipped (the reader reads .gz directly, so the .gz is what is kept) from the
# mirrors below, tried in order, with curl or wget. Its decompressed MD5 must match data/MD5SUMS;
# a file that does not is removed and the next mirror is tried. Files already present and verified
# (as name.gz or uncompressed) are not downloaded again, so a rerun needs no network. Without any
# working mirror the script prints one line saying so and exits 1.
set -euo pipefail

mirrors=(
  "https://ossci-datasets.s3.amazonaws.com/mnist"
  "https://storage.googleapis.com/cvdf-datasets/mnist"
)
names=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sums_file="$script_dir/MD5SUMS"
dest=${1:-$script_dir/mnist}

die() {
  echo "fetch_mnist.sh: $*" >&2
  exit 1
}

[[ -r $sums_file ]] || die "cannot read checksums file $sums_file"
# A folder this run creates is removed again when it ends without the four files, so a failed
# (offline) run leaves nothing behind.
created_dest=0
if [[ ! -d $dest ]]; then
  mkdir -p -- "$dest" 2>/dev/null || die "cannot create folder $dest"
  created_dest=1
fi
cleanup() {
  if [[ $created_dest == 1 ]]; then rmdir -- "$dest" 2>/dev/null || true; fi
}
trap cleanup EXIT

# Expected MD5 of the uncompressed file $1, from MD5SUMS.
expected_md5() {
  awk -v name="$1" '$2 == name { print $1 }' "$sums_file"
}

# MD5 of the content of $1, decompressed when it is gzipped (its name ends in .gz, or $2 is "gz": a
# download in progress, NAME.gz.part); "bad" when gunzip fails.
content_md5() {
  local sum
  if [[ $1 == *.gz || ${2:-} == gz ]]; then
    sum=$(gunzip -c "$1" 2>/dev/null | md5sum) || sum=bad
  else
    sum=$(md5sum <"$1") || sum=bad
  fi
  echo "${sum%% *}"
}

# Downloads URL $1 to file $2; non-zero on any failure (nothing is printed: the caller reports).
download() {
  if command -v curl >/dev/null 2>&1; then
    curl --fail --silent --location --connect-timeout 15 --retry 2 --output "$2" "$1" 2>/dev/null
  elif command -v wget >/dev/null 2>&1; then
    wget --quiet --timeout=15 --tries=2 --output-document="$2" "$1"
  else
    die "neither curl nor wget is installed; install one, or copy the four files into $dest by hand"
  fi
}

# Makes $dest/$1.gz present and verified; returns 0 when a verified copy was already there, under
# either naming (train-images-idx3-ubyte or train-images.idx3-ubyte, raw or .gz). Candidates are
# checked in the order the reader picks them (host/idx.cpp find_idx_file: the first that exists), so
# "verified" is said of the file training will read; one that fails is moved aside to NAME.bad (a
# hand-copied file is not deleted) and the next is checked.
fetch_one() {
  local name=$1 want existing mirror dotted
  want=$(expected_md5 "$name")
  [[ -n $want ]] || die "no checksum for $name in $sums_file"
  dotted=${name/-idx/.idx}
  for existing in "$dest/$name" "$dest/$name.gz" "$dest/$dotted" "$dest/$dotted.gz"; do
    [[ -f $existing ]] || continue
    if [[ $(content_md5 "$existing") == "$want" ]]; then
      echo "$existing: present and verified"
      return 0
    fi
    echo "$existing: MD5 mismatch, moved aside to $existing.bad" >&2
    mv -f -- "$existing" "$existing.bad"
  done
  local part="$dest/$name.gz.part"
  for mirror in "${mirrors[@]}"; do
    rm -f -- "$part"
    download "$mirror/$name.gz" "$part" || continue
    if [[ $(content_md5 "$part" gz) == "$want" ]]; then
      mv -- "$part" "$dest/$name.gz"
      echo "$dest/$name.gz: downloaded and verified"
      return 0
    fi
    echo "$name.gz from $mirror failed MD5 verification; removed it, trying the next mirror" >&2
  done
  rm -f -- "$part"
  die "could not download $name.gz from any mirror; are you offline? copy the four files into $dest by hand"
}

for name in "${names[@]}"; do
  fetch_one "$name"
done
created_dest=0
echo "MNIST is ready in $dest (set MNIST_DIR=$dest or pass --data $dest)"
