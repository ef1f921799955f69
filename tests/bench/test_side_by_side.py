#!/usr/bin/env python3
"""Tests of the side-by-side benchmark (bench/side_by_side.sh and its Python parts).

    test_side_by_side.py GROUP      GROUP: Script, Data, Torch or Keras (one ctest test each)

Script  bench/side_by_side.sh end to end in a scratch copy of bench/, with fakes on PATH for
        nvidia-smi, the convnet binary and the Python trainers (a GPU machine is simulated, so the
        path that appends to RESULTS.md runs): the table's numbers, the rows that were not measured
        and why, the --graphs probe, the budget, dry runs never appending. Standard library only.
Data    bench_common.py: the IDX reader and the Keras split (needs numpy).
Torch   bench/torch_convnet.py: the network's shapes, parameters and initialisation, the padded and
        masked last batch giving the partial batch's gradient, short real runs, eager and compiled
        (one training and one evaluation graph), and the compile note (needs torch; the runs need
        MNIST_DIR).
Keras   bench/keras_seed.py: the seed's model has the same layers and parameters, a short real run,
        its error lines (needs jax, and keras or KERAS_WHEELS; the run needs MNIST_DIR).
A group whose every test skipped exits 77, which ctest reports as skipped; the reasons are printed.
"""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import unittest
from unittest import mock

from ctest_main import run_for_ctest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "bench")
sys.path.insert(0, BENCH)

# ---- fakes for the Script group --------------------------------------------------------------------

FAKE_NVIDIA_SMI = """#!/usr/bin/env bash
[ "${FAKE_GPU:-1}" = 1 ] || exit 9
case "$*" in
  -L) echo "GPU 0: Fake H100 (UUID: GPU-0)" ;;
  *clocks.max.sm*) echo 1980 ;;
  *name,driver_version*) echo "Fake H100, 580.00" ;;
  *) exit 4 ;;
esac
"""

# Epoch 1 takes 0.5 s; later epochs 20 + seed ms with graphs (30 + seed without); 2 ms of each epoch
# is validation. Test accuracy 0.99<seed>0, total 0.4 s.
FAKE_CONVNET = """#!/usr/bin/env python3
import json, os, sys
a = sys.argv[1:]
if a[:1] == ["devices"]:
    print("CUDA runtime 13.0, driver 13.0, cuBLAS 13.1.0")
    print("device 0: Fake H100, 132 SMs, 79.6 GiB, compute capability 9.0")
    sys.exit(0)
flag = lambda name, default=None: a[a.index(name) + 1] if name in a else default
if "--graphs" in a and os.environ.get("FAKE_NO_GRAPHS") == "1":
    sys.exit(print("convnet: error: unknown flag --graphs for 'convnet train' (see convnet train --help)", file=sys.stderr) or 2)
if flag("--data", "").startswith("/nonexistent"):
    sys.exit(print("convnet: error: no MNIST there", file=sys.stderr) or 2)
seed, batch, epochs = int(flag("--seed")), int(flag("--batch-size")), int(flag("--epochs"))
base = 0.020 if flag("--graphs", "on") == "on" else 0.030
with open(flag("--log"), "a") as log:
    for e in range(1, epochs + 1):
        s = 0.5 if e == 1 else base + 0.001 * seed
        log.write(json.dumps({"epoch": e, "loss": 0.1, "accuracy": 0.9, "val_accuracy": 0.98, "seconds": s,
                              "images_per_second": 54000 / (s - 0.002), "device": "GPU (fake)"}) + "\\n")
print(f"Training on 54000 images, validating on 6000, {-(-54000 // batch)} steps of {batch} per epoch")
print(f"Test loss: 0.0300\\nTest accuracy: 0.99{seed}0\\nTotal time: 0.400 s")
"""

# torch rows: eager 300 ms/epoch, compile 100 ms; keras: exit 3 (not measurable). FAKE_SLEEP delays
# the torch rows; every trainer call is counted in $FAKE_CALLS.
FAKE_TRAINER = """#!/usr/bin/env python3
import json, os, sys, time
which, a = sys.argv[1], sys.argv[2:]
with open(os.environ["FAKE_CALLS"], "a") as f:
    f.write(which + " " + " ".join(a) + "\\n")
flag = lambda name: a[a.index(name) + 1]
if which == "keras":
    sys.exit(print("keras_seed.py: error: not measurable here: keras is not installed (No module named 'keras')",
                   file=sys.stderr) or 3)
time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
mode, seed = flag("--mode"), int(flag("--seed"))
if mode == "compile" and os.environ.get("FAKE_COMPILE_FAILS") == "1":
    sys.exit(print("Traceback (most recent call last):\\n  File \\"x.py\\", line 1, in <module>\\n"
                   "torch._inductor.exc.InductorError: InvalidCxxCompiler: No working C++ compiler found\\n\\n"
                   "Set TORCHDYNAMO_VERBOSE=1 for the internal stack trace\\n", file=sys.stderr) or 1)
ms = 300.0 if mode == "eager" else 100.0
print("epoch lines go to stderr", file=sys.stderr)
print(json.dumps({"row": "pytorch " + mode, "framework": "pytorch fake", "device": "Fake H100",
                  "batch": int(flag("--batch-size")), "seed": seed, "epochs": 15, "train_images": 54000,
                  "val_images": 6000, "test_images": 10000, "epoch_seconds": [2.0] + [ms / 1e3] * 14,
                  "train_seconds": [1.9] + [ms / 1e3 - 0.01] * 14, "steady_ms_per_epoch": ms,
                  "images_per_second": round(54000 / (ms / 1e3 - 0.01), 1), "first_epoch_seconds": 2.0,
                  "steady_includes_warmup": False, "final_val_accuracy": 0.98, "test_accuracy": 0.99 + seed / 1e3,
                  "test_loss": 0.03, "recipe_seconds": 6.5, "note": "fake"}))
"""

FAKE_PYTHON = """#!/usr/bin/env bash
case "$1" in
  bench/torch_convnet.py) shift; exec python3 "$FAKES/trainer.py" torch "$@" ;;
  bench/keras_seed.py) shift; exec python3 "$FAKES/trainer.py" keras "$@" ;;
  -c) [ "$2" = "import torch" ] && exit 0 ;;
esac
exec python3 "$@"
"""


def write_exe(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


class Sandbox:
    """A scratch repo (bench/ scripts + a RESULTS.md) and the fakes."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="side_by_side_test_")
        self.bench = os.path.join(self.dir, "repo", "bench")
        os.makedirs(self.bench)
        for name in ("side_by_side.sh", "side_by_side.py", "append_row.py", "out_files.sh"):
            shutil.copy(os.path.join(BENCH, name), self.bench)
        self.results_md = os.path.join(self.bench, "RESULTS.md")
        self.original = "# Results\n\n## Earlier section\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        with open(self.results_md, "w") as f:
            f.write(self.original)
        self.fakes = os.path.join(self.dir, "fakes")
        os.makedirs(self.fakes)
        write_exe(os.path.join(self.fakes, "nvidia-smi"), FAKE_NVIDIA_SMI)
        write_exe(os.path.join(self.fakes, "convnet"), FAKE_CONVNET)
        write_exe(os.path.join(self.fakes, "trainer.py"), FAKE_TRAINER)
        write_exe(os.path.join(self.fakes, "python"), FAKE_PYTHON)
        self.calls = os.path.join(self.dir, "calls.txt")
        open(self.calls, "w").close()
        self.out = os.path.join(self.dir, "out")

    def run(self, drop=(), **env):
        """Runs side_by_side.sh with the fakes, env added and the variables in drop removed."""
        e = {k: v for k, v in os.environ.items() if not k.startswith(("SIDE_BY_SIDE_", "FAKE_", "KERAS_"))}
        e.update({"PATH": self.fakes + os.pathsep + os.environ["PATH"], "FAKES": self.fakes,
                  "FAKE_CALLS": self.calls, "CONVNET_BIN": os.path.join(self.fakes, "convnet"),
                  "PYTHON": os.path.join(self.fakes, "python"), "SIDE_BY_SIDE_OUT": self.out,
                  "MNIST_DIR": "/nonexistent-mnist", "FP32_PEAK_TFLOPS": ""})
        e.pop("OUT", None)
        e.update(env)
        for name in drop:
            e.pop(name)
        return subprocess.run(["bash", os.path.join(self.bench, "side_by_side.sh")], env=e, capture_output=True,
                              text=True, timeout=120)

    def results_text(self):
        with open(self.results_md) as f:
            return f.read()

    def appended_rows(self):
        text = self.results_text()
        section = text[text.index("## Side-by-side"):]
        return [line for line in section.splitlines() if line.startswith("| 20")]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


class Script(unittest.TestCase):
    def setUp(self):
        self.box = Sandbox()
        self.addCleanup(self.box.cleanup)

    def test_gpu_run_appends_every_row_with_its_numbers_device_date_commit_and_command(self):
        r = self.box.run()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)  # keras was not measured
        rows = self.box.appended_rows()
        self.assertTrue(self.box.results_text().startswith(self.box.original))
        self.assertEqual(len(rows), 10, "\n".join(rows))  # 5 rows x batch 128 and 1024
        today = time.strftime("%Y-%m-%d", time.gmtime())
        by_name = {}
        for row in rows:
            c = cells(row)
            self.assertEqual(len(c), 16, row)
            self.assertEqual(c[0], today)
            self.assertEqual(c[1], "Fake H100 (driver 580.00)")
            self.assertEqual(c[2], "unknown")  # the scratch copy is no git checkout
            self.assertTrue(c[3].startswith("`") and c[3].endswith("`") and len(c[3]) > 10, c[3])
            by_name[(c[4], c[5])] = c
        mine = by_name[("convnet --graphs on", "128")]
        self.assertIn("--graphs on", mine[3])
        self.assertIn("--seed", mine[3])
        self.assertEqual(mine[6], "1,2,3")
        self.assertEqual(mine[7], "22.0 (21.0–23.0)")  # median of the seeds' epochs 2..15
        self.assertEqual(mine[8], str(round(54000 / 0.020)))  # training part: 22 ms - 2 ms validation
        self.assertEqual(mine[9], "0.400")
        self.assertEqual(mine[10], "99.20% ± 0.10")
        # 132 SMs x 1980 MHz x 128 x 2 = 66.9 TFLOP/s; 16.15 MFLOP x 54,000 -> 13.03 ms; 22.0 / 13.03
        self.assertEqual(mine[11], "1.69")
        self.assertEqual(mine[12], "13.64x")  # 300 / 22
        self.assertEqual(mine[13], "4.55x")  # 100 / 22
        self.assertEqual(mine[14], "0.500")
        off = by_name[("convnet --graphs off", "128")]
        self.assertEqual(off[7], "32.0 (31.0–33.0)")
        self.assertEqual(by_name[("pytorch eager", "128")][12], "1.00x")
        self.assertEqual(by_name[("pytorch compile", "1024")][12], "3.00x")
        self.assertEqual(by_name[("convnet --graphs on", "1024")][6], "1")
        self.assertIn("(one seed)", by_name[("convnet --graphs on", "1024")][10])
        keras = by_name[("keras/jax", "128")]
        self.assertTrue(keras[7].startswith("not measured (exit 3: keras_seed.py: error: not measurable here: "
                                            "keras is not installed"), keras[7])
        self.assertEqual(keras[8:14], ["not measured"] * 6)
        # Seeds 2 and 3 were skipped after seed 1 failed: the reason is given once, not again behind
        # "first run failed: ".
        self.assertNotIn("first run failed", keras[7])
        self.assertIn("FP32 peak 66.9 TFLOP/s = 132 SMs (convnet devices) x 1980 MHz", r.stdout)
        self.assertIn("FP32 floor: 13.03 ms per epoch of 54000 training images", r.stdout)
        self.assertIn("22.0 ms/epoch: met, 0.400 s recipe: met, 13.64x PyTorch eager: met, 4.55x torch.compile: met",
                      r.stdout)

    def test_a_row_whose_first_run_failed_is_not_run_again(self):
        r = self.box.run(SIDE_BY_SIDE_ROWS="keras-jax", SIDE_BY_SIDE_BATCHES="128 1024")
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(self.box.calls) as f:
            calls = f.read().splitlines()
        self.assertEqual(len(calls), 1, calls)
        with open(os.path.join(self.box.out, "results.jsonl")) as f:
            runs = [json.loads(line) for line in f if '"row"' in line]
        self.assertEqual([(x["batch"], x["seed"]) for x in runs], [(128, 1), (128, 2), (128, 3), (1024, 1)])
        self.assertTrue(all("first run failed: exit 3" in x["not_measured"] for x in runs[1:]), runs)

    def test_a_failed_run_is_noted_by_its_error_line_not_the_hints_printed_after_it(self):
        r = self.box.run(FAKE_COMPILE_FAILS="1", SIDE_BY_SIDE_ROWS="torch-compile", SIDE_BY_SIDE_BATCHES="128",
                         SIDE_BY_SIDE_SEEDS="1")
        self.assertEqual(r.returncode, 1, r.stderr)
        with open(os.path.join(self.box.out, "results.jsonl")) as f:
            runs = [json.loads(line) for line in f if '"row"' in line]
        self.assertEqual([x["not_measured"] for x in runs],
                         ["exit 1: torch._inductor.exc.InductorError: InvalidCxxCompiler: No working C++ compiler found"])

    def test_a_binary_without_graphs_reports_the_graphs_off_row_as_not_measured(self):
        r = self.box.run(FAKE_NO_GRAPHS="1", SIDE_BY_SIDE_ROWS="convnet-graphs-on convnet-graphs-off",
                         SIDE_BY_SIDE_BATCHES="128", SIDE_BY_SIDE_SEEDS="1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        rows = {cells(x)[4]: cells(x) for x in self.box.appended_rows()}
        self.assertEqual(set(rows), {"convnet (no --graphs flag)", "convnet --graphs off"})
        self.assertNotIn("--graphs", rows["convnet (no --graphs flag)"][3])
        self.assertEqual(rows["convnet (no --graphs flag)"][7], "21.0")
        self.assertEqual(rows["convnet --graphs off"][7], "not measured (binary has no --graphs flag)")

    def test_the_budget_stops_a_run_and_the_rest_are_not_measured(self):
        start = time.time()
        r = self.box.run(FAKE_SLEEP="30", SIDE_BY_SIDE_BUDGET_S="6", SIDE_BY_SIDE_BATCHES="128",
                         SIDE_BY_SIDE_ROWS="convnet-graphs-on torch-eager torch-compile")
        self.assertLess(time.time() - start, 25)
        self.assertEqual(r.returncode, 1, r.stderr)
        rows = {(cells(x)[4], cells(x)[6]): cells(x) for x in self.box.appended_rows()}
        # Seed 1 of every row comes first: convnet's ran, eager's was stopped, compile's never started.
        mine = rows[("convnet --graphs on", "1")]
        self.assertEqual(mine[7], "21.0")
        self.assertIn("seed 2 not measured (the 6 s budget was spent (SIDE_BY_SIDE_BUDGET_S)); seed 3 not measured",
                      mine[15])
        eager = rows[("pytorch eager", "—")][7]
        self.assertEqual(eager, "not measured (stopped at the 6 s budget (SIDE_BY_SIDE_BUDGET_S); "
                                "the 6 s budget was spent (SIDE_BY_SIDE_BUDGET_S))")
        self.assertEqual(rows[("pytorch compile", "—")][7],
                         "not measured (the 6 s budget was spent (SIDE_BY_SIDE_BUDGET_S))")

    def test_a_dry_run_prints_the_table_and_never_appends(self):
        r = self.box.run(SIDE_BY_SIDE_DRY_RUN="1", SIDE_BY_SIDE_BATCHES="128", SIDE_BY_SIDE_SEEDS="1",
                         SIDE_BY_SIDE_ROWS="convnet-graphs-on torch-eager")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("DRY RUN (not for bench/RESULTS.md)", r.stdout)
        self.assertIn("DRY RUN, not judged: targets", r.stdout)
        self.assertIn("| convnet --graphs on | 128 | 1 | 21.0 |", r.stdout)
        self.assertEqual(self.box.results_text(), self.box.original)
        with open(self.box.calls) as f:
            self.assertIn("--epochs 2 --seed 1 --limit-train 1024 --limit-eval 1000", f.read())
        # Nor can its results be appended later by hand.
        again = subprocess.run([sys.executable, os.path.join(self.box.bench, "side_by_side.py"), "table",
                                os.path.join(self.box.out, "results.jsonl"), "--append"],
                               capture_output=True, text=True)
        self.assertEqual(again.returncode, 2)
        self.assertIn("never appended", again.stderr)
        self.assertEqual(self.box.results_text(), self.box.original)

    def test_on_the_device_tool_out_gets_three_files_and_results_cut_short_still_make_a_table(self):
        fetch = os.path.join(self.box.dir, "device-out")
        r = self.box.run(drop=("SIDE_BY_SIDE_OUT",), OUT=fetch, SIDE_BY_SIDE_BATCHES="128", SIDE_BY_SIDE_SEEDS="1",
                         SIDE_BY_SIDE_ROWS="convnet-graphs-on torch-eager")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The device tool brings back 8 files at most: these three, not one per run.
        self.assertEqual(sorted(os.listdir(fetch)),
                         ["side_by_side.md", "side_by_side_results.jsonl", "side_by_side_runs.tar.gz"])
        with tarfile.open(os.path.join(fetch, "side_by_side_runs.tar.gz")) as tar:
            self.assertIn("runs/convnet-graphs-on-b128-s1.out", tar.getnames())
        with open(os.path.join(fetch, "side_by_side.md")) as f:
            self.assertIn("| convnet --graphs on | 128 | 1 | 21.0 |", f.read())
        logs = os.path.join(self.box.dir, "repo", "bench", "logs", "side_by_side")
        self.assertTrue(os.path.isfile(os.path.join(logs, "runs", "torch-eager-b128-s1.out")))
        # The meta line comes first, so the first run's line alone makes a table (a run killed after it).
        with open(os.path.join(fetch, "side_by_side_results.jsonl")) as f:
            lines = f.readlines()
        self.assertIn('"meta"', lines[0])
        cut = os.path.join(self.box.dir, "cut.jsonl")
        with open(cut, "w") as f:
            f.writelines(lines[:2])
        t = subprocess.run([sys.executable, os.path.join(self.box.bench, "side_by_side.py"), "table", cut],
                           capture_output=True, text=True)
        self.assertEqual(t.returncode, 0, t.stderr)
        self.assertIn("| convnet --graphs on | 128 | 1 | 21.0 |", t.stdout)

    def test_without_a_gpu_it_refuses_unless_dry_run(self):
        r = self.box.run(FAKE_GPU="0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("no GPU", r.stderr)
        self.assertIn("SIDE_BY_SIDE_DRY_RUN=1", r.stderr)
        self.assertEqual(self.box.results_text(), self.box.original)
        dry = self.box.run(FAKE_GPU="0", SIDE_BY_SIDE_DRY_RUN="1", SIDE_BY_SIDE_BATCHES="128",
                           SIDE_BY_SIDE_SEEDS="1", SIDE_BY_SIDE_ROWS="convnet-graphs-on convnet-graphs-off")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertIn("--device cpu", dry.stdout)
        commands = re.findall(r"left\): (.*)", dry.stdout)
        self.assertEqual(len(commands), 2, dry.stdout)
        self.assertFalse([c for c in commands if "--graphs" in c], commands)  # not passed to a CPU backend
        self.assertIn("no FP32 peak", dry.stdout)
        self.assertEqual(self.box.results_text(), self.box.original)


# ---- bench_common ----------------------------------------------------------------------------------

def idx_bytes(dims, data):
    import struct
    return struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(">" + "I" * len(dims), *dims) + bytes(data)


class Data(unittest.TestCase):
    def setUp(self):
        try:
            import numpy  # noqa: F401
        except ImportError:
            self.skipTest("numpy is not installed")
        import bench_common
        self.bc = bench_common
        self.dir = tempfile.mkdtemp(prefix="bench_common_test_")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, raw, gz=False):
        import gzip
        path = os.path.join(self.dir, name + (".gz" if gz else ""))
        with (gzip.open if gz else open)(path, "wb") as f:
            f.write(raw)
        return path

    def test_reads_raw_and_gzipped_files_in_either_naming(self):
        pixels = list(range(2 * 28 * 28))
        pixels = [p % 256 for p in pixels]
        self.write("train-images-idx3-ubyte", idx_bytes((2, 28, 28), pixels), gz=True)
        self.write("train-labels.idx1-ubyte", idx_bytes((2,), [7, 3]))
        self.write("t10k-images-idx3-ubyte", idx_bytes((1, 28, 28), pixels[:784]))
        self.write("t10k-labels-idx1-ubyte", idx_bytes((1,), [5]), gz=True)
        d = self.bc.read_mnist(self.dir)
        self.assertEqual(d["train_images"].shape, (2, 28, 28))
        self.assertEqual(d["train_images"][1, 0, 0], 784 % 256)
        self.assertEqual(list(d["train_labels"]), [7, 3])
        self.assertEqual(list(d["test_labels"]), [5])
        self.assertTrue(d["train_images"].flags.writeable)

    def test_a_bad_file_is_an_error_naming_it(self):
        bad = {"short": b"\x00\x00", "float": idx_bytes((1,), [0])[:2] + b"\x0d\x01" + idx_bytes((1,), [0])[4:],
               "truncated": idx_bytes((3,), [1, 2])}
        for what, raw in bad.items():
            with self.subTest(what):
                path = self.write("x-" + what, raw)
                with self.assertRaises(self.bc.BenchError) as e:
                    self.bc.read_idx(path)
                self.assertIn(path, str(e.exception))
        with self.assertRaises(self.bc.BenchError) as e:
            self.bc.read_mnist(self.dir)
        self.assertIn("train-images-idx3-ubyte", str(e.exception))

    def test_the_split_is_keras_validation_split(self):
        self.assertEqual(self.bc.keras_split(60000, 0.1), (54000, 54000, 6000))
        self.assertEqual(self.bc.keras_split(60000, 0.1, 1024), (1024, 54000, 6000))
        self.assertEqual(self.bc.keras_split(1001, 0.1), (901, 901, 100))  # round(900.9)
        self.assertEqual(self.bc.steady_state([9.0, 1.0, 3.0, 2.0]), 2.0)
        self.assertEqual(self.bc.steady_state([9.0]), 9.0)


# ---- torch_convnet.py ------------------------------------------------------------------------------

def short_run(test, script, *args, timeout=300):
    """A short real run of bench/SCRIPT on the CPU: (its JSON result line, the process). Skips the
    test when MNIST_DIR is not set to the MNIST folder; fails it when the script fails."""
    data = os.environ.get("MNIST_DIR", "")
    if not data or not os.path.isdir(data):
        test.skipTest("MNIST_DIR is not set to the MNIST folder")
    r = subprocess.run([sys.executable, os.path.join(BENCH, script), "--device", "cpu", *args], capture_output=True,
                       text=True, timeout=timeout)
    test.assertEqual(r.returncode, 0, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1]), r


class Torch(unittest.TestCase):
    def setUp(self):
        try:
            import torch
        except ImportError:
            self.skipTest("PyTorch is not installed (pip install torch)")
        import torch_convnet
        self.torch, self.tc = torch, torch_convnet

    def test_the_network_has_the_seed_shapes_parameters_and_keras_initialisation(self):
        torch = self.torch
        torch.manual_seed(3)
        net = self.tc.build_net(torch)
        self.assertEqual(sum(p.numel() for p in net.parameters()), 56394)  # convnet summary --arch seed
        self.assertEqual(net(torch.zeros(2, 1, 28, 28)).shape, (2, 10))
        for layer, fan_in, fan_out in ((net.conv1, 9, 288), (net.conv2, 288, 576), (net.conv3, 576, 576),
                                       (net.dense, 64, 10)):
            limit = (6.0 / (fan_in + fan_out)) ** 0.5  # Glorot uniform
            w = layer.weight.detach()
            self.assertLessEqual(w.abs().max().item(), limit)
            self.assertGreater(w.abs().max().item(), 0.9 * limit)
            self.assertEqual(layer.bias.abs().max().item(), 0.0)
        self.assertEqual(net.dropout.p, 0.6)

    def test_a_padded_masked_batch_has_the_partial_batchs_loss_and_gradient(self):
        torch = self.torch
        torch.manual_seed(5)
        net = self.tc.build_net(torch).double()
        net.dropout.p = 0.0  # the same images through the same network, with and without padding
        model = self.tc.with_masked_loss(torch, net)
        x, y = torch.rand(112, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (112,))
        pad = 16
        xp = torch.cat([x, x[:1].expand(pad, -1, -1, -1)])
        yp = torch.cat([y, y[:1].expand(pad)])
        mask = torch.cat([torch.ones(112), torch.zeros(pad)]).double()

        def grads(*args):
            net.zero_grad()
            loss, loss_sum, correct = model(*args)
            loss.backward()
            return loss.item(), loss_sum.item(), correct.item(), [p.grad.clone() for p in net.parameters()]

        partial = grads(x, y, torch.ones(112, dtype=torch.float64))
        padded = grads(xp, yp, mask)
        reference = torch.nn.functional.cross_entropy(net(x), y).item()
        self.assertAlmostEqual(partial[0], reference, places=12)
        self.assertAlmostEqual(padded[0], partial[0], places=12)
        self.assertAlmostEqual(padded[1], partial[1], places=10)
        self.assertEqual(padded[2], partial[2])
        for a, b in zip(padded[3], partial[3]):
            self.assertTrue(torch.allclose(a, b, rtol=1e-12, atol=1e-15))

        batches = self.tc.Batches(torch, 1000, 128, torch.device("cpu"))
        self.assertEqual((batches.steps, batches.pad), (8, 24))
        rows, m = batches.step(batches.padded(torch, torch.arange(1000)), 7)
        self.assertEqual(rows.tolist(), list(range(896, 1000)) + [0] * 24)
        self.assertEqual(m.sum().item(), 104)

    def test_a_short_run_prints_one_json_result(self):
        result, _ = short_run(self, "torch_convnet.py", "--epochs", "2", "--limit-train", "2000", "--limit-eval", "200",
                              "--batch-size", "64", "--seed", "4")
        self.assertEqual((result["row"], result["batch"], result["seed"], result["epochs"]), ("pytorch eager", 64, 4, 2))
        self.assertEqual((result["train_images"], result["val_images"], result["test_images"]), (2000, 200, 200))
        self.assertEqual(len(result["epoch_seconds"]), 2)
        self.assertLess(result["train_seconds"][1], result["epoch_seconds"][1])
        self.assertAlmostEqual(result["steady_ms_per_epoch"], result["epoch_seconds"][1] * 1e3, places=2)
        self.assertGreater(result["test_accuracy"], 0.5)  # 2 epochs of 2000 images: 0.78-0.83 for seeds 4-7
        self.assertGreaterEqual(result["recipe_seconds"], sum(result["epoch_seconds"]))
        bad = subprocess.run([sys.executable, os.path.join(BENCH, "torch_convnet.py"), "--data", "/nonexistent"],
                             capture_output=True, text=True)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("torch_convnet.py: error: /nonexistent: no train-images-idx3-ubyte", bad.stderr)
        self.assertNotIn("compiled_graphs", result)  # eager

    def test_compile_mode_compiles_one_training_and_one_evaluation_graph_for_partial_batches(self):
        # 1000 = 15 * 64 + 40 training images and 200 = 3 * 64 + 8 validation and test images: every
        # pass ends in a partial batch, which the padding keeps at the one shape of its graph.
        result, r = short_run(self, "torch_convnet.py", "--mode", "compile", "--epochs", "2", "--limit-train", "1000",
                              "--limit-eval", "200", "--batch-size", "64", "--seed", "4", timeout=600)
        self.assertEqual((result["row"], result["batch"], result["train_images"], result["test_images"]),
                         ("pytorch compile", 64, 1000, 200))
        self.assertEqual(result["compiled_graphs"], 2, r.stderr)
        self.assertIn("torch.compile reduce-overhead, 2 compiled graphs, strict FP32", result["note"])
        # The CPU has no CUDA graphs: inductor skips them, and only a GPU run's note would call that out.
        self.assertGreater(result["cudagraph_skips"], 0)
        self.assertNotIn("skipped", result["note"])
        self.assertGreater(result["test_accuracy"], 0.3)
        self.assertEqual(len(result["epoch_seconds"]), 2)

    def test_a_compile_note_names_a_gpu_run_that_fell_back_from_cuda_graphs(self):
        cuda, cpu = self.torch.device("cuda"), self.torch.device("cpu")
        self.assertEqual(self.tc.compile_note(2, 0, cuda), ", 2 compiled graphs")
        self.assertEqual(self.tc.compile_note(1, 3, cpu), ", 1 compiled graph")
        with mock.patch("sys.stderr") as err:
            note = self.tc.compile_note(3, 2, cuda)
        self.assertEqual(note, ", 3 compiled graphs, CUDA graphs skipped 2 times: not the reduce-overhead baseline")
        self.assertIn("TORCH_LOGS=perf_hints", "".join(c.args[0] for c in err.write.call_args_list))
        self.assertIn("not counted", self.tc.compile_note(None, None, cuda))


# ---- keras_seed.py ---------------------------------------------------------------------------------

class Keras(unittest.TestCase):
    """Keras comes as the GPU machine gets it when KERAS_WHEELS names a folder of wheels
    (bench/keras_wheels.sh; CI sets it): keras_seed.py installs them, here into a scratch KERAS_SITE."""

    @classmethod
    def setUpClass(cls):
        cls.site = tempfile.mkdtemp(prefix="keras-site-")
        os.environ["KERAS_SITE"] = cls.site

    @classmethod
    def tearDownClass(cls):
        os.environ.pop("KERAS_SITE")
        shutil.rmtree(cls.site, ignore_errors=True)

    def setUp(self):
        import argparse
        import keras_seed
        try:
            self.jax, self.keras = keras_seed.import_stack(argparse.Namespace(device="cpu", tf32=False))
        except keras_seed.NotMeasurable as e:
            if os.environ.get("KERAS_WHEELS"):  # wheels were given: they must work, as on the GPU machine
                self.fail(f"KERAS_WHEELS={os.environ['KERAS_WHEELS']}: {e}")
            self.skipTest(f"Keras 3 with JAX cannot be imported: {e}")
        self.ks = keras_seed

    def run_keras_seed(self, *args):
        return subprocess.run([sys.executable, os.path.join(BENCH, "keras_seed.py"), *args],
                              capture_output=True, text=True, timeout=300)

    def test_the_seed_model_is_the_same_network(self):
        model = self.ks.seed_model(self.keras, (28, 28, 1), 10)
        self.assertEqual(model.count_params(), 56394)
        self.assertEqual([tuple(layer.output.shape[1:]) for layer in model.layers],
                         [(26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64), (1, 1, 64), (64,),
                          (64,), (10,)])
        self.assertEqual(model.layers[7].rate, 0.6)

    def test_a_short_run_prints_one_json_result(self):
        result, _ = short_run(self, "keras_seed.py", "--epochs", "2", "--limit-train", "2000", "--limit-eval", "200",
                              "--batch-size", "64", "--seed", "4")
        self.assertEqual((result["row"], result["batch"], result["seed"], result["epochs"]), ("keras/jax", 64, 4, 2))
        self.assertEqual(result["device"], "cpu: cpu")
        self.assertTrue(result["framework"].startswith(f"keras {self.keras.__version__} / jax "), result["framework"])
        self.assertEqual((result["train_images"], result["val_images"], result["test_images"]), (2000, 200, 200))
        self.assertEqual(len(result["epoch_seconds"]), 2)
        self.assertLess(result["train_seconds"][1], result["epoch_seconds"][1])
        self.assertAlmostEqual(result["steady_ms_per_epoch"], result["epoch_seconds"][1] * 1e3, places=2)
        self.assertGreater(result["test_accuracy"], 0.5)  # 2 epochs of 2000 images: 0.73 for seed 4
        self.assertGreaterEqual(result["recipe_seconds"], sum(result["epoch_seconds"]))
        self.assertIn("strict FP32", result["note"])

    def test_bad_data_or_wheels_are_one_error_line(self):
        bad = self.run_keras_seed("--data", "/nonexistent")
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(bad.stderr.strip().splitlines(),
                         ["keras_seed.py: error: /nonexistent: no train-images-idx3-ubyte[.gz] "
                          "(set MNIST_DIR or --data to the MNIST folder)"])
        with tempfile.TemporaryDirectory() as empty, mock.patch.dict(os.environ, {"KERAS_WHEELS": empty}):
            with self.assertRaises(self.ks.NotMeasurable) as caught:
                self.ks.install_wheels()
        self.assertEqual(str(caught.exception), f"KERAS_WHEELS={empty}: no .whl files there")

    def test_keras_hiding_optree_s_own_import_error_is_shown(self):
        hidden = ImportError("To use Keras, you need to have `optree` installed. Install it via `pip install optree`")
        with mock.patch.dict(sys.modules, {"optree": None}):  # `import optree` fails, as without typing_extensions
            text = self.ks.import_error_text(hidden)
        self.assertTrue(text.startswith(str(hidden) + " (importing optree: import of optree halted"), text)
        self.assertEqual(self.ks.import_error_text(ImportError("No module named 'keras'")), "No module named 'keras'")


def main():
    group = sys.argv[1] if len(sys.argv) > 1 else None
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromTestCase(globals()[group]) if group else loader.loadTestsFromModule(
        sys.modules[__name__])
    return run_for_ctest(suite)


if __name__ == "__main__":
    sys.exit(main())
