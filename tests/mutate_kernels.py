#!/usr/bin/env python3
"""Mutation testing of the CUDA kernels against the simulated kernel tests, and of the CPU reference
(the specification the kernels are tested against) against its own tests.

Each mutant is one small change to one line of kernels/*.cu (or a device helper header): a comparison
flipped (< and <=, > and >=, == and !=), + and - swapped, && and ||, an off-by-one (+ 1 / - 1
dropped), += turned into =, max and min swapped, a negation dropped, a barrier or fence deleted.
For every mutant the script writes the changed file into a copy of the tree, rebuilds
kernel_tests_sim there and runs it; the mutant is *killed* when a test fails (or crashes, or hangs
past the timeout) in any of the thread orders CI runs, or in kernel_tests_sim_fence (the simulator's
fence check; not with --sanitize), and *survives* when every test passes in all of them. A mutant that does not compile is not counted. A survivor is either a gap in the tests or
an equivalent change (one no input can tell apart); the report lists them so that a person decides.

--suite reference mutates host/cpu_layers.cpp instead and runs the CPU reference's own tests
(convnet_tests' CpuLayers.* and GradCheck.*: hand-computed values, direct loops, gradient checks)
and then kernel_tests_sim (each kernel against its CPU twin: a twin that drifts from the kernel
fails there); with --all-tests, every test of convnet_tests (minutes a mutant: for survivors).

  tests/mutate_kernels.py list [--suite S] [--files F...]     the mutants, one per line
  tests/mutate_kernels.py run --work DIR [--suite kernels|reference] [--files F...]
                          [--sample N --seed S] [--jobs 2] [--only ID...] [--out results.jsonl]
                          [--sanitize] [--all-tests] [--timeout 90]

`run` copies the source tree (git ls-files) into DIR/src, configures DIR/build (DIR/build-asan with
--sanitize) with CONVNET_CUDA=OFF and leaves the repository untouched; results are appended to --out,
one JSON object per mutant, and a summary (killed / survived / did not compile, and every survivor
with its line) is printed at the end.
Reruns skip mutants already in --out.
"""

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KERNEL_FILES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "kernels").glob("*.cu")) + [
    "kernels/last_block.h",
    "kernels/launch.h",
    "kernels/shape_check.h",
    "kernels/xent.h",
]
REFERENCE_FILES = ["host/cpu_layers.cpp"]  # cpu_layers.h only declares
# tests/simt/CMakeLists.txt SIMT_THREAD_ORDERS
ORDERS = ["forward", "reverse", "shuffle:20240607", "interleave:20261130"]
REFERENCE_TESTS = "CpuLayers.*:GradCheck.*"  # convnet_tests' tests of the CPU reference itself
KERNEL_TESTS = Path("tests") / "kernels" / "kernel_tests_sim"
# The kernel tests on kernels built for the simulator's fence check (tests/simt/README.md); GCC only,
# and not in the ASan build.
FENCE_TESTS = Path("tests") / "kernels" / "kernel_tests_sim_fence"
CPU_TESTS = Path("tests") / "convnet_tests"


@dataclasses.dataclass
class Check:
    """One test run that can kill a mutant: a binary of the build, its thread order and gtest filter."""
    label: str  # what killed_in says
    binary: Path  # relative to the build folder
    order: str
    gtest_filter: str = ""
    timeout: float = 90  # seconds; a mutant may loop forever


def suite_checks(suite, all_tests, sanitize=False):
    """The test runs of a suite, cheapest first (the first failure ends a mutant)."""
    if suite == "kernels":
        checks = [Check(order, KERNEL_TESTS, order) for order in ORDERS]
        # About five times slower than one order: last.
        return checks if sanitize else checks + [Check("fences", FENCE_TESTS, "forward", timeout=300)]
    # All of convnet_tests takes about two minutes in one process (the CPU backend training to 90%).
    cpu = Check("convnet_tests", CPU_TESTS, "forward", timeout=600) if all_tests else \
        Check("convnet_tests " + REFERENCE_TESTS, CPU_TESTS, "forward", REFERENCE_TESTS)
    # The reference is sequential: one thread order of the kernel tests is enough to compare with it.
    return [cpu, Check("kernel_tests_sim forward", KERNEL_TESTS, "forward")]


def suite_targets(checks):
    """The ninja targets the checks run, each once, in order."""
    return list(dict.fromkeys(check.binary.name for check in checks))

# (name, regex, replacement). Binary operators are matched only with a space on each side, as the code
# is formatted, so template brackets (static_cast<float>), shifts and -> are left alone.
OPERATORS = [
    ("ror", re.compile(r"(?<= )<(?= )"), "<="),
    ("ror", re.compile(r"(?<= )<=(?= )"), "<"),
    ("ror", re.compile(r"(?<= )>(?= )"), ">="),
    ("ror", re.compile(r"(?<= )>=(?= )"), ">"),
    ("ror", re.compile(r"(?<= )==(?= )"), "!="),
    ("ror", re.compile(r"(?<= )!=(?= )"), "=="),
    ("aor", re.compile(r"(?<= )\+(?= )"), "-"),
    ("aor", re.compile(r"(?<= )-(?= )"), "+"),
    ("lcr", re.compile(r"(?<= )&&(?= )"), "||"),
    ("lcr", re.compile(r"(?<= )\|\|(?= )"), "&&"),
    ("off_by_one", re.compile(r" [+-] 1(?![0-9.xXuUfF])"), ""),
    ("asg", re.compile(r"(?<= )\+=(?= )"), "="),
    ("minmax", re.compile(r"\bfmaxf\("), "fminf("),
    ("minmax", re.compile(r"\bfminf\("), "fmaxf("),
    ("minmax", re.compile(r"(?<![\w:])max\("), "min("),
    ("minmax", re.compile(r"(?<![\w:])min\("), "max("),
    ("minmax", re.compile(r"\bstd::max\("), "std::min("),
    ("minmax", re.compile(r"\bstd::min\("), "std::max("),
    ("not", re.compile(r"(?<=[(\s])!(?=[A-Za-z_(])"), ""),
]
# Whole statements deleted: barriers and fences (the simulator catches a missing __syncthreads through
# thread orders and poisoned shared memory; a missing fence it cannot see, see tests/simt/README.md).
DELETED_STATEMENTS = re.compile(r"^(\s*)(__syncthreads\(\);|__syncwarp\([^;]*\);|__threadfence\(\);)")


@dataclasses.dataclass
class Mutant:
    file: str
    line: int  # 1-based
    col: int  # 0-based column of the change
    op: str
    before: str  # the whole original line, stripped
    mutated: str  # the whole mutated line, as it replaces the original

    @property
    def after(self):
        return self.mutated.strip() or "(empty)"

    @property
    def id(self):
        return f"{self.file}:{self.line}:{self.col}:{self.op}"


def code_spans(line, in_block_comment):
    """Column ranges of `line` that are code: not comments, not string or character literals.
    Returns (spans, still_in_block_comment)."""
    spans, start, i, n = [], None, 0, len(line)
    while i < n:
        if in_block_comment:
            end = line.find("*/", i)
            if end < 0:
                return spans, True
            in_block_comment, i = False, end + 2
            continue
        if start is None:
            start = i
        two = line[i:i + 2]
        if two == "//":
            break
        if two == "/*":
            spans.append((start, i))
            start, in_block_comment, i = None, True, i + 2
            continue
        if line[i] in "\"'":
            spans.append((start, i))
            quote, i = line[i], i + 1
            while i < n and line[i] != quote:
                i += 2 if line[i] == "\\" else 1
            start, i = None, i + 1
            continue
        i += 1
    if start is not None:
        spans.append((start, i if i <= n else n))
    return spans, in_block_comment


def mutants_of(path, text):
    """Every mutant of one file's text, in line order."""
    out, in_comment = [], False
    for number, line in enumerate(text.split("\n"), start=1):
        spans, next_in_comment = code_spans(line, in_comment)
        in_comment = next_in_comment
        stripped = line.strip()
        if not spans or stripped.startswith("#"):
            continue
        deleted = DELETED_STATEMENTS.match(line)
        if deleted:
            mutated = line[:deleted.end(1)] + line[deleted.end():]
            out.append(Mutant(path, number, deleted.end(1), "delete", stripped, mutated))
        for op, pattern, replacement in OPERATORS:
            for begin, end in spans:
                for m in pattern.finditer(line, begin, end):
                    mutated = line[:m.start()] + replacement + line[m.end():]
                    out.append(Mutant(path, number, m.start(), op, stripped, mutated))
    return out


def all_mutants(files):
    result = []
    for f in files:
        result.extend(mutants_of(f, (ROOT / f).read_text()))
    return result


def apply(mutant, text):
    lines = text.split("\n")
    original = lines[mutant.line - 1]
    if original.strip() != mutant.before:
        raise SystemExit(f"mutate_kernels.py: error: {mutant.file}:{mutant.line} changed since the mutants were listed")
    lines[mutant.line - 1] = mutant.mutated
    return "\n".join(lines)


def run_checked(cmd, **kwargs):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    if result.returncode != 0:
        sys.exit(f"mutate_kernels.py: error: `{' '.join(map(str, cmd))}` failed:\n{result.stdout[-4000:]}")
    return result


def sync_copy(source, target):
    """Copies source over target when their contents differ, giving it a fresh modification time; one
    already the same is left as it is (and not rebuilt). ninja rebuilds by time: a copy keeping the
    repository's older time would leave in the build an object compiled from what target held
    before, such as the mutant of a sweep killed half-way."""
    data = source.read_bytes()
    if target.is_file() and target.read_bytes() == data:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    shutil.copymode(source, target)
    return True


def prepare(work, sanitize, targets):
    src, build = work / "src", work / ("build-asan" if sanitize else "build")
    files = run_checked(["git", "-C", str(ROOT), "ls-files", "-z"]).stdout.split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            sync_copy(ROOT / f, src / f)
    run_checked(["cmake", "-S", str(src), "-B", str(build), "-G", "Ninja", "-DCONVNET_CUDA=OFF",
                 f"-DCONVNET_SANITIZE={'ON' if sanitize else 'OFF'}"])
    run_checked(["ninja", "-C", str(build), *targets])
    return src, build


def run_tests(binary, order, gtest_filter, jobs, timeout):
    """"passed" when every test (of the filter, when one is given) passes in this thread order,
    "failed" when one fails or crashes, "timed out" when they are still running after `timeout`
    seconds (a mutant may loop forever; a loaded machine may also just be slow: the report says which
    kills were timeouts, for a person to run again). The tests are split over `jobs` processes; the
    first failure stops them all."""
    procs = []
    args = [str(binary), "--gtest_brief=1", "--gtest_fail_fast"]
    if gtest_filter:
        args.append(f"--gtest_filter={gtest_filter}")
    for shard in range(jobs):
        env = dict(os.environ, SIMT_THREAD_ORDER=order, GTEST_TOTAL_SHARDS=str(jobs), GTEST_SHARD_INDEX=str(shard))
        procs.append(subprocess.Popen(args, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    deadline, result = time.monotonic() + timeout, "passed"
    while result == "passed" and any(p.poll() is None for p in procs):
        if any(p.poll() not in (None, 0) for p in procs):
            result = "failed"
        elif time.monotonic() >= deadline:
            result = "timed out"
        else:
            time.sleep(0.05)
    if result == "passed" and any(p.poll() != 0 for p in procs):
        result = "failed"
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, 9)
            p.wait()
    return result


def evaluate(mutant, src, build, targets, checks, jobs, timeout=None):
    """(status, the label of the check that killed it or None, whether that was its timeout)."""
    path = src / mutant.file
    original = path.read_text()
    try:
        path.write_text(apply(mutant, original))
        built = subprocess.run(["ninja", "-C", str(build), *targets], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=600).returncode == 0
        if not built:
            return "no_compile", None, False
        for check in checks:
            result = run_tests(build / check.binary, check.order, check.gtest_filter, jobs, timeout or check.timeout)
            if result != "passed":
                return "killed", check.label, result == "timed out"
        return "survived", None, False
    finally:
        path.write_text(original)
        os.utime(path)  # newer than the mutant's object file, so the next build recompiles it


def main():
    parser = argparse.ArgumentParser(description="Mutation testing of kernels/ against kernel_tests_sim, "
                                                 "and of the CPU reference against its tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("list", "run"):
        p = sub.add_parser(name)
        p.add_argument("--suite", choices=["kernels", "reference"], default="kernels",
                       help="kernels/ against kernel_tests_sim (default), or host/cpu_layers against "
                            "its own tests and kernel_tests_sim")
        p.add_argument("--files", nargs="+", default=None,
                       help="files to mutate, relative to the root (default: the suite's)")
        p.add_argument("--only", nargs="+", default=None, help="mutant ids (file:line:col:op) to run")
        p.add_argument("--sample", type=int, default=0, help="run this many mutants drawn at random")
        p.add_argument("--seed", type=int, default=1)
    run_p = sub.choices["run"]
    run_p.add_argument("--work", type=Path, required=True, help="scratch folder for the copy and its build")
    run_p.add_argument("--out", type=Path, default=Path("mutants.jsonl"))
    run_p.add_argument("--jobs", type=int, default=2)
    run_p.add_argument("--sanitize", action="store_true",
                       help="build with AddressSanitizer + UBSan, as CI's second build (slower; catches mutants "
                            "that only read or write out of bounds)")
    run_p.add_argument("--all-tests", action="store_true",
                       help="--suite reference: every test of convnet_tests, not only the reference's own "
                            "(minutes a mutant: for the survivors of a first pass)")
    run_p.add_argument("--timeout", type=float, default=None,
                       help="seconds per test run (default 90; 600 for all of convnet_tests)")
    args = parser.parse_args()

    if getattr(args, "all_tests", False) and args.suite != "reference":
        parser.error("--all-tests: only with --suite reference")
    if args.files is None:
        args.files = KERNEL_FILES if args.suite == "kernels" else REFERENCE_FILES
    for f in args.files:
        if not (ROOT / f).is_file():
            parser.error(f"--files: no such file: {f}")
    mutants = all_mutants(args.files)
    if args.only:
        wanted = set(args.only)
        mutants = [m for m in mutants if m.id in wanted]
        missing = wanted - {m.id for m in mutants}
        if missing:
            parser.error(f"--only: no such mutant: {sorted(missing)[0]}")
    if args.sample:
        # In the drawn order, so that a run stopped early has still tested a uniform random sample.
        mutants = random.Random(args.seed).sample(mutants, min(args.sample, len(mutants)))
    if args.command == "list":
        for m in mutants:
            print(f"{m.id}\t{m.before}\t=>\t{m.after}")
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0

    done = {}
    if args.out.exists():
        for number, line in enumerate(args.out.read_text().splitlines(), start=1):
            try:
                done[json.loads(line)["id"]] = json.loads(line)
            except (ValueError, KeyError):
                sys.exit(f"mutate_kernels.py: error: {args.out}:{number}: not a result line")
    work = args.work.resolve()
    # Stopped by SIGTERM (kill, timeout), the run still puts the mutated file back: SystemExit runs
    # evaluate's `finally`, as Ctrl-C's KeyboardInterrupt does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    checks = suite_checks(args.suite, args.all_tests, args.sanitize)
    targets = suite_targets(checks)
    src, build = prepare(work, args.sanitize, targets)
    with args.out.open("a") as out:
        for index, m in enumerate(mutants, start=1):
            if m.id in done:
                continue
            started = time.monotonic()
            status, killer, timed_out = evaluate(m, src, build, targets, checks, args.jobs, args.timeout)
            row = dict(dataclasses.asdict(m), id=m.id, after=m.after, status=status, killed_in=killer,
                       timed_out=timed_out, suite=args.suite, sanitize=args.sanitize,
                       seconds=round(time.monotonic() - started, 1))
            out.write(json.dumps(row) + "\n")
            out.flush()
            done[m.id] = row
            print(f"[{index}/{len(mutants)}] {status:10} {m.id}  {m.after}", flush=True)

    rows = [done[m.id] for m in mutants if m.id in done]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("killed", "survived", "no_compile")}
    valid = counts["killed"] + counts["survived"]
    print(f"\n{len(rows)} mutants: {counts['killed']} killed, {counts['survived']} survived, "
          f"{counts['no_compile']} did not compile; score {counts['killed']}/{valid}"
          + (f" = {100.0 * counts['killed'] / valid:.1f}%" if valid else ""))
    for r in rows:
        if r["status"] == "survived":
            print(f"  survived {r['id']}: {r['before']}  =>  {r['after']}")
    for r in rows:
        if r.get("timed_out"):
            print(f"  killed by a timeout (run it again on a quiet machine to be sure): {r['id']}: {r['after']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
