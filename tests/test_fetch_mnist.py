#!/usr/bin/env python3
"""data/fetch_mnist.sh, the download step of the README's set-up command, without a network: the
script runs from a scratch copy of data/ whose MD5SUMS lists small made-up files, with fake curl and
wget on PATH that serve its mirrors' URLs from a scratch folder and log every request.

Checked: a fresh download (and with wget when there is no curl), a rerun that needs no network, a
corrupt file from one mirror replaced from the next, a bad hand-copied file moved aside, files copied
by hand under the dotted naming, and, offline or without curl and wget, one line on stderr, exit 1 and
no folder left behind. When $MNIST_DIR is set, real MNIST, served by the fake curl, downloads and
verifies against the checked-in MD5SUMS.

Usage: test_fetch_mnist.py
"""
import gzip
import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "data", "fetch_mnist.sh")
BASH = shutil.which("bash") or "/bin/bash"
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]

# A fake curl or wget (by the name it is called as): serves https://HOST/PATH from
# $FAKE_NET_ROOT/HOST/PATH into the file named by --output (curl) or --output-document= (wget),
# logging "NAME URL"; exits as curl --fail (22) or wget (8) do when there is no such file.
FAKE_DOWNLOADER = r"""#!/bin/bash
name=$(basename "$0") out= url=
while [ $# -gt 0 ]; do
  case $1 in
    --output) out=$2; shift 2 ;;
    --output-document=*) out=${1#--output-document=}; shift ;;
    --connect-timeout|--retry) shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
  esac
done
echo "$name $url" >> "$FAKE_NET_LOG"
src="$FAKE_NET_ROOT/${url#https://}"
[ -f "$src" ] || exit $([ "$name" = wget ] && echo 8 || echo 22)
cp "$src" "$out"
"""


def mirrors():
    """The script's mirror URLs, in the order it tries them."""
    with open(SCRIPT, encoding="utf-8") as f:
        block = re.search(r"^mirrors=\((.*?)^\)", f.read(), re.S | re.M).group(1)
    return re.findall(r'"(https://[^"]+)"', block)


def write_executable(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


class FetchMnist(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="fetch_mnist_test_"))
        self.addCleanup(shutil.rmtree, self.tmp)
        # The script reads MD5SUMS beside itself: a copy of data/ with sums of made-up contents.
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(self.data)
        shutil.copy(SCRIPT, self.data)
        self.content = {name: (name * (50 + i)).encode() for i, name in enumerate(NAMES)}
        with open(os.path.join(self.data, "MD5SUMS"), "w", encoding="utf-8") as f:
            for name in NAMES:
                f.write(f"{hashlib.md5(self.content[name]).hexdigest()}  {name}\n")
        self.net = os.path.join(self.tmp, "net")
        self.log = os.path.join(self.tmp, "requests.log")
        self.bin = os.path.join(self.tmp, "bin")
        os.makedirs(self.bin)
        write_executable(os.path.join(self.bin, "curl"), FAKE_DOWNLOADER)
        self.dest = os.path.join(self.tmp, "mnist")

    def serve(self, mirror, name, content):
        """Put name.gz, gzipped content, at mirror (its index in the script's list)."""
        path = os.path.join(self.net, mirrors()[mirror][len("https://"):], name + ".gz")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(gzip.compress(content))

    def serve_all(self, mirror=0):
        for name in NAMES:
            self.serve(mirror, name, self.content[name])

    def fetch(self, path=None):
        env = dict(os.environ, FAKE_NET_ROOT=self.net, FAKE_NET_LOG=self.log,
                   PATH=path or self.bin + os.pathsep + os.environ["PATH"])
        return subprocess.run([BASH, os.path.join(self.data, "fetch_mnist.sh"), self.dest], env=env,
                              capture_output=True, text=True, timeout=60)

    def requests(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log, encoding="utf-8") as f:
            return f.read().split("\n")[:-1]

    def assert_ready(self, r):
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(r.stdout.endswith(f"MNIST is ready in {self.dest} (set MNIST_DIR={self.dest} or pass "
                                          f"--data {self.dest})\n"), r.stdout)

    def gz_content(self, name):
        with gzip.open(os.path.join(self.dest, name + ".gz")) as f:
            return f.read()

    def test_fresh_download_keeps_the_verified_gz_files(self):
        self.serve_all()
        r = self.fetch()
        self.assert_ready(r)
        self.assertEqual(r.stderr, "")
        for name in NAMES:
            self.assertIn(f"{self.dest}/{name}.gz: downloaded and verified\n", r.stdout)
            self.assertEqual(self.gz_content(name), self.content[name])
        self.assertEqual(sorted(os.listdir(self.dest)), sorted(n + ".gz" for n in NAMES))
        self.assertEqual(self.requests(), [f"curl {mirrors()[0]}/{n}.gz" for n in NAMES])

    def test_a_rerun_needs_no_network(self):
        self.serve_all()
        self.assert_ready(self.fetch())
        shutil.rmtree(self.net)
        os.remove(self.log)
        r = self.fetch()
        self.assert_ready(r)
        for name in NAMES:
            self.assertIn(f"{self.dest}/{name}.gz: present and verified\n", r.stdout)
        self.assertEqual(self.requests(), [])

    def test_a_corrupt_download_is_replaced_from_the_next_mirror(self):
        self.assertGreaterEqual(len(mirrors()), 2)
        self.serve_all(0)
        self.serve(0, NAMES[2], b"not the right bytes")
        self.serve(1, NAMES[2], self.content[NAMES[2]])
        r = self.fetch()
        self.assert_ready(r)
        self.assertEqual(r.stderr, f"{NAMES[2]}.gz from {mirrors()[0]} failed MD5 verification; removed it, "
                                   "trying the next mirror\n")
        self.assertEqual(self.gz_content(NAMES[2]), self.content[NAMES[2]])
        self.assertIn(f"curl {mirrors()[1]}/{NAMES[2]}.gz", self.requests())
        self.assertFalse([f for f in os.listdir(self.dest) if f.endswith(".part")])

    def test_a_bad_hand_copied_file_is_moved_aside_and_downloaded(self):
        self.serve_all()
        os.makedirs(self.dest)
        bad = os.path.join(self.dest, NAMES[1])
        with open(bad, "wb") as f:
            f.write(b"truncated")
        r = self.fetch()
        self.assert_ready(r)
        self.assertIn(f"{bad}: MD5 mismatch, moved aside to {bad}.bad\n", r.stderr)
        with open(bad + ".bad", "rb") as f:
            self.assertEqual(f.read(), b"truncated", "a hand-copied file is kept, not deleted")
        self.assertFalse(os.path.exists(bad), "the reader would pick the raw file over the .gz")
        self.assertEqual(self.gz_content(NAMES[1]), self.content[NAMES[1]])

    def test_files_copied_by_hand_under_either_naming_are_verified_not_downloaded(self):
        self.serve_all()
        os.makedirs(self.dest)
        dotted = NAMES[0].replace("-idx", ".idx")  # train-images.idx3-ubyte, raw
        with open(os.path.join(self.dest, dotted), "wb") as f:
            f.write(self.content[NAMES[0]])
        with open(os.path.join(self.dest, NAMES[3] + ".gz"), "wb") as f:
            f.write(gzip.compress(self.content[NAMES[3]]))
        r = self.fetch()
        self.assert_ready(r)
        self.assertIn(f"{self.dest}/{dotted}: present and verified\n", r.stdout)
        self.assertIn(f"{self.dest}/{NAMES[3]}.gz: present and verified\n", r.stdout)
        self.assertEqual(self.requests(), [f"curl {mirrors()[0]}/{n}.gz" for n in NAMES[1:3]])

    def test_offline_is_one_line_exit_1_and_no_folder_left(self):
        r = self.fetch()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, f"fetch_mnist.sh: could not download {NAMES[0]}.gz from any mirror; are you "
                                   f"offline? copy the four files into {self.dest} by hand\n")
        self.assertFalse(os.path.exists(self.dest), "a folder the run created is removed when it fails")
        self.assertEqual(self.requests(), [f"curl {m}/{NAMES[0]}.gz" for m in mirrors()])

    def test_offline_keeps_a_folder_it_did_not_create(self):
        os.makedirs(self.dest)
        r = self.fetch()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertTrue(os.path.isdir(self.dest))
        self.assertEqual(os.listdir(self.dest), [])

    def tools_only_bin(self, *extra):
        """A PATH folder with the tools the script (and the fakes: cp, basename) needs, and extra fakes,
        but no curl or wget."""
        only = os.path.join(self.tmp, "only")
        os.makedirs(only)
        for tool in ["dirname", "mkdir", "rmdir", "awk", "gunzip", "gzip", "md5sum", "mv", "rm", "sh", "cat", "cp", "basename"]:
            found = shutil.which(tool)
            if found is None:
                self.skipTest(f"no {tool} on this machine")
            os.symlink(found, os.path.join(only, tool))
        for name, text in extra:
            write_executable(os.path.join(only, name), text)
        return only

    def test_wget_serves_when_there_is_no_curl(self):
        self.serve_all()
        r = self.fetch(path=self.tools_only_bin(("wget", FAKE_DOWNLOADER)))
        self.assert_ready(r)
        self.assertEqual(self.requests(), [f"wget {mirrors()[0]}/{n}.gz" for n in NAMES])
        for name in NAMES:
            self.assertEqual(self.gz_content(name), self.content[name])

    def test_without_curl_or_wget_one_line_says_so(self):
        self.serve_all()
        r = self.fetch(path=self.tools_only_bin())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "fetch_mnist.sh: neither curl nor wget is installed; install one, or copy the "
                                   f"four files into {self.dest} by hand\n")
        self.assertFalse(os.path.exists(self.dest))


class RealMnist(unittest.TestCase):
    """The checked-in MD5SUMS against real MNIST, served as the first mirror would serve it."""

    def test_real_files_download_and_verify_against_md5sums(self):
        mnist = os.environ.get("MNIST_DIR", "")
        if not mnist:
            self.skipTest("MNIST_DIR is not set: real MNIST is needed to check data/MD5SUMS")
        with tempfile.TemporaryDirectory() as tmp:
            net = os.path.join(tmp, "net")
            served = os.path.join(net, mirrors()[0][len("https://"):])
            os.makedirs(served)
            for name in NAMES:
                raw = os.path.join(mnist, name)
                if os.path.exists(raw + ".gz"):
                    shutil.copy(raw + ".gz", served)
                else:
                    with open(raw, "rb") as f, open(os.path.join(served, name + ".gz"), "wb") as out:
                        out.write(gzip.compress(f.read(), compresslevel=1))
            fake = os.path.join(tmp, "bin")
            os.makedirs(fake)
            write_executable(os.path.join(fake, "curl"), FAKE_DOWNLOADER)
            dest = os.path.join(tmp, "mnist")
            env = dict(os.environ, FAKE_NET_ROOT=net, FAKE_NET_LOG=os.path.join(tmp, "requests.log"),
                       PATH=fake + os.pathsep + os.environ["PATH"])
            for verb in ("downloaded", "present"):
                r = subprocess.run([BASH, SCRIPT, dest], capture_output=True, text=True, timeout=120, env=env)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertEqual(r.stdout.count(f"{verb} and verified"), 4, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
