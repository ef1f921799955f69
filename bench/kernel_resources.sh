#!/usr/bin/env bash
# What each kernel asks of an H100/H200 (sm_90), known without a GPU, recorded in bench/RESULTS.md.
#
#   bench/kernel_resources.sh [BATCH]   builds kernel_resources in build/ (the README's build; needs
#                                       nvcc) and runs it with --check on the seed network's steps at
#                                       BATCH (default 128): ptxas' registers, shared memory, spills and
#                                       __launch_bounds__ per kernel, joined with the launch shapes the
#                                       simulator records, and the theoretical occupancy and waves on 132
#                                       SMs of each launch (bench/kernel_resources.cpp).
# Only a passing check is recorded: one summary row in "Kernel resources on sm_90", and the whole table
# in "Kernel resources on sm_90: latest table" (replaced each run; git keeps the earlier ones). The
# table also goes to bench/logs/kernel_resources.md.
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-128}
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target kernel_resources >/dev/null
if [ ! -x build/bench/kernel_resources ]; then
  echo "kernel_resources.sh: build/bench/kernel_resources was not built (it needs nvcc, and the tests enabled)" >&2
  exit 1
fi
mkdir -p bench/logs
cmd="build/bench/kernel_resources --ptxas-dir build/bench/ptxas --batch $batch --check"
if ! $cmd > bench/logs/kernel_resources.md; then
  echo "kernel_resources.sh: the check failed (above); nothing recorded" >&2
  exit 1
fi
cat bench/logs/kernel_resources.md

machine="$(nproc)-core $(uname -m) dev VM, no GPU (compile time: ptxas for sm_90, launch shapes from the simulator)"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- kernels host/gpu_backend.cpp host/fused_plan.cpp \
  host/fused_plan.h host/model.cpp bench/kernel_resources.cpp bench/ptxas_report.cmake tests/simt || echo "+dirty")
# The nvcc the build used (CMake's cache), not whichever is on PATH.
nvcc=$(sed -n 's/^CMAKE_CUDA_COMPILER:[A-Z]*=//p' build/CMakeCache.txt)
nvcc_version=$("${nvcc:-nvcc}" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')
python3 - "$(date -u +%F)" "$machine" "$commit" "bench/kernel_resources.sh $batch" "$nvcc_version" <<'EOF'
import pathlib, subprocess, sys
date, machine, commit, command, nvcc = sys.argv[1:]
table = pathlib.Path("bench/logs/kernel_resources.md").read_text()
rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
        if line.startswith("| `")]
fused = [r for r in rows if "fused train" in r[1]]
def pct(r): return int(r[8].rstrip("%"))
low = min(fused, key=pct)
regs = max(rows, key=lambda r: int(r[4]))
summary = (f"{date}|{machine}|{commit}|`{command}`|{nvcc}|{len(fused)} ({len({r[0] for r in fused})} kernels)|"
           f"{low[0]} {low[8]} ({low[9]})|{regs[0]} {regs[4]}|none|passed")
subprocess.run([sys.executable, "bench/append_row.py", "Kernel resources on sm_90",
                "date|machine|commit|command|nvcc|fused training step: kernel launch shapes (kernels)|"
                "lowest theoretical occupancy there (limited by)|most registers/thread|spills, stack frames|"
                "check (bounds, residency, spills)", summary], check=True)
section = pathlib.Path("bench/logs/kernel_resources.section.md")
section.write_text(f"Date {date}, commit {commit}, command `{command}`, nvcc {nvcc}; {machine}.\n\n" + table)
subprocess.run([sys.executable, "bench/append_row.py", "--replace-section", "Kernel resources on sm_90: latest table",
                str(section)], check=True)
EOF
echo "recorded in bench/RESULTS.md: \"Kernel resources on sm_90\" and its latest table"
