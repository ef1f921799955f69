#!/usr/bin/env python3
"""Tests of bench/gpu_check.sh on its GPU-machine path, which no machine of CI has.

    test_gpu_check.py CXX        CXX: a C++ compiler (one test builds a binary whose library is gone)

Each test runs the script in a scratch copy of the repository (bench/gpu_check.sh, gpu_libs.sh and
RESULTS.md, whose CPU row is the accuracy anchor) with a fake GPU: nvidia-smi and compute-sanitizer on
PATH, a bundle of fake convnet and gtest binaries in .gpu-bundle/bundle.tar.gz, and a fake
scripts/profile.sh. The side-by-side step is off (GPU_CHECK_SIDE_BY_SIDE=0; test_side_by_side.py
covers side_by_side.sh) but in one test, which runs it with that file's fakes. What is checked: a passing machine passes with every row and the test counts
of all shards; a skipped GPU test, a failing shard and an accuracy off the anchor fail their rows; a
hang fails its own step inside GPU_CHECK_DEADLINE_S, which no step outlives; a library found nowhere
stops the check with the folders searched; a tool off PATH is found in the tool folders; summary rows
reach $OUT as they come, and $OUT holds only what the device tool brings back whole (8 plain files at
most; the logs in one tarball); ncu leaves the GPU's clocks alone. Also bench/rehearse_device.sh's
checks of its settings, made before it touches anything.
"""
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

from ctest_main import run_for_ctest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_side_by_side as sbs  # noqa: E402  its fakes of convnet's --log runs and the Python trainers
CXX = sys.argv[1] if len(sys.argv) > 1 else "c++"
TESTS_PER_SUITE = 10

FAKE_NVIDIA_SMI = """#!/usr/bin/env bash
case "$*" in
  -L) echo "GPU 0: Fake H100 (UUID: GPU-0)" ;;
  *name,driver_version*) echo "Fake H100, 580.00" ;;
  *clocks.max.sm*) echo 1980 ;;
  *compute_mode*) echo "${FAKE_COMPUTE_MODE:-Default}" ;;
  "") echo "fake nvidia-smi" ;;
  *) exit 4 ;;
esac
"""

FAKE_SANITIZER = """#!/usr/bin/env bash
echo "sanitizer $*" >> "$FAKE_CALLS"
[ "$1" = --version ] && { echo "fake compute-sanitizer"; exit 0; }
[ "${FAKE_SANITIZER_HANG:-}" = 1 ] && exec sleep 600
echo "========= ERROR SUMMARY: 0 errors"
"""

# A gtest suite of 10 tests, split over the shards as gtest splits them (test i runs on shard i % N).
# FAKE_SKIP=<suite>: one test of shard 0 skips; FAKE_FAIL=<suite>: the last shard fails one test;
# FAKE_HANG=<suite>: shard 0 hangs in Fake.Hangs.
FAKE_GTEST = """#!/usr/bin/env bash
name=$(basename "$0")
total=${GTEST_TOTAL_SHARDS:-1} index=${GTEST_SHARD_INDEX:-0}
echo "$name shard $index of $total" >> "$FAKE_CALLS"
echo "$name sees CONVNET_BIN=${CONVNET_BIN-unset} CONVNET_SOURCE_DIR=${CONVNET_SOURCE_DIR-unset}" >> "$FAKE_CALLS"
mine=0
for ((i = 0; i < %d; i++)); do (( i %% total == index )) && mine=$((mine + 1)); done
echo "[==========] Running $mine tests."
if [ "${FAKE_HANG:-}" = "$name" ] && [ "$index" = 0 ]; then echo "[ RUN      ] Fake.Hangs"; exec sleep 600; fi
if [ "${FAKE_FAIL:-}" = "$name" ] && [ "$index" = $((total - 1)) ]; then
  echo "[  FAILED  ] Fake.Fails"; echo "[  PASSED  ] $((mine - 1)) tests."; exit 1
fi
if [ "${FAKE_SKIP:-}" = "$name" ] && [ "$index" = 0 ]; then
  echo "[  PASSED  ] $((mine - 1)) tests."; echo "[  SKIPPED ] 1 test, listed below:"; exit 0
fi
echo "[  PASSED  ] $mine tests."
""" % TESTS_PER_SUITE

FAKE_CONVNET = """#!/usr/bin/env bash
echo "convnet $*" >> "$FAKE_CALLS"
case " $* " in
  " devices "|*" --log "*) exec python3 "$FAKES/sbs_convnet.py" "$@" ;;  # the side-by-side's runs
  *" --timing "*)
    echo "kernel                               calls   us/step   share"
    echo "all kernels                          14.00     48.10  100.0%"
    echo "step, first launch to last (events)            61.20" ;;
  *" train "*)
    [ "${FAKE_HANG_TRAIN:-}" = 1 ] && exec sleep 600
    echo "Epoch 15/15"
    echo "Test accuracy: ${FAKE_ACCURACY:-0.9871}"
    echo "Total time: 0.450 s" ;;
esac
"""

FAKE_PROFILE = """#!/usr/bin/env bash
echo "profile.sh NCU_FLAGS=${NCU_FLAGS-unset}" >> "$FAKE_CALLS"
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
mkdir -p "$out"
printf '| kernel | ms |\\n|---|---|\\n| conv_input_forward_kernel | 0.01 |\\n| head_train_kernel | 0.01 |\\n' > "$out/kernels.md"
"""

BINARIES = ["convnet", "convnet_tests", "simt_tests", "kernel_tests_sim", "kernel_tests_gpu"]
STEPS = ["binaries", "libraries", "convnet_tests", "simt_tests", "kernel_tests_sim", "kernel_tests_gpu",
         "train recipe", "timing", "ncu profile", "side-by-side",
         "sanitizer memcheck", "sanitizer racecheck", "sanitizer synccheck", "sanitizer initcheck"]


class GpuCheck(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="gpu_check_test_"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.repo = os.path.join(self.tmp, "repo")
        for folder in ("bench", "scripts", ".gpu-bundle"):
            os.makedirs(os.path.join(self.repo, folder))
        for name in ("gpu_check.sh", "gpu_libs.sh", "out_files.sh", "RESULTS.md", "side_by_side.sh",
                     "side_by_side.py", "append_row.py"):
            shutil.copy(os.path.join(ROOT, "bench", name), os.path.join(self.repo, "bench"))
        sbs.write_exe(os.path.join(self.repo, "scripts", "profile.sh"), FAKE_PROFILE)
        self.fakes = os.path.join(self.tmp, "fakes")
        os.makedirs(self.fakes)
        sbs.write_exe(os.path.join(self.fakes, "nvidia-smi"), FAKE_NVIDIA_SMI)
        sbs.write_exe(os.path.join(self.fakes, "compute-sanitizer"), FAKE_SANITIZER)
        sbs.write_exe(os.path.join(self.fakes, "sbs_convnet.py"), sbs.FAKE_CONVNET)
        sbs.write_exe(os.path.join(self.fakes, "trainer.py"), sbs.FAKE_TRAINER)
        sbs.write_exe(os.path.join(self.fakes, "python"), sbs.FAKE_PYTHON)
        self.staging = os.path.join(self.tmp, "staging")
        os.makedirs(os.path.join(self.staging, "lib"))
        for name in BINARIES:
            sbs.write_exe(os.path.join(self.staging, name), FAKE_CONVNET if name == "convnet" else FAKE_GTEST)
        self.out = os.path.join(self.tmp, "out")
        self.calls = os.path.join(self.tmp, "calls.txt")
        open(self.calls, "w").close()

    def pack(self):
        with tarfile.open(os.path.join(self.repo, ".gpu-bundle", "bundle.tar.gz"), "w:gz") as tar:
            for name in ["lib"] + BINARIES:
                tar.add(os.path.join(self.staging, name), arcname=name)
        with open(os.path.join(self.repo, ".gpu-bundle", "COMMIT"), "w") as f:
            f.write("abc1234\n")

    def run_check(self, timeout=120, **env):
        self.pack()
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("GPU_CHECK_", "GPU_LIBS_", "FAKE_", "OMP_", "SIDE_BY_SIDE_", "KERAS_", "NCU"))
                and k not in ("LD_LIBRARY_PATH", "PYTHON", "CONVNET_BIN", "CONVNET_SOURCE_DIR")}
        full.update({"PATH": self.fakes + os.pathsep + os.environ["PATH"], "OUT": self.out, "FAKES": self.fakes,
                     "FAKE_CALLS": self.calls, "GPU_CHECK_SIDE_BY_SIDE": "0", "MNIST_DIR": "/fake-mnist",
                     "PYTHON": os.path.join(self.fakes, "python"), "FP32_PEAK_TFLOPS": ""})
        full.update(env)
        started = time.monotonic()
        r = subprocess.run(["bash", os.path.join(self.repo, "bench", "gpu_check.sh")], env=full,
                           capture_output=True, text=True, timeout=timeout)
        r.seconds = time.monotonic() - started
        return r

    def run_hanging(self, deadline, **env):
        """Runs the check with a fake that hangs and the given deadline, which it must fail inside;
        returns the summary's rows."""
        r = self.run_check(GPU_CHECK_DEADLINE_S=str(deadline), **env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(r.seconds, deadline)
        return self.summary()

    def summary(self):
        """{step: (result, detail)} from $OUT/summary.txt, once $OUT is checked to be what the device tool
        brings back whole: at most 8 plain files, named in letters, digits, '.', '_' and '-'."""
        names = sorted(os.listdir(self.out))
        self.assertLessEqual(len(names), 8, names)
        for name in names:
            self.assertRegex(name, r"^[A-Za-z0-9._-]+$")
            self.assertFalse(name.startswith("."), names)  # no half-written file left behind
            self.assertTrue(os.path.isfile(os.path.join(self.out, name)), name)
        rows = {}
        with open(os.path.join(self.out, "summary.txt")) as f:
            for line in f:
                for step in STEPS:
                    if line.startswith(step + " ") and line[22:23] == " ":
                        result, rest = line[23:].split(None, 1)
                        rows[step] = (result, rest.split("s  ", 1)[1].strip())
        return rows

    def fetched_log(self, name):
        """A log as the device tool brings it back: from $OUT/gpu_check_logs.tar.gz."""
        with tarfile.open(os.path.join(self.out, "gpu_check_logs.tar.gz")) as tar:
            return tar.extractfile("./" + name).read().decode()

    def calls_text(self):
        with open(self.calls) as f:
            return f.read()

    def test_a_passing_gpu_machine_passes_every_step(self):
        r = self.run_check()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = self.summary()
        self.assertEqual(list(rows), STEPS)
        for step in STEPS:
            if step != "side-by-side":
                self.assertEqual(rows[step][0], "ok", (step, rows[step]))
        self.assertEqual(rows["binaries"][1], "prebuilt by bench/gpu_bundle.sh at commit abc1234")
        self.assertIn("; commit unknown, binaries built at abc1234; ", r.stdout)
        self.assertEqual(rows["libraries"][1], "all found")
        for suite in ("convnet_tests", "simt_tests", "kernel_tests_sim", "kernel_tests_gpu"):
            self.assertEqual(rows[suite][1], f"{TESTS_PER_SUITE} passed, 0 skipped", suite)
        self.assertEqual(rows["side-by-side"], ("skipped", "GPU_CHECK_SIDE_BY_SIDE=0"))
        self.assertIn("test accuracy 0.9871 (CPU anchor 0.9868, target within 0.2 points), total 0.450 s",
                      rows["train recipe"][1])
        self.assertEqual(rows["timing"][1], "--timing 20: 61.20 us a step from events (table in timing.log)")
        self.assertEqual(rows["ncu profile"][1], "2 kernels in profile/kernels.md")
        self.assertEqual(sorted(os.listdir(self.out)), ["gpu_check_logs.tar.gz", "ncu_kernels.md", "summary.txt",
                                                        "timing.log"])
        with open(os.path.join(self.out, "summary.txt")) as f:
            self.assertTrue(f.read().rstrip().endswith("(logs: gpu_check_logs.tar.gz in $OUT; tar -xzf it for the "
                                                       "logs named above)"))
        self.assertIn("[  PASSED  ]", self.fetched_log("convnet_tests.log"))
        self.assertIn("| head_train_kernel |", self.fetched_log("profile/kernels.md"))
        # The image's system, C library and Python, which bench/rehearse_device.sh copies.
        env = self.fetched_log("environment.txt")
        for line in (r"^PRETTY_NAME=.+", r"^ldd .*\d+\.\d+$", r"^Python 3\.\d+\.\d+$"):
            self.assertRegex(env, "(?m)" + line)
        calls = self.calls_text()
        # ncu leaves the lent machine's clocks alone (its default locks them to base while it profiles).
        self.assertIn("profile.sh NCU_FLAGS=--clock-control none\n", calls)
        self.assertIn("convnet train --device gpu --data /fake-mnist", calls)
        self.assertEqual(calls.count("sanitizer --tool"), 4)
        # The CPU suites run as shards, one per core up to 8; simt_tests and the GPU suite as one process.
        shards = min(8, int(subprocess.run(["nproc"], capture_output=True, text=True,
                                           env={"PATH": os.environ["PATH"]}).stdout))
        self.assertIn(f"kernel_tests_sim shard {shards - 1} of {shards}", calls)
        self.assertIn(f"convnet_tests shard {shards - 1} of {shards}", calls)
        self.assertIn("kernel_tests_gpu shard 0 of 1", calls)
        self.assertIn("simt_tests shard 0 of 1", calls)
        # The bundle was built in another folder on another machine: the tests are told where the
        # program and the source tree's scripts are here.
        self.assertIn(f"convnet_tests sees CONVNET_BIN={self.repo}/build-bundle/convnet "
                      f"CONVNET_SOURCE_DIR={self.repo}\n", calls)
        # The bundle is unpacked beside it, not into it: .gpu-bundle stays what was carried.
        self.assertEqual(sorted(os.listdir(os.path.join(self.repo, ".gpu-bundle"))), ["COMMIT", "bundle.tar.gz"])
        self.assertTrue(os.path.isfile(os.path.join(self.repo, "build-bundle", "kernel_tests_gpu")))

    def test_the_side_by_side_step_appends_its_table_and_reports_the_targets(self):
        results_md = os.path.join(self.repo, "bench", "RESULTS.md")

        def side_by_side_rows():
            with open(results_md) as f:
                return [line for line in f.read().split("\n## Side-by-side")[1].splitlines() if line.startswith("| 20")]

        before = side_by_side_rows()
        r = self.run_check(GPU_CHECK_SIDE_BY_SIDE="1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        result, detail = self.summary()["side-by-side"]
        self.assertEqual(result, "ok", detail)
        # The fakes: keras is not measurable (seeds 1-3 at batch 128, seed 1 at 1024), the rest is.
        self.assertTrue(detail.startswith("budget 240 s; 4 runs not measured; convnet --graphs on: 22.0 ms/epoch: met, "
                                          "0.400 s recipe: met, 13.64x PyTorch eager: met, 4.55x torch.compile: met"),
                        detail)
        self.assertIn("| convnet --graphs on | 128 |", r.stdout)  # the table is printed before the summary
        self.assertIn("side_by_side_results.jsonl", os.listdir(self.out))
        with open(os.path.join(self.out, "side_by_side.md")) as f:
            self.assertIn("| convnet --graphs on | 128 |", f.read())
        after = side_by_side_rows()
        self.assertEqual(after[:len(before)], before)
        appended = after[len(before):]
        self.assertEqual(len(appended), 10)  # 5 rows x batch 128 and 1024
        self.assertTrue(all("Fake H100 (driver 580.00)" in line for line in appended))
        # The scratch copy has no .git, as the device tool's copy: the bundle's commit names the binaries.
        self.assertTrue(all("| unknown (convnet built at abc1234) |" in line for line in appended), appended[0])

    def test_a_gpu_that_takes_one_process_gets_convnet_tests_unsharded_and_ncu_flags_are_the_callers(self):
        r = self.run_check(FAKE_COMPUTE_MODE="Exclusive_Process", NCU_FLAGS="--cache-control none")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("convnet_tests shard 0 of 1", self.calls_text())
        self.assertIn("profile.sh NCU_FLAGS=--cache-control none\n", self.calls_text())

    def test_a_tool_off_path_is_found_in_the_tool_dirs_newest_first(self):
        tools = os.path.join(self.tmp, "tools")
        for version in ("2024.9", "2024.10"):
            os.makedirs(os.path.join(tools, version))
            shutil.copy(os.path.join(self.fakes, "compute-sanitizer"), os.path.join(tools, version))
        os.remove(os.path.join(self.fakes, "compute-sanitizer"))
        # This machine's own compute-sanitizer, if any, off PATH too.
        path = [d for d in os.environ["PATH"].split(os.pathsep) if not os.path.exists(os.path.join(d, "compute-sanitizer"))]
        r = self.run_check(PATH=os.pathsep.join([self.fakes] + path),
                           GPU_CHECK_TOOL_DIRS=f"{self.tmp}/nothing-here {tools}/*")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.calls_text().count("sanitizer --tool"), 4)
        self.assertIn(f"compute-sanitizer: {tools}/2024.10/compute-sanitizer\n", self.fetched_log("environment.txt"))

    def test_a_skipped_gpu_test_a_failing_shard_and_an_accuracy_off_the_anchor_fail_their_rows(self):
        r = self.run_check(FAKE_SKIP="kernel_tests_gpu", FAKE_FAIL="kernel_tests_sim", FAKE_ACCURACY="0.9820")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        rows = self.summary()
        self.assertEqual(rows["kernel_tests_gpu"], ("FAIL", "1 GPU tests SKIPPED on a GPU machine"))
        self.assertEqual(rows["kernel_tests_sim"],
                         ("FAIL", f"exit 1; {TESTS_PER_SUITE - 1} passed, 0 skipped (see kernel_tests_sim.log)"))
        self.assertEqual(rows["train recipe"][0], "FAIL")
        self.assertIn("test accuracy 0.9820 (CPU anchor 0.9868", rows["train recipe"][1])
        self.assertEqual(rows["convnet_tests"][0], "ok")
        self.assertIn("[  FAILED  ] Fake.Fails", self.fetched_log("kernel_tests_sim.log"))

    def test_a_hanging_suite_fails_its_row_inside_the_deadline_and_names_the_test(self):
        # 60 s deadline, 30 s kept for the summary: the suite gets what is left, about 30 s.
        rows = self.run_hanging(60, FAKE_HANG="kernel_tests_gpu")
        self.assertEqual(rows["kernel_tests_gpu"][0], "FAIL")
        self.assertRegex(rows["kernel_tests_gpu"][1], r"^a shard ran past (2\d|30) s; 0 passed")
        self.assertTrue(self.fetched_log("kernel_tests_gpu.log").rstrip().endswith("[ RUN      ] Fake.Hangs"))
        for step in ("train recipe", "timing", "ncu profile"):
            self.assertEqual(rows[step], ("FAIL", "not run: the 60 s GPU_CHECK_DEADLINE_S is spent (120 s of it "
                                                  "kept for compute-sanitizer)"), step)
        self.assertEqual(rows["side-by-side"][0], "skipped")
        self.assertEqual(rows["sanitizer memcheck"], ("FAIL", "not run: the 60 s GPU_CHECK_DEADLINE_S is spent"))

    def test_a_stuck_sanitizer_tool_skips_the_others(self):
        rows = self.run_hanging(50, FAKE_SANITIZER_HANG="1", GPU_CHECK_SANITIZER_S="0")
        self.assertEqual(rows["sanitizer memcheck"][0], "FAIL")
        ran = re.match(r"^ran past (\d+) s \(see sanitizer_memcheck.log\)$", rows["sanitizer memcheck"][1])
        self.assertTrue(ran, rows["sanitizer memcheck"][1])
        for tool in ("racecheck", "synccheck", "initcheck"):
            self.assertEqual(rows["sanitizer " + tool], ("skipped", f"not run: memcheck ran past its {ran.group(1)} s"),
                             tool)
        self.assertEqual(self.calls_text().count("sanitizer --tool"), 1)

    def test_a_hanging_training_run_fails_its_row_inside_the_deadline_and_leaves_compute_sanitizer_its_share(self):
        # 200 s deadline, 30 s kept for the summary and 150 s for compute-sanitizer: the recipe gets ~20 s.
        rows = self.run_hanging(200, FAKE_HANG_TRAIN="1", GPU_CHECK_SANITIZER_S="150")
        self.assertEqual(rows["train recipe"][0], "FAIL")
        self.assertRegex(rows["train recipe"][1], r"^ran past (1\d|20) s \(see train_recipe.log\)$")
        for step in ("timing", "ncu profile"):
            self.assertEqual(rows[step], ("FAIL", "not run: the 200 s GPU_CHECK_DEADLINE_S is spent (150 s of it "
                                                  "kept for compute-sanitizer)"), step)
        for tool in ("memcheck", "racecheck", "synccheck", "initcheck"):
            self.assertEqual(rows["sanitizer " + tool][0], "ok", tool)

    def test_a_bad_knob_is_one_error_line_before_anything_is_touched(self):
        logs = os.path.join(self.repo, "bench", "logs", "gpu_check")
        os.makedirs(logs)
        open(os.path.join(logs, "earlier.log"), "w").close()
        r = self.run_check(GPU_CHECK_SANITIZER_S="2m")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "gpu_check.sh: GPU_CHECK_SANITIZER_S=2m: expected a whole number of seconds\n")
        self.assertEqual(os.listdir(logs), ["earlier.log"])
        self.assertFalse(os.path.exists(self.out))

    def test_a_library_found_nowhere_stops_the_check_with_the_folders_searched(self):
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        with open(os.path.join(src, "gone.cpp"), "w") as f:
            f.write('extern "C" int gpucheck_gone() { return 0; }\n')
        with open(os.path.join(src, "main.cpp"), "w") as f:
            f.write('extern "C" int gpucheck_gone();\nint main() { return gpucheck_gone(); }\n')
        lib = os.path.join(src, "libgpucheckgone.so.1")
        built = subprocess.run([CXX, "-shared", "-fPIC", "-o", lib, "-Wl,-soname,libgpucheckgone.so.1", os.path.join(src, "gone.cpp")],
                               capture_output=True, text=True)
        if built.returncode != 0:
            self.skipTest(f"{CXX} cannot build a shared library here: {built.stderr.strip()[:200]}")
        program = os.path.join(self.staging, "kernel_tests_gpu")
        os.remove(program)
        subprocess.run([CXX, "-o", program, os.path.join(src, "main.cpp"), "-L" + src, "-l:libgpucheckgone.so.1",
                        "-Wl,-rpath,$ORIGIN/lib", "-Wl,--disable-new-dtags"], check=True)
        os.remove(lib)
        r = self.run_check()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        rows = self.summary()
        self.assertEqual(list(rows), ["binaries", "libraries"])
        self.assertEqual(rows["libraries"][0], "FAIL")
        self.assertIn("build-bundle/kernel_tests_gpu needs libgpucheckgone.so.1: not found", rows["libraries"][1])
        self.assertTrue(rows["libraries"][1].endswith("(see libraries.log; stopped here)"), rows["libraries"][1])
        log = self.fetched_log("libraries.log")
        self.assertIn("gpu_libs.sh: searched after the loader's own path: ", log)
        self.assertIn("== cuBLAS on this machine", log)
        self.assertNotIn("convnet_tests shard", self.calls_text())


class Rehearsal(unittest.TestCase):
    """bench/rehearse_device.sh's checks of its settings and of the bundle, made before it touches
    anything. The rehearsal itself needs root, debootstrap, the Ubuntu archive and PyPI, and minutes:
    it is run by hand, before a device run."""

    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="rehearsal_test_"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.makedirs(os.path.join(self.tmp, "repo", "bench"))
        self.script = os.path.join(self.tmp, "repo", "bench", "rehearse_device.sh")
        shutil.copy(os.path.join(ROOT, "bench", "rehearse_device.sh"), self.script)
        self.chroot = os.path.join(self.tmp, "chroot")

    def test_bad_settings_or_no_bundle_are_one_error_line_before_anything_is_touched(self):
        cases = [({"SIDE_BY_SIDE_BUDGET_S": "2m"}, "SIDE_BY_SIDE_BUDGET_S=2m: expected a whole number of seconds"),
                 ({"REHEARSAL_ROOT": "chroot"}, "REHEARSAL_ROOT=chroot: expected an absolute path other than /"),
                 ({"REHEARSAL_ROOT": "/"}, "REHEARSAL_ROOT=/: expected an absolute path other than /"),
                 ({}, "no .gpu-bundle/bundle.tar.gz here: run bench/gpu_bundle.sh first")]
        for env, line in cases:
            with self.subTest(env=env):
                full = {k: v for k, v in os.environ.items() if k not in ("REHEARSAL_ROOT", "SIDE_BY_SIDE_BUDGET_S")}
                full.update({"REHEARSAL_ROOT": self.chroot}, **env)
                r = subprocess.run(["bash", self.script], env=full, capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual((r.stdout, r.stderr), ("", "rehearse_device.sh: " + line + "\n"))
                self.assertFalse(os.path.exists(self.chroot))
                self.assertEqual(os.listdir(os.path.dirname(os.path.dirname(self.script))), ["bench"])


if __name__ == "__main__":
    load = unittest.defaultTestLoader.loadTestsFromTestCase
    sys.exit(run_for_ctest(unittest.TestSuite([load(GpuCheck), load(Rehearsal)])))
