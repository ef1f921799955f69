#!/usr/bin/env python3
"""scripts/ncu_table.py on a checked-in Nsight Compute CSV (tests/data/ncu_details.csv, ncu's --csv
details-page layout with its ==PROF== lines) and on variants of the format, and scripts/profile.sh
in dry-run mode (PROFILE_DRY_RUN=1): the exact ncu / nsys commands, without a GPU or the tools.

Usage: test_profile_scripts.py [PATH_TO_CONVNET]   (ctest passes build/convnet: its --help must list
the flags profile.sh uses)
"""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE = os.path.join(ROOT, "scripts", "ncu_table.py")
PROFILE = os.path.join(ROOT, "scripts", "profile.sh")
FIXTURE = os.path.join(ROOT, "tests", "data", "ncu_details.csv")
# The convnet binary, when given (ctest gives it); taken off argv before unittest reads it.
CONVNET = sys.argv.pop(1) if __name__ == "__main__" and len(sys.argv) > 1 else None

GEMM = "sm90_xmma_gemm_f32f32_f32f32_f32_nn_n_tilesize64x64x8_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas"


def run(args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(args, capture_output=True, text=True, env=full_env, cwd=ROOT)


def table(*args):
    return run([sys.executable, TABLE] + list(args))


class NcuTable(unittest.TestCase):
    def test_fixture_table(self):
        # By hand from the fixture: 2 steps of 5 launches; durations in ns with thousands separators,
        # DRAM in byte/s, one DRAM value n/a (adam's first launch: its GB/s is the second's alone);
        # im2col's occupancy weights its two shapes by duration: (90 * 3 + 60 * 2) / 5 = 78.
        expected = (
            "Kernels profiled by Nsight Compute: 10 launches, 40.0 µs in all, 2 steps (tests/data/ncu_details.csv)\n"
            "\n"
            "| kernel | calls | calls/step | mean µs | total µs | share | DRAM GB/s | SM % | occupancy % |\n"
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
            f"| {GEMM} | 2 | 1 | 10.00 | 20.0 | 50.0% | 200.0 | 60.0 | 40.0 |\n"
            "| im2col_kernel | 4 | 2 | 2.50 | 10.0 | 25.0% | 380.0 | 28.0 | 78.0 |\n"
            "| adam_update_kernel | 2 | 1 | 3.00 | 6.0 | 15.0% | 300.0 | 23.3 | 80.0 |\n"
            "| gather_batch_kernel | 2 | 1 | 2.00 | 4.0 | 10.0% | 100.0 | 5.0 | 10.0 |\n"
            "| **all kernels** | 10 | 5 |  | 40.0 | 100.0% |  |  |  |\n")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "kernels.md")
            r = table("tests/data/ncu_details.csv", "--steps", "2", "--out", out)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, expected)
            with open(out, encoding="utf-8") as f:
                self.assertEqual(f.read(), expected)

    def test_shares_sum_to_100(self):
        r = table(FIXTURE)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = [line for line in r.stdout.splitlines()
                if line.startswith("| ") and not line.startswith("| kernel |") and "**all kernels**" not in line]
        shares = [float(line.split(" | ")[4].rstrip("%")) for line in rows]
        self.assertEqual(len(shares), 4)
        self.assertAlmostEqual(sum(shares), 100.0, delta=0.05 * len(shares))
        self.assertNotIn("calls/step", r.stdout)

    def test_by_grid_splits_launch_shapes(self):
        r = table(FIXTURE, "--by-grid")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("| im2col_kernel grid (1352, 1, 1) block (256, 1, 1) | 2 | 3.00 | 6.0 | 15.0% | 500.0 | 20.0 | 90.0 |",
                      r.stdout)
        self.assertIn("| im2col_kernel grid (338, 1, 1) block (256, 1, 1) | 2 | 2.00 | 4.0 | 10.0% | 200.0 | 40.0 | 60.0 |",
                      r.stdout)

    def write(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8")
        f.write(text)
        f.close()
        self.addCleanup(os.unlink, f.name)
        return f.name

    def test_older_layout_scaled_units_and_quoted_commas(self):
        # Older ncu: a "Kernel Time" column and no launch shape; scaled units; a demangled name
        # with commas inside its quotes.
        name = "void convnet::im2col_kernel<float>(const float *, float *, int)"
        rows = ['"ID","Process ID","Process Name","Host Name","Kernel Name","Kernel Time","Context","Stream",'
                '"Section Name","Metric Name","Metric Unit","Metric Value"']
        for id_, us, gbs, sm in (("0", "1.50", "1.20", "10"), ("1", "2.50", "0.80", "30")):
            base = f'"{id_}","7","convnet","h","{name}","2024-Nov-13 18:14:36","1","7","Command line profiler metrics"'
            rows += [base + f',"gpu__time_duration.sum","usecond","{us}"',
                     base + f',"dram__bytes.sum.per_second","Tbyte/second","{gbs}"',
                     base + f',"sm__throughput.avg.pct_of_peak_sustained_elapsed","%","{sm}"',
                     base + ',"launch__grid_size","","1,352"']
        r = table(self.write("\n".join(rows) + "\n"), "--by-grid")
        self.assertEqual(r.returncode, 0, r.stderr)
        # 4 us in all; DRAM (1200 * 1.5 + 800 * 2.5) / 4 = 950 GB/s; SM (10 * 1.5 + 30 * 2.5) / 4 = 22.5 %;
        # no occupancy metric in this CSV: n/a.
        self.assertIn(f"| {name} | 2 | 2.00 | 4.0 | 100.0% | 950.0 | 22.5 | n/a |", r.stdout)

    def test_errors_name_the_file_and_line(self):
        r = table(self.write("==PROF== Connected to process 1\nno csv here\n"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("no ncu --csv header", r.stderr)
        header = '"ID","Kernel Name","Metric Name","Metric Unit","Metric Value"\n'
        path = self.write(header + '"0","k","gpu__time_duration.sum","fortnight","3"\n')
        r = table(path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:2: unknown time unit 'fortnight'", r.stderr)
        r = table(self.write(header + '"0","k","gpu__time_duration.sum","ns","three"\n'))
        self.assertEqual(r.returncode, 2)
        self.assertIn("metric value 'three' is not a number", r.stderr)
        r = table(self.write(header))
        self.assertEqual(r.returncode, 2)
        self.assertIn("no profiled launches", r.stderr)
        r = table("/nonexistent/ncu.csv")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/ncu.csv", r.stderr)
        self.assertEqual(table(FIXTURE, "--steps", "0").returncode, 2)


class ProfileScript(unittest.TestCase):
    def dry(self, *args, env=None):
        e = {"PROFILE_DRY_RUN": "1", "CONVNET": "/nonexistent/convnet", "PYTHON": "python3"}
        e.update(env or {})
        return run(["bash", PROFILE] + list(args), e)

    def test_ncu_dry_run(self):
        r = self.dry("--steps", "7", "--warmup", "3", "--out", "/tmp/prof", "--", "--data", "/tmp/my data",
                     "--batch-size", "64", env={"NCU": "/opt/nsight/ncu"})
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines, [
            "+ env LC_ALL=C /opt/nsight/ncu --profile-from-start off --metrics "
            "gpu__time_duration.sum,dram__bytes.sum.per_second,sm__throughput.avg.pct_of_peak_sustained_elapsed,"
            "sm__warps_active.avg.pct_of_peak_sustained_active "
            "--csv --print-units base --print-kernel-base function --log-file /tmp/prof/ncu.csv "
            "/nonexistent/convnet train --device gpu --profile-steps 7 --warmup-steps 3 --data /tmp/my\\ data "
            "--batch-size 64",
            "+ python3 scripts/ncu_table.py /tmp/prof/ncu.csv --steps 7 "
            "--out /tmp/prof/kernels.md"])

    def test_nsys_dry_run(self):
        r = self.dry("--nsys", env={"NSYS": "/opt/nsys/nsys"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            "+ /opt/nsys/nsys profile --capture-range=cudaProfilerApi --capture-range-end=stop "
            "--trace=cuda,nvtx,cublas --sample=none --cpuctxsw=none --force-overwrite=true "
            "--output=build/profile/convnet /nonexistent/convnet train --device gpu --profile-steps 10 "
            "--warmup-steps 5",
            "+ /opt/nsys/nsys stats --report cuda_gpu_kern_sum,nvtx_sum --force-export=true "
            "build/profile/convnet.nsys-rep",
            "  (output also to build/profile/nsys_stats.txt)"])

    def test_bad_options_and_missing_build(self):
        for args in (["--steps", "0"], ["--steps", "x"], ["--warmup", "-1"], ["--frobnicate"]):
            r = self.dry(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("profile.sh", r.stderr)
        r = run(["bash", PROFILE], {"CONVNET": "/nonexistent/convnet"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/convnet not found: build first", r.stderr)

    @unittest.skipIf(CONVNET is None, "no convnet binary given")
    def test_convnet_knows_the_flags_the_script_passes(self):
        r = run([CONVNET, "train", "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for flag in ("--profile-steps N", "--warmup-steps W", "--timing [N]", "--device D"):
            self.assertIn(flag, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
