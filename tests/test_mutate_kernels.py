#!/usr/bin/env python3
"""tests/mutate_kernels.py's mutant generator: which changes it makes, and that it leaves comments,
string literals, template brackets and preprocessor lines alone; that every mutant of the real
kernels re-applies to exactly its own line; and that `run` refuses a result file it cannot read.
(The sweep itself rebuilds and runs kernel_tests_sim hundreds of times: it is run by hand, not here.)

Usage: test_mutate_kernels.py
"""
import os
import subprocess
import sys
import tempfile
import unittest

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

    def test_every_mutant_of_the_kernels_reapplies_to_its_own_line_only(self):
        mutants = mutate_kernels.all_mutants(mutate_kernels.DEFAULT_FILES)
        self.assertGreater(len(mutants), 100)
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


if __name__ == "__main__":
    unittest.main()
