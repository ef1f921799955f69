#!/usr/bin/env python3
"""Tests of bench/kernel_resources.cpp: its --check fails on each GPU-only problem it exists to catch.

    test_kernel_resources.py TOOL PTXAS_DIR

TOOL is the built kernel_resources, PTXAS_DIR the ptxas reports the build made for kernels/*.cu
(build/bench/ptxas). Each test copies the reports into a scratch folder, plants one problem in them
(a spill, a __launch_bounds__ below the launched block, more shared memory than an SM has, a kernel
missing from the reports) and expects the check to fail naming it; the untouched reports pass.
Standard library only.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

TOOL = PTXAS = None


def run(ptxas_dir, *extra):
    # batch 16: the launch shapes differ from batch 128's only in grid sizes, and the simulator is faster.
    return subprocess.run([TOOL, "--ptxas-dir", ptxas_dir, "--batch", "16", *extra], capture_output=True,
                          text=True, timeout=240)


class KernelResources(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="kernel_resources_")
        self.dir = os.path.join(self.tmp, "ptxas")
        shutil.copytree(PTXAS, self.dir)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def edit(self, name, pattern, replacement, count=1):
        path = os.path.join(self.dir, name)
        with open(path) as f:
            text = f.read()
        new, n = re.subn(pattern, replacement, text, count=count, flags=re.M)
        self.assertEqual(n, count, f"{pattern!r} not found in {name}")
        with open(path, "w") as f:
            f.write(new)

    def expect_failure(self, *needles):
        r = run(self.dir, "--check")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for needle in needles:
            self.assertIn(needle, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, "one finding planted, one reported:\n" + r.stderr)

    def test_the_real_reports_pass_and_list_the_fused_step(self):
        r = run(self.dir, "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for kernel in ("conv_input_forward_kernel", "head_train_kernel", "head_eval_kernel",
                       "conv_input_backward_kernel<3>", "optimizer_step_kernel<adam>", "im2col_kernel"):
            self.assertRegex(r.stdout, r"\| `" + re.escape(kernel) + r"` \| [a-z -]+")
        self.assertIn("Functions that spill or have a stack frame: none.", r.stdout)

    def test_a_spill_fails(self):
        self.edit("maxpool.ptxas.txt", r"0 bytes spill stores, 0 bytes spill loads",
                  "8 bytes spill stores, 8 bytes spill loads")
        self.expect_failure("8 bytes spill stores", "(maxpool.ptxas.txt)", "local memory")

    def test_a_launch_over_its_launch_bounds_fails(self):
        self.edit("fused_forward.ptx", r"^(\.entry \S+head_train_kernel\S+\((?:.|\n)*?)\.maxntid 256, 1, 1",
                  r"\1.maxntid 128, 1, 1")
        self.expect_failure("head_train_kernel: launched with 256 threads, over its __launch_bounds__(128)")

    def test_a_block_that_cannot_be_resident_fails(self):
        self.edit("dropout.ptxas.txt", r"^(.*Used \d+ registers).*$", r"\1, 240000 bytes smem")
        self.expect_failure("dropout_kernel: a block of 256 threads", "cannot be resident on an sm_90 SM")

    def test_a_launched_kernel_missing_from_the_reports_fails(self):
        os.remove(os.path.join(self.dir, "softmax_xent.ptxas.txt"))
        self.expect_failure("softmax_xent_kernel: launched, but ptxas reported no kernel of that name")

    def test_a_stale_report_of_the_same_kernels_is_an_error(self):
        # A renamed kernels/*.cu leaves its old report behind; the join must not pick one blindly.
        for ext in ("ptxas.txt", "ptx"):
            shutil.copy(os.path.join(self.dir, "dropout." + ext), os.path.join(self.dir, "dropout_old." + ext))
        r = run(self.dir, "--check")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("kernel dropout_kernel is in both dropout", r.stderr)
        self.assertIn("a stale report?", r.stderr)

    def test_a_report_in_another_format_is_an_error_not_zero_registers(self):
        self.edit("maxpool.ptxas.txt", r"^(.*)Used (\d+) registers(.*)$", r"\1Registers: \2\3")
        r = run(self.dir, "--check")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"maxpool\.ptxas\.txt: no 'Used N registers' line for \S+maxpool_backward_kernel")
        self.assertEqual(r.stdout, "")

    def test_bad_arguments_are_one_clear_line(self):
        empty = os.path.join(self.tmp, "empty")
        os.mkdir(empty)
        for args, why in (([], "--ptxas-dir is required"), (["--ptxas-dir", empty], "no *.ptxas.txt reports"),
                          (["--ptxas-dir", os.path.join(self.tmp, "nope")], "not a folder"),
                          (["--ptxas-dir", self.dir, "--batch", "0"], "--batch: expected an integer"),
                          (["--ptxas-dir", self.dir, "--batch"], "--batch: missing value"),
                          (["--ptxas-dir", self.dir, "--frobnicate"], "unknown argument '--frobnicate'")):
            r = subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn(why, r.stderr.splitlines()[0])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    TOOL, PTXAS = sys.argv[1], sys.argv[2]
    unittest.main(argv=sys.argv[:1], verbosity=2)
