#!/usr/bin/env python3
"""Tests of bench/gpu_libs.sh, which links the libraries a bundled binary cannot find (cuBLAS, on a
GPU machine that keeps it somewhere unknown in advance) into the bundle's lib/ folder.

    test_gpu_libs.py CXX        CXX: the C++ compiler that builds the test's binaries and libraries

Each test builds, in a scratch folder, a program with the bundle's DT_RPATH $ORIGIN/lib that needs
libgpulibsa.so.1, which needs libgpulibsb.so.1 (as cuBLAS needs cuBLASLt), and puts the libraries where
a GPU machine might keep them. Exits 77 (skipped) where there is no ldd or the compiler cannot build
them (not an ELF system).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from ctest_main import run_for_ctest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "bench", "gpu_libs.sh")
CXX = sys.argv[1] if len(sys.argv) > 1 else "c++"

LIB_B = 'extern "C" int gpulibs_b() { return 40; }\n'
LIB_A = 'extern "C" int gpulibs_b();\nextern "C" int gpulibs_a() { return gpulibs_b() + 2; }\n'
PROGRAM = '#include <cstdio>\nextern "C" int gpulibs_a();\nint main() { std::printf("%d\\n", gpulibs_a()); }\n'


class GpuLibs(unittest.TestCase):
    def setUp(self):
        if shutil.which("ldd") is None:
            self.skipTest("no ldd on this machine")
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="gpu_libs_test_"))
        self.addCleanup(shutil.rmtree, self.tmp)
        self.src = self.path("src")
        self.bundle = self.path("bundle")
        self.lib = self.path("bundle", "lib")
        self.program = os.path.join(self.bundle, "program")
        self.userbase = self.path("userbase")
        # The user site of GPU_LIBS_PYTHON (this Python) under PYTHONUSERBASE: where pip --user puts a
        # wheel's nvidia/<package>/lib folder.
        site = subprocess.run([sys.executable, "-c", "import site; print(site.getusersitepackages())"],
                              env=dict(os.environ, PYTHONUSERBASE=self.userbase), capture_output=True,
                              text=True, check=True).stdout.strip()
        self.wheel_lib = os.path.join(site, "nvidia", "cu13", "lib")
        os.makedirs(self.wheel_lib)

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(p, exist_ok=True)
        return p

    def compile(self, out, source, *args):
        with open(os.path.join(self.src, os.path.basename(out) + ".cpp"), "w") as f:
            f.write(source)
        r = subprocess.run([CXX, "-o", out, f.name, *args], capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest(f"{CXX} cannot build the test's shared libraries here: {r.stderr.strip()[:200]}")

    def build_libs(self, folder, version_script=None):
        """libgpulibsb.so.1 and libgpulibsa.so.1 (needing b, with no path of its own) in folder."""
        extra = [f"-Wl,--version-script={version_script}"] if version_script else []
        self.compile(os.path.join(folder, "libgpulibsb.so.1"), LIB_B, "-shared", "-fPIC",
                     "-Wl,-soname,libgpulibsb.so.1", *extra)
        self.compile(os.path.join(folder, "libgpulibsa.so.1"), LIB_A, "-shared", "-fPIC",
                     "-Wl,-soname,libgpulibsa.so.1", "-L" + folder, "-l:libgpulibsb.so.1")

    def build_program(self, against):
        # The bundle's link: DT_RPATH (not RUNPATH) $ORIGIN/lib, which also serves libgpulibsa's needs.
        self.compile(self.program, PROGRAM, "-L" + against, "-l:libgpulibsa.so.1", "-Wl,-rpath,$ORIGIN/lib",
                     "-Wl,--disable-new-dtags", "-Wl,-rpath-link," + against)

    def run_script(self, *args, env=None):
        full = dict(os.environ, PYTHONUSERBASE=self.userbase, GPU_LIBS_PYTHON=sys.executable, GPU_LIBS_PATH="")
        full.pop("LD_LIBRARY_PATH", None)
        full.update(env or {})
        return subprocess.run(["bash", SCRIPT, *args], env=full, capture_output=True, text=True)

    def run_program(self):
        return subprocess.run([self.program], capture_output=True, text=True,
                              env={k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"})

    def test_libraries_in_a_python_wheel_folder_are_linked_with_the_ones_they_need(self):
        self.build_libs(self.wheel_lib)
        self.build_program(self.wheel_lib)
        self.assertNotEqual(self.run_program().returncode, 0, "the program must not load before the links")
        r = self.run_script(self.lib, self.program)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(),
                         [f"libgpulibsa.so.1 => {self.wheel_lib}/libgpulibsa.so.1",
                          f"libgpulibsb.so.1 => {self.wheel_lib}/libgpulibsb.so.1"])
        self.assertEqual(r.stderr, "")
        self.assertEqual(sorted(os.listdir(self.lib)), ["libgpulibsa.so.1", "libgpulibsb.so.1"])
        self.assertEqual(os.readlink(os.path.join(self.lib, "libgpulibsb.so.1")),
                         os.path.join(self.wheel_lib, "libgpulibsb.so.1"))
        ran = self.run_program()
        self.assertEqual((ran.returncode, ran.stdout), (0, "42\n"), ran.stderr)
        again = self.run_script(self.lib, self.program)  # nothing left to do
        self.assertEqual((again.returncode, again.stdout, again.stderr), (0, "", ""))

    def test_gpu_libs_path_comes_first(self):
        self.build_libs(self.wheel_lib)
        mine = self.path("mine")
        self.build_libs(mine)
        self.build_program(mine)
        r = self.run_script(self.lib, self.program, env={"GPU_LIBS_PATH": "/nonexistent:" + mine})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.readlink(os.path.join(self.lib, "libgpulibsa.so.1")),
                         os.path.join(mine, "libgpulibsa.so.1"))
        self.assertEqual(self.run_program().stdout, "42\n")

    def test_a_relative_gpu_libs_path_gives_links_that_hold(self):
        mine = self.path("mine")
        self.build_libs(mine)
        self.build_program(mine)
        r = subprocess.run(["bash", SCRIPT, os.path.relpath(self.lib, self.tmp), os.path.relpath(self.program, self.tmp)],
                           cwd=self.tmp, capture_output=True, text=True,
                           env=dict(os.environ, GPU_LIBS_PATH="mine", PYTHONUSERBASE=self.userbase))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(os.readlink(os.path.join(self.lib, "libgpulibsa.so.1")),
                         os.path.join(os.path.realpath(mine), "libgpulibsa.so.1"))
        self.assertEqual(self.run_program().stdout, "42\n")

    def test_a_library_found_nowhere_is_one_line_naming_it_and_the_binary(self):
        elsewhere = self.path("elsewhere")
        self.build_libs(elsewhere)
        self.build_program(elsewhere)
        os.remove(os.path.join(elsewhere, "libgpulibsb.so.1"))
        os.rename(os.path.join(elsewhere, "libgpulibsa.so.1"), os.path.join(self.wheel_lib, "libgpulibsa.so.1"))
        r = self.run_script(self.lib, self.program)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines(), [f"libgpulibsa.so.1 => {self.wheel_lib}/libgpulibsa.so.1"])
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith(f"gpu_libs.sh: {self.program} needs libgpulibsb.so.1: not found"),
                        lines[0])
        self.assertIn("GPU_LIBS_PATH=DIR", lines[0])
        self.assertTrue(lines[1].startswith("gpu_libs.sh: searched after the loader's own path: "), lines[1])
        self.assertIn(os.path.realpath(self.wheel_lib), lines[1].split(": ", 2)[2].split(":"))

    def test_a_library_too_old_for_the_binary_is_named_with_the_version_it_lacks(self):
        new = self.path("new")
        with open(os.path.join(self.src, "new.map"), "w") as f:
            f.write("GPULIBS_2 { global: gpulibs_b; local: *; };\n")
        self.build_libs(new, version_script=f.name)
        self.build_program(new)
        old = self.wheel_lib  # the machine's copy: the same library before GPULIBS_2
        with open(os.path.join(self.src, "old.map"), "w") as f:
            f.write("GPULIBS_1 { global: gpulibs_b; local: *; };\n")
        self.compile(os.path.join(old, "libgpulibsb.so.1"), LIB_B, "-shared", "-fPIC",
                     "-Wl,-soname,libgpulibsb.so.1", f"-Wl,--version-script={f.name}")
        os.rename(os.path.join(new, "libgpulibsa.so.1"), os.path.join(old, "libgpulibsa.so.1"))
        r = self.run_script(self.lib, self.program)
        self.assertEqual(r.returncode, 1, r.stdout)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith(f"gpu_libs.sh: {self.program}: {self.lib}/libgpulibsb.so.1: "
                                            "version `GPULIBS_2' not found (required by "), lines[0])

    def test_nothing_missing_links_nothing(self):
        self.compile(self.program, 'int main() { return 0; }\n')
        r = self.run_script(self.lib, self.program)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))
        self.assertEqual(os.listdir(self.lib), [])

    def test_bad_usage(self):
        for args, err in [((), "usage: bench/gpu_libs.sh LIBDIR BINARY..."),
                          ((self.lib,), "usage: bench/gpu_libs.sh LIBDIR BINARY..."),
                          (("/nonexistent", "/bin/sh"), "usage: bench/gpu_libs.sh LIBDIR BINARY..."),
                          ((self.lib, "/nonexistent/convnet"), "gpu_libs.sh: /nonexistent/convnet: no such file")]:
            r = self.run_script(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith(err), r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)


if __name__ == "__main__":
    sys.exit(run_for_ctest(unittest.defaultTestLoader.loadTestsFromTestCase(GpuLibs)))
