#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz with clang and run each for SECONDS on a fresh copy of
# its seed corpus; print executions, corpus size and result per target; exit 1 on any finding.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     TARGET: idx model cli image (default: all four)
#
# A finding is anything libFuzzer stops on: a crash or ASan/UBSan report, an undocumented exception
# or broken invariant (fuzz_util.h), a leak, an input over 1 s (-timeout=1), over 2 GB resident
# (-rss_limit_mb=2048), or a single allocation over the target's -malloc_limit_mb (64 MB for idx,
# model and cli, where no valid input of max_len bytes needs as much). Its input stays in FUZZ_WORK/<target>/artifacts/
# and its path is printed; reproduce with: BUILD_DIR/tests/fuzz/fuzz_<target> <that file>.
#
# Environment: BUILD_DIR (default build-fuzz), FUZZ_WORK (default BUILD_DIR/fuzz-work), CXX_FUZZ /
# CC_FUZZ (default clang++-14 / clang-14). Needs Debian's clang-14 and libclang-rt-14-dev
# (libFuzzer). The grown corpora are left in FUZZ_WORK/<target>/corpus; nothing is committed.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  echo "usage: tests/fuzz/run.sh SECONDS [idx|model|cli|image ...]" >&2
  exit 2
fi
budget=$1
shift
targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(idx model cli image)

build=${BUILD_DIR:-build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}
cxx=${CXX_FUZZ:-clang++-14}
cc=${CC_FUZZ:-clang-14}

echo "== configure and build the fuzz targets ($cxx, ASan + UBSan + libFuzzer) in $build"
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
  -DCONVNET_FUZZ=ON -DCONVNET_SANITIZE=ON -DCONVNET_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target fuzz

# Only this run's targets are cleared, so separate runs (one CI step per target) keep each other's
# findings.
rm -rf "$work/seeds"
mkdir -p "$work"
"$build/tests/fuzz/make_seeds" "$work/seeds"

# Per target: max_len (bytes), malloc limit (MB), extra flags. max_len leaves room around the
# largest seed; the model and cli targets compare many constants, where value profiles help.
options() {
  case $1 in
    idx) echo "-max_len=8192 -malloc_limit_mb=64" ;;
    model) echo "-max_len=4096 -malloc_limit_mb=64 -use_value_profile=1 -dict=tests/fuzz/model.dict" ;;
    cli) echo "-max_len=512 -malloc_limit_mb=64 -use_value_profile=1 -dict=tests/fuzz/cli.dict" ;;
    # Valid images up to kMaxImagePixels (32 Mpx) take 2-4.5 s under ASan (0.1-0.4 s Release) and
    # stb allocates up to 9 bytes a declared pixel before it reads any, so: inputs of at most 4 KB
    # (a valid image that small decodes to a few Mpx, well under 1 s) and libFuzzer's default malloc
    # limit (the RSS limit); a GIF header alone may declare 32 Mpx, 300 MB of canvas.
    image) echo "-max_len=4096" ;;
    *) echo "unknown target '$1' (expected idx, model, cli or image)" >&2; return 1 ;;
  esac
}

findings=0
summary=()
for t in "${targets[@]}"; do
  opts=$(options "$t")
  dir=$work/$t
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$work/seeds/$t"/* "$dir/corpus/"
  seeds=$(ls "$dir/corpus" | wc -l)
  echo "== fuzz_$t: ${budget} s from $seeds seeds ($opts)"
  rc=0
  # shellcheck disable=SC2086
  "$build/tests/fuzz/fuzz_$t" -timeout=1 -rss_limit_mb=2048 $opts -max_total_time="$budget" \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  files=$(ls "$dir/corpus" | wc -l)
  bytes=$(du -sb "$dir/corpus" | cut -f1)
  artifacts=$(ls "$dir/artifacts")
  if [[ $rc -ne 0 || -n $artifacts ]]; then
    findings=$((findings + 1))
    result="FINDING (exit $rc)"
    echo "   FINDING in fuzz_$t; the fuzzer's report (full log: $dir/log):"
    grep -E "==FUZZ FINDING==|ERROR: |runtime error|SUMMARY: " "$dir/log" | head -8 | sed 's/^/     /'
    for a in $artifacts; do echo "     input: $dir/artifacts/$a"; done
  else
    result="ok"
  fi
  line=$(printf "%-6s %6s s %12s executions %6s corpus files %9s corpus bytes  %s" \
    "$t" "$budget" "${execs:-?}" "$files" "$bytes" "$result")
  echo "   $line"
  summary+=("$line")
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [[ $findings -gt 0 ]]; then
  echo "== $findings target(s) with findings; inputs under $work/*/artifacts/" >&2
  exit 1
fi
echo "== no findings"
