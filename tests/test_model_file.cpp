// Tests of the model file (host/model_file.cpp): round trip, then every way a file can be damaged
// (each flipped byte, each truncation, wrong magic, future version, lengths larger than the file,
// dims that overflow, trailing bytes, missing file) must raise InputError naming the file; and the
// atomic write leaves no temporary behind and never clobbers a previous good file when it fails.
//
// Crafted files are built with a small little-endian writer here (independent of the code under
// test) and get a correct CRC, so the structural check, not the checksum, is what refuses them.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "errors.h"
#include "temp_dir.h"
#include "model_file.h"

namespace convnet {
namespace {

using Bytes = std::vector<uint8_t>;

// TempDir from temp_dir.h, with this suite's folder prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("convnet_test_model") {}
};

void write_raw(const std::string& path, const Bytes& b) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!b.empty()) {  // fwrite(nullptr, ...) is undefined even for 0 bytes
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size()) << path;
  }
  ASSERT_EQ(std::fclose(f), 0) << path;
}

Bytes read_raw(const std::string& path) {
  Bytes b;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return b;
  uint8_t chunk[4096];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) b.insert(b.end(), chunk, chunk + n);
  std::fclose(f);
  return b;
}

// Little-endian builder for hand-crafted files.
struct Builder {
  Bytes b;
  Builder& raw(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Builder& u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Builder& u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
    return *this;
  }
  Builder& str(const std::string& s) { return u32(static_cast<uint32_t>(s.size())).raw(s); }
  Builder& f32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    return u32(bits);
  }
  // Header through the metadata: magic, version, arch, no metadata.
  Builder& header(uint32_t version = 1) { return raw("CNVNMODL").u32(version).str("a").u32(0); }
  Bytes with_crc() const {
    Builder out = *this;
    out.u32(static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), b.data(), static_cast<uInt>(b.size()))));
    return out.b;
  }
};

std::vector<uint32_t> float_bits(const std::vector<float>& v) {
  std::vector<uint32_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) std::memcpy(&bits[i], &v[i], 4);
  return bits;
}

ModelFile sample_model() {
  ModelFile m;
  m.arch = "conv3x3x32-relu-maxpool2-conv3x3x64-relu-maxpool2-flatten-dropout0.5-dense10";
  m.metadata = {{"dataset", "mnist"}, {"epochs", "15"}, {"test_accuracy", "0.9912"}, {"empty", ""}};
  m.tensors.push_back({"conv1.weight", {2, 1, 3, 3}, {}});
  for (int i = 0; i < 18; ++i) m.tensors.back().data.push_back(0.25f * static_cast<float>(i) - 2.0f);
  m.tensors.push_back({"conv1.bias", {2}, {-0.0f, 3.5e-38f}});
  m.tensors.push_back({"step", {}, {1234.0f}});          // 0-d: one value
  m.tensors.push_back({"empty", {0, 5}, {}});             // zero values
  m.tensors.push_back({"odd", {1, 3}, {1e30f, -1e-30f, 7.0f}});
  return m;
}

// Expects load_model_file(path) to throw InputError naming path and containing phrase.
void expect_load_error(const std::string& path, const std::string& phrase) {
  try {
    load_model_file(path);
    ADD_FAILURE() << "no InputError loading " << path << "; expected '" << phrase << "'";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << msg;
    EXPECT_NE(msg.find(phrase), std::string::npos) << "message lacks '" << phrase << "': " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

void expect_crafted_error(const Bytes& bytes, const std::string& phrase) {
  TempDir dir;
  write_raw(dir.file("crafted.model"), bytes);
  expect_load_error(dir.file("crafted.model"), phrase);
}

TEST(ModelFile, RoundTrip) {
  TempDir dir;
  ModelFile m = sample_model();
  save_model_file(dir.file("m.model"), m);
  ModelFile got = load_model_file(dir.file("m.model"));
  EXPECT_EQ(got.arch, m.arch);
  EXPECT_EQ(got.metadata, m.metadata);
  ASSERT_EQ(got.tensors.size(), m.tensors.size());
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    EXPECT_EQ(got.tensors[i].name, m.tensors[i].name);
    EXPECT_EQ(got.tensors[i].shape, m.tensors[i].shape);
    ASSERT_EQ(got.tensors[i].data.size(), m.tensors[i].data.size());
    // Bit-exact, including the sign of -0 and denormal-adjacent values.
    EXPECT_EQ(float_bits(got.tensors[i].data), float_bits(m.tensors[i].data)) << m.tensors[i].name;
  }
  EXPECT_EQ(got.find("step")->data, std::vector<float>{1234.0f});
}

TEST(ModelFile, ExactBytesOfAMinimalFile) {
  ModelFile m;
  m.arch = "a";
  m.metadata = {{"k", "v"}};
  m.tensors.push_back({"t", {2}, {1.0f, -2.0f}});
  Bytes expected = Builder()
                       .raw("CNVNMODL")
                       .u32(1)
                       .str("a")
                       .u32(1)
                       .str("k")
                       .str("v")
                       .u32(1)
                       .str("t")
                       .u32(1)
                       .u64(2)
                       .f32(1.0f)
                       .f32(-2.0f)
                       .with_crc();
  TempDir dir;
  save_model_file(dir.file("m.model"), m);
  EXPECT_EQ(read_raw(dir.file("m.model")), expected);
}

TEST(ModelFile, FindAndMeta) {
  ModelFile m = sample_model();
  ASSERT_NE(m.find("conv1.bias"), nullptr);
  EXPECT_EQ(m.find("conv1.bias")->shape, std::vector<uint64_t>{2});
  EXPECT_EQ(m.find("conv2.bias"), nullptr);
  EXPECT_EQ(m.meta("epochs"), "15");
  EXPECT_EQ(m.meta("empty", "x"), "");  // present but empty is not the fallback
  EXPECT_EQ(m.meta("missing"), "");
  EXPECT_EQ(m.meta("missing", "fallback"), "fallback");
}

TEST(ModelFile, EveryFlippedByteIsRefused) {
  TempDir dir;
  ModelFile m;
  m.arch = "small";
  m.metadata = {{"dataset", "mnist"}};
  m.tensors.push_back({"w", {2, 2}, {1, 2, 3, 4}});
  m.tensors.push_back({"s", {}, {5}});
  std::string path = dir.file("m.model");
  save_model_file(path, m);
  const Bytes good = read_raw(path);
  ASSERT_GT(good.size(), 60u);
  // CRC-32 detects every burst of up to 32 bits, so each single-byte change must be caught.
  for (size_t at = 0; at < good.size(); ++at) {
    SCOPED_TRACE("byte " + std::to_string(at) + " flipped");
    Bytes bad = good;
    bad[at] ^= 0xff;
    write_raw(path, bad);
    EXPECT_THROW(load_model_file(path), InputError);
  }
  // Data and checksum bytes give the checksum message.
  Bytes bad = good;
  bad[good.size() - 8] ^= 0x01;  // inside the last float
  write_raw(path, bad);
  expect_load_error(path, "checksum mismatch: file is corrupted (at byte offset " +
                              std::to_string(good.size() - 4) + ")");
}

TEST(ModelFile, EveryTruncationIsRefused) {
  TempDir dir;
  std::string path = dir.file("m.model");
  save_model_file(path, sample_model());
  const Bytes good = read_raw(path);
  for (size_t len = 0; len < good.size(); ++len) {
    SCOPED_TRACE("truncated to " + std::to_string(len) + " bytes");
    write_raw(path, Bytes(good.begin(), good.begin() + static_cast<long>(len)));
    EXPECT_THROW(load_model_file(path), InputError);
  }
  write_raw(path, {});
  expect_load_error(path, "empty file");
  write_raw(path, Bytes(good.begin(), good.end() - 2));
  expect_load_error(path, "truncated: checksum needs 4 bytes but only 2 remain");
}

TEST(ModelFile, WrongMagic) {
  expect_crafted_error(Builder().raw("CNVNMODX").u32(1).str("a").u32(0).u32(0).with_crc(), "wrong magic");
  expect_crafted_error(Builder().raw("CNVN").b, "not a convnet model file");
}

TEST(ModelFile, FutureVersion) {
  expect_crafted_error(Builder().header(2).u32(0).with_crc(),
                       "unsupported model file version 2 (this build reads version 1) (at byte offset 8)");
}

TEST(ModelFile, HugeDeclaredLengthsAreRefusedBeforeAllocating) {
  auto start = std::chrono::steady_clock::now();
  // A tensor of 2^40 floats in a 60-byte file.
  expect_crafted_error(Builder().header().u32(1).str("w").u32(2).u64(1 << 20).u64(1 << 20).f32(0).with_crc(),
                       "tensor 'w' declares 1099511627776 float values");
  // A 4 GiB arch string, a 4-billion-entry metadata table, a huge ndim, a huge name.
  expect_crafted_error(Builder().raw("CNVNMODL").u32(1).u32(0xffffffffu).raw("abc").with_crc(),
                       "arch spec declares 4294967295 bytes but only");
  expect_crafted_error(Builder().raw("CNVNMODL").u32(1).str("a").u32(0xffffffffu).with_crc(),
                       "metadata count 4294967295 cannot fit");
  expect_crafted_error(Builder().header().u32(1).str("w").u32(0x40000000u).with_crc(),
                       "tensor 'w' declares 1073741824 dims");
  expect_crafted_error(Builder().header().u32(1).u32(0x7fffffffu).with_crc(),
                       "tensor 0 name declares 2147483647 bytes");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

TEST(ModelFile, DimsProductOverflow) {
  expect_crafted_error(Builder().header().u32(1).str("w").u32(2).u64(1ull << 33).u64(1ull << 33).with_crc(),
                       "tensor 'w' dims product overflows 64 bits");
}

TEST(ModelFile, TrailingBytes) {
  TempDir dir;
  std::string path = dir.file("m.model");
  save_model_file(path, sample_model());
  Bytes bytes = read_raw(path);
  size_t size = bytes.size();
  bytes.insert(bytes.end(), {0, 0, 0});
  write_raw(path, bytes);
  expect_load_error(path, "3 trailing bytes after the checksum (at byte offset " + std::to_string(size) + ")");
}

TEST(ModelFile, DuplicateTensorName) {
  expect_crafted_error(
      Builder().header().u32(2).str("w").u32(0).f32(1).str("w").u32(0).f32(2).with_crc(),
      "duplicate tensor name 'w'");
}

TEST(ModelFile, MissingFile) {
  TempDir dir;
  expect_load_error(dir.file("absent.model"), "cannot open model file: No such file or directory");
  expect_load_error(dir.path(), "is a directory");
}

TEST(ModelFile, AtomicWriteLeavesOnlyTheTarget) {
  TempDir dir;
  save_model_file(dir.file("m.model"), sample_model());
  save_model_file(dir.file("m.model"), sample_model());  // overwrite
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.model"});
}

TEST(ModelFile, WriteIntoMissingFolderFails) {
  TempDir dir;
  std::string path = dir.file("no_such_folder/m.model");
  try {
    save_model_file(path, sample_model());
    ADD_FAILURE() << "saving into a missing folder did not throw";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": cannot save model file: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  write_raw(dir.file("plain_file"), {1});
  EXPECT_THROW(save_model_file(dir.file("plain_file/m.model"), sample_model()), InputError);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"plain_file"});
}

TEST(ModelFile, FailedWriteKeepsThePreviousFile) {
  // Root ignores permissions, so make the write itself fail: a file-size limit below the model's
  // size makes write() fail with EFBIG (SIGXFSZ ignored so the process survives).
  TempDir dir;
  std::string path = dir.file("m.model");
  save_model_file(path, sample_model());
  const Bytes before = read_raw(path);
  ModelFile big = sample_model();
  big.tensors.push_back({"big", {4096}, std::vector<float>(4096, 1.0f)});

  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = before.size() + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  try {
    save_model_file(path, big);
  } catch (const InputError& e) {
    msg = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, saved_handler);

  EXPECT_NE(msg.find(path + ": cannot save model file: cannot write " + path + ".tmp."), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_EQ(read_raw(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"m.model"});
  EXPECT_EQ(load_model_file(path).tensors.size(), sample_model().tensors.size());
}

}  // namespace
}  // namespace convnet
