// End-to-end test of the CLI contract for bad data: `convnet train` / `convnet eval` (the binary in
// CONVNET_BINARY) run on a folder with one damaged IDX file, or with a damaged model file, must print
// exactly ONE line to stderr, starting "convnet: error: " and naming the offending file, and exit
// with code 2 (kExitUsage). A positive control trains on tiny synthetic data first so the harness
// itself is known to work (a binary that always fails would otherwise pass every case).
//
// The binary runs in a child process (fork + exec) with stdout and stderr sent to files in a fresh
// temporary folder; alarm() bounds each run so a case that unexpectedly starts training cannot hang.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "errors.h"
#include "temp_dir.h"
#include "process.h"

namespace convnet {
namespace {

using Bytes = std::vector<uint8_t>;

// TempDir from temp_dir.h, with this suite's folder prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("convnet_test_cli") {}
};

void put_be32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

Bytes make_images(uint32_t n, uint32_t side = 28) {
  Bytes b;
  put_be32(b, 2051);
  put_be32(b, n);
  put_be32(b, side);
  put_be32(b, side);
  for (uint32_t i = 0; i < n * side * side; ++i) b.push_back(static_cast<uint8_t>((i * 37) % 256));
  return b;
}

Bytes make_labels(uint32_t n) {
  Bytes b;
  put_be32(b, 2049);
  put_be32(b, n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i % 10));
  return b;
}

// Writes path, gzipping `b` when the name ends in ".gz" unless raw is set.
void write_file(const std::string& path, const Bytes& b, bool raw = false) {
  if (!raw && path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr) << path;
    if (!b.empty()) {
      ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
    }
    ASSERT_EQ(gzclose(f), Z_OK) << path;
    return;
  }
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!b.empty()) {  // fwrite(nullptr, ...) is undefined even for 0 bytes
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size()) << path;
  }
  ASSERT_EQ(std::fclose(f), 0) << path;
}

std::string read_text(const std::string& path) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return s;
  int c;
  while ((c = std::fgetc(f)) != EOF) s.push_back(static_cast<char>(c));
  std::fclose(f);
  return s;
}

// A small good dataset: 64 train and 16 test images, files as named (the train images gzipped).
void write_good_dataset(const TempDir& dir) {
  write_file(dir.file("train-images-idx3-ubyte.gz"), make_images(64));
  write_file(dir.file("train-labels-idx1-ubyte"), make_labels(64));
  write_file(dir.file("t10k-images-idx3-ubyte"), make_images(16));
  write_file(dir.file("t10k-labels-idx1-ubyte.gz"), make_labels(16));
}

using test::ProcessResult;

ProcessResult run_convnet(const TempDir&, const std::vector<std::string>& args) { return test::run_convnet(args); }

std::vector<std::string> train_args(const std::string& data_dir) {
  return {"train", "--data", data_dir, "--epochs", "1", "--limit-train", "64", "--device", "cpu"};
}

// The contract: exit 2, one stderr line "convnet: error: ..." that contains `names` and `phrase`.
void expect_one_line_error(const ProcessResult& r, const std::string& names, const std::string& phrase) {
  EXPECT_EQ(r.exit_code, kExitUsage) << "stderr: " << r.err;
  EXPECT_EQ(r.err.rfind("convnet: error: ", 0), 0u) << "stderr: " << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.back(), '\n') << "stderr: " << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "stderr is not exactly one line: " << r.err;
  EXPECT_NE(r.err.find(names), std::string::npos) << "stderr does not name " << names << ": " << r.err;
  EXPECT_NE(r.err.find(phrase), std::string::npos) << "stderr lacks '" << phrase << "': " << r.err;
}

// Replaces one file of a good dataset with `bytes` (under the name bad_name, any accepted naming;
// gzipped when it ends in .gz unless raw) and expects train to refuse it.
void expect_train_refuses(const std::string& bad_name, const Bytes& bytes, const std::string& phrase,
                          bool raw = false) {
  SCOPED_TRACE(bad_name + ": " + phrase);
  TempDir dir;
  write_good_dataset(dir);
  const std::string stem = bad_name.substr(0, bad_name.find("idx") - 1);  // e.g. "t10k-images"
  const std::string type = bad_name.substr(stem.size() + 1, 10);           // e.g. "idx3-ubyte"
  for (const std::string sep : {"-", "."})
    for (const std::string ext : {"", ".gz"}) std::filesystem::remove(dir.file(stem + sep + type + ext));
  write_file(dir.file(bad_name), bytes, raw);
  expect_one_line_error(run_convnet(dir, train_args(dir.path())), dir.file(bad_name), phrase);
}

TEST(CliDataErrors, GoodTinyDatasetTrainsAndEvaluates) {
  TempDir dir;
  write_good_dataset(dir);
  std::vector<std::string> args = train_args(dir.path());
  args.insert(args.end(), {"--save", dir.file("m.model")});
  ProcessResult train = run_convnet(dir, args);
  ASSERT_EQ(train.exit_code, 0) << "stdout: " << train.out << "\nstderr: " << train.err;
  ProcessResult eval = run_convnet(dir, {"eval", "--model", dir.file("m.model"), "--data", dir.path(), "--device", "cpu"});
  EXPECT_EQ(eval.exit_code, 0) << "stdout: " << eval.out << "\nstderr: " << eval.err;
  EXPECT_EQ(eval.err, "");
  // The same model with its checksum damaged is refused.
  std::string model = read_text(dir.file("m.model"));
  ASSERT_GT(model.size(), 4u);
  model.back() = static_cast<char>(model.back() ^ 0x5a);
  write_file(dir.file("m.model"), Bytes(model.begin(), model.end()));
  expect_one_line_error(run_convnet(dir, {"eval", "--model", dir.file("m.model"), "--data", dir.path(), "--device", "cpu"}),
                        dir.file("m.model"), "checksum mismatch");
}

TEST(CliDataErrors, MissingFolder) {
  TempDir dir;
  const std::string missing = dir.file("no_such_folder");
  expect_one_line_error(run_convnet(dir, train_args(missing)), missing + "/train-images-idx3-ubyte", "not found");
}

TEST(CliDataErrors, MissingLabelsFile) {
  TempDir dir;
  write_good_dataset(dir);
  std::filesystem::remove(dir.file("t10k-labels-idx1-ubyte.gz"));
  expect_one_line_error(run_convnet(dir, train_args(dir.path())), "t10k-labels-idx1-ubyte", "not found");
}

TEST(CliDataErrors, BadImageFiles) {
  expect_train_refuses("train-images-idx3-ubyte", {}, "empty file");
  Bytes truncated = make_images(64);
  truncated.resize(16 + 1234);
  expect_train_refuses("train-images-idx3-ubyte.gz", truncated,
                       "declares 64 images of 28x28 (50176 bytes) but only 1234 bytes follow the header");
  expect_train_refuses("train-images-idx3-ubyte", make_labels(64), "wrong magic number 0x00000801");
  expect_train_refuses("t10k-images.idx3-ubyte", make_images(16, 32), "images are 32x32, expected 28x28");
  Bytes huge = make_images(0);
  huge.resize(40, 0);
  huge[4] = 0x80;
  expect_train_refuses("train-images-idx3-ubyte", huge, "declares 2147483648 images");
  Bytes padded = make_images(64);
  padded.push_back(0);
  expect_train_refuses("train-images-idx3-ubyte", padded, "trailing garbage");
}

TEST(CliDataErrors, BadLabelFiles) {
  expect_train_refuses("train-labels-idx1-ubyte", make_labels(63), "holds 63 labels");
  Bytes out_of_range = make_labels(16);
  out_of_range[8 + 5] = 200;
  expect_train_refuses("t10k-labels-idx1-ubyte.gz", out_of_range, "label 200 at index 5");
}

TEST(CliDataErrors, CorruptGzip) {
  TempDir scratch;
  write_file(scratch.file("x.gz"), make_labels(64));
  Bytes gz;
  for (char c : read_text(scratch.file("x.gz"))) gz.push_back(static_cast<uint8_t>(c));
  Bytes truncated(gz.begin(), gz.end() - 5);
  expect_train_refuses("train-labels-idx1-ubyte.gz", truncated, "corrupt gzip data (truncated", true);
  gz[gz.size() - 6] ^= 0xff;  // CRC-32 trailer
  expect_train_refuses("train-labels-idx1-ubyte.gz", gz, "corrupt gzip data (incorrect data check", true);
}

TEST(CliDataErrors, BadModelFile) {
  TempDir dir;
  write_good_dataset(dir);
  const std::string missing = dir.file("absent.model");
  expect_one_line_error(run_convnet(dir, {"eval", "--model", missing, "--data", dir.path(), "--device", "cpu"}),
                        missing, "No such file or directory");
  const std::string foreign = dir.file("foreign.model");
  write_file(foreign, make_images(1));
  expect_one_line_error(run_convnet(dir, {"eval", "--model", foreign, "--data", dir.path(), "--device", "cpu"}),
                        foreign, "not a convnet model file");
}

TEST(CliDataErrors, UnknownDataset) {
  TempDir dir;
  ProcessResult r = run_convnet(dir, {"train", "--dataset", "cifar", "--epochs", "1", "--device", "cpu"});
  expect_one_line_error(r, "--dataset", "unknown dataset 'cifar' (expected mnist or fashion)");
}

}  // namespace
}  // namespace convnet
