#!/usr/bin/env python3
"""tests/mutate_kernels.py's mutant generator: which changes it makes, and that it leaves comments,
string literals, template brackets and preprocessor lines alone; that every mutant of the real
kernels and of the CPU reference re-applies to exactly its own line; which tests each suite runs; and
that `run` refuses a result file it cannot read.
(The sweep itself rebuilds and runs kernel_tests_sim hundreds of times: it is run by hand, not here.)

Usage: test_mutate_kernels.py
"""
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mutate_kernels  # noqa: E402


def changes(text):
    """(line, op, mutated line) of every mutant of `text`."""
    return [(m.line, m.op, m.after) for m in mutate_kernels.mutants_of("k.cu", text)]


class Generator(unittest.TestCase):
    def test_each_operator_makes_its_change(self):
        self.assertEqual(changes("if (a < b) x += y;"), [(1, "ror", "if (a <= b) x += y;"),
                                                         (1, "asg", "if (a < b) x = y;")])
        self.assertEqual(changes("c = a >= b && d != e;"),
                         [(1, "ror", "c = a > b && d != e;"), (1, "ror", "c = a >= b && d == e;"),
                          (1, "lcr", "c = a >= b || d != e;")])
        self.assertEqual(changes("i = j * 3 + k - 1;"),
                         [(1, "aor", "i = j * 3 - k - 1;"), (1, "aor", "i = j * 3 + k + 1;"),
                          (1, "off_by_one", "i = j * 3 + k;")])
        self.assertEqual(changes("v = fmaxf(a, b);"), [(1, "minmax", "v = fminf(a, b);")])
        self.assertEqual(changes("v = std::min(a, b);"), [(1, "minmax", "v = std::max(a, b);")])
        self.assertEqual(changes("w = min(a, b);"), [(1, "minmax", "w = max(a, b);")])
        self.assertEqual(changes("if (!done) go();"), [(1, "not", "if (done) go();")])

    def test_barriers_and_fences_are_deleted(self):
        text = "  __syncthreads();\n  __syncwarp(kFullMask);\n  __threadfence();\n  __syncthreads_or(x);"
        self.assertEqual(changes(text), [(1, "delete", "(empty)"), (2, "delete", "(empty)"),
                                         (3, "delete", "(empty)")])

    def test_comments_strings_templates_and_preprocessor_lines_are_left_alone(self):
        self.assertEqual(changes("// a < b && c\n/* x + y\n  z - w */ q;\n#if A > 1\n#endif"), [])
        self.assertEqual(changes('throw std::runtime_error("need a < b");'), [])
        self.assertEqual(changes("x = static_cast<float>(a) << 2; p->q = 1;"), [])
        self.assertEqual(changes("c = '<'; d = 1.5f + 1.0f;"), [(1, "aor", "c = '<'; d = 1.5f - 1.0f;")])
        self.assertEqual(changes("x = a /* b + c */ + d;"), [(1, "aor", "x = a /* b + c */ - d;")])

    def test_every_mutant_of_the_kernels_and_the_reference_reapplies_to_its_own_line_only(self):
        mutants = mutate_kernels.all_mutants(mutate_kernels.KERNEL_FILES + mutate_kernels.REFERENCE_FILES)
        self.assertGreater(len(mutants), 300)
        self.assertEqual(len({m.id for m in mutants}), len(mutants), "mutant ids are not unique")
        texts = {}
        for m in mutants:
            text = texts.setdefault(m.file, (mutate_kernels.ROOT / m.file).read_text())
            before, after = text.split("\n"), mutate_kernels.apply(m, text).split("\n")
            self.assertEqual(len(before), len(after), m.id)
            differing = [i + 1 for i, (x, y) in enumerate(zip(before, after)) if x != y]
            self.assertEqual(differing, [m.line], m.id)
            self.assertEqual(after[m.line - 1].strip() or "(empty)", m.after, m.id)


class CommandLine(unittest.TestCase):
    SCRIPT = os.path.join(HERE, "mutate_kernels.py")

    def run_script(self, *args):
        return subprocess.run([sys.executable, self.SCRIPT, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=60)

    def test_list_names_each_mutant_with_its_change(self):
        result = self.run_script("list", "--files", "kernels/dropout.cu")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(result.stderr.strip(), f"{len(lines)} mutants")
        self.assertTrue(all(line.startswith("kernels/dropout.cu:") and "\t=>\t" in line for line in lines))

    def test_bad_arguments_are_one_line_and_exit_2(self):
        for args, words in ((["list", "--files", "kernels/nope.cu"], "no such file: kernels/nope.cu"),
                            (["list", "--only", "kernels/dropout.cu:1:0:ror"], "no such mutant")):
            result = self.run_script(*args)
            self.assertEqual(result.returncode, 2, args)
            self.assertIn(words, result.stderr.splitlines()[-1])

    def test_run_refuses_a_result_file_it_cannot_read_before_building_anything(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "results.jsonl")
            with open(out, "w") as f:
                f.write('{"id": "kernels/dropout.cu:1:0:ror", "status": "killed"}\nnot json\n')
            result = self.run_script("run", "--work", os.path.join(tmp, "work"), "--out", out)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(f"{out}:2: not a result line", result.stderr)
            self.assertFalse(os.path.exists(os.path.join(tmp, "work")), "it built before reading --out")


class Suites(unittest.TestCase):
    def test_kernels_run_every_thread_order_and_the_reference_its_own_tests_then_the_kernel_tests(self):
        *orders, fences = mutate_kernels.suite_checks("kernels", False)
        self.assertEqual([c.order for c in orders], mutate_kernels.ORDERS)
        self.assertTrue(all(c.binary.name == "kernel_tests_sim" and not c.gtest_filter for c in orders))
        self.assertEqual((fences.label, fences.binary.name, fences.order),
                         ("fences", "kernel_tests_sim_fence", "forward"))
        self.assertEqual(mutate_kernels.suite_targets(mutate_kernels.suite_checks("kernels", False)),
                         ["kernel_tests_sim", "kernel_tests_sim_fence"])
        sanitized = mutate_kernels.suite_checks("kernels", False, sanitize=True)
        self.assertEqual([c.binary.name for c in sanitized], ["kernel_tests_sim"] * len(mutate_kernels.ORDERS))
        first, second = mutate_kernels.suite_checks("reference", False)
        self.assertEqual((first.binary.name, first.gtest_filter), ("convnet_tests", "CpuLayers.*:GradCheck.*"))
        self.assertEqual((second.binary.name, second.order), ("kernel_tests_sim", "forward"))
        everything = mutate_kernels.suite_checks("reference", True)[0]
        self.assertEqual((everything.gtest_filter, everything.timeout), ("", 600))
        self.assertEqual(mutate_kernels.suite_targets(mutate_kernels.suite_checks("reference", False)),
                         ["convnet_tests", "kernel_tests_sim"])

    def test_list_of_the_reference_suite_mutates_only_the_cpu_layers(self):
        result = subprocess.run([sys.executable, CommandLine.SCRIPT, "list", "--suite", "reference"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        files = {line.split(":")[0] for line in result.stdout.splitlines()}
        self.assertEqual(files, set(mutate_kernels.REFERENCE_FILES))


class RunTests(unittest.TestCase):
    """run_tests on stand-in test binaries: a pass, a failure, and a hang told apart from a failure."""

    def binary(self, tmp, name, body):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body + "\n")
        os.chmod(path, 0o755)
        return path

    def test_passed_failed_and_timed_out(self):
        with tempfile.TemporaryDirectory() as tmp:
            # Each shard sees its own GTEST_SHARD_INDEX: shard 1 alone fails, or hangs.
            ok = self.binary(tmp, "ok", "exit 0")
            one_fails = self.binary(tmp, "fails", '[ "$GTEST_SHARD_INDEX" = 1 ] && exit 1; sleep 30')
            one_hangs = self.binary(tmp, "hangs", '[ "$GTEST_SHARD_INDEX" = 1 ] && exec sleep 30; exit 0')
            self.assertEqual(mutate_kernels.run_tests(ok, "forward", "", 2, 10), "passed")
            started = time.monotonic()
            self.assertEqual(mutate_kernels.run_tests(one_fails, "forward", "", 2, 20), "failed")
            self.assertEqual(mutate_kernels.run_tests(one_hangs, "forward", "", 2, 1), "timed out")
            self.assertLess(time.monotonic() - started, 10, "a failure or a timeout did not stop the other shard")


class Prepare(unittest.TestCase):
    def test_a_changed_file_is_copied_with_a_new_time_and_an_unchanged_one_left_alone(self):
        with tempfile.TemporaryDirectory() as tmp:
            source, target, same = (Path(tmp) / name for name in ("source.cu", "copy/target.cu", "same.cu"))
            source.write_text("original")
            same.write_text("original")
            target.parent.mkdir()
            target.write_text("mutant")  # what a sweep killed half-way left behind
            old = time.time() - 3600
            for path in (source, target, same):
                os.utime(path, (old, old))
            self.assertTrue(mutate_kernels.sync_copy(source, target))
            self.assertEqual(target.read_text(), "original")
            self.assertGreater(target.stat().st_mtime, old + 60, "ninja would not rebuild the mutant's object")
            self.assertFalse(mutate_kernels.sync_copy(source, same))
            self.assertEqual(same.stat().st_mtime, old)
            self.assertTrue(mutate_kernels.sync_copy(source, Path(tmp) / "new" / "file.cu"))


if __name__ == "__main__":
    unittest.main()
