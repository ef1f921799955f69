# Putting files into the device tool's $OUT, which brings back what is there when a command ends or is
# killed: each file is written under a dot-name beside its final name and then renamed, so a kill
# never leaves half a file there. Sourced by bench/gpu_check.sh and bench/side_by_side.sh.

# place SRC DEST: DEST becomes a copy of SRC; nothing happens when there is no SRC.
place() {
  local tmp
  tmp="$(dirname "$2")/.$(basename "$2")"
  [ -f "$1" ] && cp "$1" "$tmp" && mv -f "$tmp" "$2"
}

# place_tar DEST TAR_ARGS...: DEST becomes a gzipped tar of TAR_ARGS (e.g. -C DIR .). Exit 1 is GNU
# tar's "file changed as we read it" (a log still being written): the archive is whole, and placed.
place_tar() {
  local dest=$1 tmp
  tmp="$(dirname "$1")/.$(basename "$1")"
  shift
  tar -czf "$tmp" "$@" 2>/dev/null
  [ $? -le 1 ] && mv -f "$tmp" "$dest"
}
