// Tests of the IDX reader (host/idx.cpp): synthetic good and bad files, raw and gzipped, in both
// namings, written into a fresh temporary folder; then real MNIST ($MNIST_DIR) and Fashion-MNIST
// (/usr/share/datasets/fashion-mnist), each skipped with the reason when absent.
//
// Every bad case asserts that InputError is thrown, that its message is one line, names the file,
// and contains the key phrase a user needs to see.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "errors.h"
#include "temp_dir.h"
#include "idx.h"

namespace convnet {
namespace {

using Bytes = std::vector<uint8_t>;

// TempDir from temp_dir.h, with this suite's folder prefix.
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("convnet_test_idx") {}
};

void put_be32(Bytes& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<uint8_t>(v >> shift));
}

// An idx3 file of n 28x28 images; pixel (i, p) = (i * 7 + p) % 256 so images differ.
Bytes make_images(uint32_t n, uint32_t rows = 28, uint32_t cols = 28, uint32_t magic = 2051) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  put_be32(b, rows);
  put_be32(b, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t p = 0; p < rows * cols; ++p) b.push_back(static_cast<uint8_t>((i * 7 + p) % 256));
  return b;
}

// An idx1 file of n labels; label i = i % 10.
Bytes make_labels(uint32_t n, uint32_t magic = 2049) {
  Bytes b;
  put_be32(b, magic);
  put_be32(b, n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(i % 10));
  return b;
}

void write_raw(const std::string& path, const Bytes& b) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!b.empty()) {  // fwrite(nullptr, ...) is undefined even for 0 bytes
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size()) << path;
  }
  ASSERT_EQ(std::fclose(f), 0) << path;
}

void write_gz(const std::string& path, const Bytes& b) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!b.empty()) {
    ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK) << path;
}

// Writes path raw, or gzipped when it ends in ".gz".
void write_file(const std::string& path, const Bytes& b) {
  if (path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0)
    write_gz(path, b);
  else
    write_raw(path, b);
}

Bytes read_raw(const std::string& path) {
  Bytes b;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return b;
  int c;
  while ((c = std::fgetc(f)) != EOF) b.push_back(static_cast<uint8_t>(c));
  std::fclose(f);
  return b;
}

// Runs fn, expecting an InputError whose one-line message contains `file` and `phrase`.
template <typename Fn>
void expect_input_error(Fn fn, const std::string& file, const std::string& phrase) {
  try {
    fn();
    ADD_FAILURE() << "no InputError thrown; expected one naming " << file << " with '" << phrase << "'";
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << "message does not name " << file << ": " << msg;
    EXPECT_NE(msg.find(phrase), std::string::npos) << "message lacks '" << phrase << "': " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "message is not one line: " << msg;
  }
}

// Loads an images file written with `bytes` (and good labels for 3 images) and expects the error.
void expect_bad_images(const Bytes& bytes, const std::string& name, const std::string& phrase) {
  TempDir dir;
  write_file(dir.file(name), bytes);
  write_file(dir.file("train-labels-idx1-ubyte"), make_labels(3));
  expect_input_error([&] { load_idx_pair(dir.file(name), dir.file("train-labels-idx1-ubyte")); }, name, phrase);
}

void expect_bad_labels(const Bytes& bytes, const std::string& name, const std::string& phrase) {
  TempDir dir;
  write_file(dir.file("train-images-idx3-ubyte"), make_images(3));
  write_file(dir.file(name), bytes);
  expect_input_error([&] { load_idx_pair(dir.file("train-images-idx3-ubyte"), dir.file(name)); }, name, phrase);
}

// ---- good files ----------------------------------------------------------------------------------

TEST(Idx, ParsesRawImagesAndLabels) {
  TempDir dir;
  write_raw(dir.file("train-images-idx3-ubyte"), make_images(3));
  write_raw(dir.file("train-labels-idx1-ubyte"), make_labels(3));
  ImageSet set = load_idx_pair(dir.file("train-images-idx3-ubyte"), dir.file("train-labels-idx1-ubyte"));
  ASSERT_EQ(set.count, 3);
  ASSERT_EQ(set.images.size(), 3u * kImagePixels);
  EXPECT_EQ(set.labels, (Bytes{0, 1, 2}));
  EXPECT_EQ(set.images[0], 0);
  EXPECT_EQ(set.images[kImagePixels + 1], 8);  // image 1, pixel 1: (7 + 1) % 256
  EXPECT_EQ(set.images[2 * kImagePixels + 783], (2 * 7 + 783) % 256);
}

TEST(Idx, GzipAndRawGiveTheSameBytes) {
  TempDir dir;
  Bytes images = make_images(4);
  write_raw(dir.file("raw"), images);
  write_gz(dir.file("packed.gz"), images);
  EXPECT_EQ(read_maybe_gzip(dir.file("raw")), images);
  EXPECT_EQ(read_maybe_gzip(dir.file("packed.gz")), images);
  // Detection is by the 1f 8b magic, not the name.
  std::filesystem::rename(dir.file("packed.gz"), dir.file("packed"));
  EXPECT_EQ(read_maybe_gzip(dir.file("packed")), images);
}

TEST(Idx, ConcatenatedGzipMembersAreOneStream) {
  TempDir dir;
  Bytes images = make_images(2);
  Bytes first(images.begin(), images.begin() + 100), second(images.begin() + 100, images.end());
  write_gz(dir.file("a.gz"), first);
  write_gz(dir.file("b.gz"), second);
  Bytes joined = read_raw(dir.file("a.gz")), tail = read_raw(dir.file("b.gz"));
  joined.insert(joined.end(), tail.begin(), tail.end());
  write_raw(dir.file("joined.gz"), joined);
  EXPECT_EQ(read_maybe_gzip(dir.file("joined.gz")), images);
}

// load_dataset finds all four files under each naming, raw and gzipped.
struct Naming {
  const char* sep;    // between the stem and the type: "-" or "."
  const char* ext;    // "" or ".gz"
  const char* label;  // test name suffix
};

void PrintTo(const Naming& n, std::ostream* os) { *os << n.label; }  // readable ctest names

class IdxNaming : public ::testing::TestWithParam<Naming> {};

TEST_P(IdxNaming, LoadsDataset) {
  const std::string sep = GetParam().sep, ext = GetParam().ext;
  TempDir dir;
  write_file(dir.file("train-images" + sep + "idx3-ubyte" + ext), make_images(5));
  write_file(dir.file("train-labels" + sep + "idx1-ubyte" + ext), make_labels(5));
  write_file(dir.file("t10k-images" + sep + "idx3-ubyte" + ext), make_images(3));
  write_file(dir.file("t10k-labels" + sep + "idx1-ubyte" + ext), make_labels(3));
  EXPECT_EQ(find_idx_file(dir.path(), "t10k-labels"), dir.file("t10k-labels" + sep + "idx1-ubyte" + ext));
  Dataset ds = load_dataset(dir.path(), "mnist");
  EXPECT_EQ(ds.name, "mnist");
  EXPECT_EQ(ds.dir, dir.path());
  EXPECT_EQ(ds.train.count, 5);
  EXPECT_EQ(ds.test.count, 3);
  const Bytes train_file = make_images(5);
  EXPECT_EQ(ds.train.images, Bytes(train_file.begin() + 16, train_file.end()));
  EXPECT_EQ(ds.test.labels, (Bytes{0, 1, 2}));
}

INSTANTIATE_TEST_SUITE_P(Idx, IdxNaming,
                         ::testing::Values(Naming{"-", "", "DashRaw"}, Naming{"-", ".gz", "DashGzip"},
                                           Naming{".", "", "DotRaw"}, Naming{".", ".gz", "DotGzip"}),
                         [](const ::testing::TestParamInfo<Naming>& info) { return std::string(info.param.label); });

// ---- missing and unreadable files ------------------------------------------------------------------

TEST(Idx, MissingFileListsNamesTriedAndSuggestsFetch) {
  TempDir dir;
  expect_input_error([&] { find_idx_file(dir.path(), "train-images"); }, dir.path(), "not found");
  try {
    find_idx_file(dir.path(), "train-images");
  } catch (const InputError& e) {
    std::string msg = e.what();
    for (const char* name : {"train-images-idx3-ubyte", "train-images-idx3-ubyte.gz", "train-images.idx3-ubyte",
                             "train-images.idx3-ubyte.gz"})
      EXPECT_NE(msg.find(name), std::string::npos) << name << " not listed: " << msg;
    EXPECT_NE(msg.find("data/fetch_mnist.sh"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--data"), std::string::npos) << msg;
  }
  // load_dataset reports the first missing file; here only the labels are missing.
  write_raw(dir.file("train-images-idx3-ubyte"), make_images(1));
  expect_input_error([&] { load_dataset(dir.path(), "mnist"); }, "train-labels-idx1-ubyte", "not found");
}

// eval and show read only the test files, train --no-test only the training files.
TEST(Idx, ASplitNotAskedForIsNotRead) {
  TempDir train_only, test_only;
  write_file(train_only.file("train-images-idx3-ubyte"), make_images(5));
  write_file(train_only.file("train-labels-idx1-ubyte"), make_labels(5));
  write_file(test_only.file("t10k-images-idx3-ubyte"), make_images(3));
  write_file(test_only.file("t10k-labels-idx1-ubyte"), make_labels(3));
  const Dataset train = load_dataset(train_only.path(), "mnist", Splits::TrainOnly);
  EXPECT_EQ(train.train.count, 5);
  EXPECT_EQ(train.test.count, 0);
  const Dataset test = load_dataset(test_only.path(), "mnist", Splits::TestOnly);
  EXPECT_EQ(test.train.count, 0);
  EXPECT_EQ(test.test.count, 3);
  expect_input_error([&] { load_dataset(train_only.path(), "mnist"); }, "t10k-images-idx3-ubyte", "not found");
  expect_input_error([&] { load_dataset(test_only.path(), "mnist", Splits::TrainOnly); }, "train-images-idx3-ubyte",
                     "not found");
}

TEST(Idx, MissingFolderIsNamed) {
  TempDir dir;
  std::string missing = dir.file("no_such_folder");
  expect_input_error([&] { load_dataset(missing, "mnist"); }, missing + "/train-images-idx3-ubyte.gz",
                     "the folder does not exist");
}

TEST(Idx, MissingFileRead) {
  TempDir dir;
  expect_input_error([&] { read_maybe_gzip(dir.file("absent-idx3-ubyte")); }, "absent-idx3-ubyte",
                     "No such file or directory");
}

TEST(Idx, UnreadableFile) {
  // Tests run as root, so permissions do not stop a read; a folder in the file's place does.
  TempDir dir;
  ASSERT_EQ(mkdir(dir.file("train-images-idx3-ubyte").c_str(), 0755), 0);
  write_raw(dir.file("train-labels-idx1-ubyte"), make_labels(1));
  expect_input_error(
      [&] { load_idx_pair(dir.file("train-images-idx3-ubyte"), dir.file("train-labels-idx1-ubyte")); },
      "train-images-idx3-ubyte", "is a directory");
}

// ---- malformed content ---------------------------------------------------------------------------

TEST(Idx, EmptyFile) {
  expect_bad_images({}, "train-images-idx3-ubyte", "empty file");
  expect_bad_labels({}, "train-labels-idx1-ubyte.gz", "empty file");  // gzip of nothing
}

TEST(Idx, TruncatedHeader) {
  Bytes images = make_images(3);
  expect_bad_images(Bytes(images.begin(), images.begin() + 2), "train-images-idx3-ubyte", "truncated header");
  expect_bad_images(Bytes(images.begin(), images.begin() + 10), "train-images-idx3-ubyte.gz",
                    "truncated header: the file has 10 bytes, an idx3 image file header needs 16");
  Bytes labels = make_labels(3);
  expect_bad_labels(Bytes(labels.begin(), labels.begin() + 7), "train-labels.idx1-ubyte", "truncated header");
}

TEST(Idx, TruncatedData) {
  Bytes images = make_images(3);
  images.resize(16 + 1234);
  expect_bad_images(images, "train-images-idx3-ubyte",
                    "declares 3 images of 28x28 (2352 bytes) but only 1234 bytes follow the header at byte "
                    "offset 16");
  Bytes labels = make_labels(3);
  labels.pop_back();
  expect_bad_labels(labels, "train-labels-idx1-ubyte.gz",
                    "declares 3 labels (3 bytes) but only 2 bytes follow the header at byte offset 8");
}

TEST(Idx, WrongMagic) {
  expect_bad_images(make_labels(3), "train-images-idx3-ubyte.gz",
                    "wrong magic number 0x00000801 (expected 2051 = 0x00000803 for an idx3 image file)");
  expect_bad_labels(make_images(3), "train-labels-idx1-ubyte",
                    "wrong magic number 0x00000803 (expected 2049 = 0x00000801 for an idx1 label file)");
  expect_bad_images(make_images(3, 28, 28, 0x12345678), "train-images-idx3-ubyte", "wrong magic number 0x12345678");
}

TEST(Idx, WrongDimensions) {
  expect_bad_images(make_images(3, 32, 32), "train-images-idx3-ubyte", "images are 32x32, expected 28x28");
  expect_bad_images(make_images(3, 28, 27), "train-images-idx3-ubyte", "images are 28x27, expected 28x28");
}

TEST(Idx, HugeDeclaredCountIsRefusedBeforeAllocating) {
  Bytes images = make_images(0);
  images.resize(40, 0);  // 24 bytes of "pixels"
  images[4] = 0x80;      // count = 2^31
  auto start = std::chrono::steady_clock::now();
  expect_bad_images(images, "train-images-idx3-ubyte", "declares 2147483648 images of 28x28");
  Bytes labels = make_labels(1);
  labels[4] = labels[5] = labels[6] = labels[7] = 0xff;  // count = 2^32 - 1
  expect_bad_labels(labels, "train-labels-idx1-ubyte", "declares 4294967295 labels");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 1.0);
}

TEST(Idx, TrailingGarbage) {
  Bytes images = make_images(3);
  images.push_back(0);
  expect_bad_images(images, "train-images-idx3-ubyte", "1 bytes of trailing garbage at byte offset 2368");
  Bytes labels = make_labels(3);
  labels.insert(labels.end(), 5, 1);
  expect_bad_labels(labels, "train-labels-idx1-ubyte.gz",
                    "5 bytes of trailing garbage at byte offset 11 of the decompressed data");
}

TEST(Idx, CountMismatchNamesBothFiles) {
  TempDir dir;
  write_file(dir.file("train-images-idx3-ubyte.gz"), make_images(4));
  write_file(dir.file("train-labels-idx1-ubyte"), make_labels(3));
  std::string images = dir.file("train-images-idx3-ubyte.gz"), labels = dir.file("train-labels-idx1-ubyte");
  expect_input_error([&] { load_idx_pair(images, labels); }, images, "holds 4 images but");
  expect_input_error([&] { load_idx_pair(images, labels); }, labels, "holds 3 labels");
}

TEST(Idx, ZeroImagesIsAnError) {
  TempDir dir;
  write_file(dir.file("i"), make_images(0));
  write_file(dir.file("l"), make_labels(0));
  expect_input_error([&] { load_idx_pair(dir.file("i"), dir.file("l")); }, dir.file("i"), "declares 0 images");
}

TEST(Idx, LabelOutOfRange) {
  Bytes labels = make_labels(3);
  labels[8 + 2] = 11;
  expect_bad_labels(labels, "train-labels-idx1-ubyte",
                    "label 11 at index 2 (byte offset 10) is out of range, expected 0..9");
  labels[8 + 2] = 10;
  expect_bad_labels(labels, "train-labels-idx1-ubyte.gz", "label 10 at index 2 (byte offset 10 of the decompressed");
}

// ---- corrupt gzip --------------------------------------------------------------------------------

TEST(Idx, CorruptGzip) {
  TempDir dir;
  write_gz(dir.file("good.gz"), make_images(3));
  Bytes gz = read_raw(dir.file("good.gz"));
  ASSERT_GT(gz.size(), 40u);
  Bytes flipped = gz;
  flipped[gz.size() - 6] ^= 0xff;  // inside the CRC-32 trailer
  expect_bad_images(flipped, "train-images-idx3-ubyte", "corrupt gzip data (");
  flipped = gz;
  flipped[3] = 0xff;  // reserved flag bits
  expect_bad_images(flipped, "train-images-idx3-ubyte", "corrupt gzip data (");
  Bytes garbage = gz;
  garbage.insert(garbage.end(), {1, 2, 3});
  expect_bad_images(garbage, "train-images-idx3-ubyte", "trailing garbage after the gzip stream");
}

TEST(Idx, TruncatedGzip) {
  TempDir dir;
  write_gz(dir.file("good.gz"), make_images(3));
  Bytes gz = read_raw(dir.file("good.gz"));
  for (size_t len : {size_t{2}, size_t{10}, gz.size() / 2, gz.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(len) + " bytes");
    expect_bad_images(Bytes(gz.begin(), gz.begin() + static_cast<long>(len)), "train-images-idx3-ubyte",
                      "corrupt gzip data (");
  }
}

TEST(Idx, GzipBombIsCapped) {
  // 65 MiB of zeros compresses to ~65 KB; it must be refused at the 64 MiB cap, not inflated whole.
  TempDir dir;
  std::string path = dir.file("train-images-idx3-ubyte.gz");
  gzFile f = gzopen(path.c_str(), "wb1");
  ASSERT_NE(f, nullptr);
  Bytes zeros(1 << 20, 0);
  for (int i = 0; i < 65; ++i) ASSERT_EQ(gzwrite(f, zeros.data(), static_cast<unsigned>(zeros.size())), 1 << 20);
  ASSERT_EQ(gzclose(f), Z_OK);
  expect_input_error([&] { read_maybe_gzip(path); }, path, "decompresses to more than the 64 MiB limit");
}

// ---- data directory ------------------------------------------------------------------------------

// Restores MNIST_DIR as it was when the test started.
class SavedEnv {
 public:
  SavedEnv() {
    const char* v = std::getenv("MNIST_DIR");
    had_ = v != nullptr;
    if (had_) value_ = v;
  }
  ~SavedEnv() {
    if (had_)
      setenv("MNIST_DIR", value_.c_str(), 1);
    else
      unsetenv("MNIST_DIR");
  }

 private:
  bool had_ = false;
  std::string value_;
};

TEST(Idx, DefaultDataDirPrecedence) {
  SavedEnv saved;
  unsetenv("MNIST_DIR");
  EXPECT_EQ(default_data_dir("", "mnist"), "data/mnist");
  setenv("MNIST_DIR", "", 1);
  EXPECT_EQ(default_data_dir("", "mnist"), "data/mnist");  // empty means unset
  setenv("MNIST_DIR", "/env/mnist", 1);
  EXPECT_EQ(default_data_dir("", "mnist"), "/env/mnist");
  EXPECT_EQ(default_data_dir("/flag/dir", "mnist"), "/flag/dir");  // the flag wins
  EXPECT_EQ(default_data_dir("", "fashion"), "/usr/share/datasets/fashion-mnist");  // MNIST_DIR is MNIST's
  EXPECT_EQ(default_data_dir("/flag/dir", "fashion"), "/flag/dir");
}

TEST(Idx, UnknownDatasetIsUsageError) {
  try {
    default_data_dir("", "cifar");
    ADD_FAILURE() << "no UsageError for dataset 'cifar'";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--dataset: unknown dataset 'cifar' (expected mnist or fashion)");
  }
  EXPECT_THROW(default_data_dir("/some/dir", "MNIST"), UsageError);
}

// ---- real data -----------------------------------------------------------------------------------

// Counts and label histogram of a real MNIST-family dataset.
void check_real_dataset(const Dataset& ds) {
  ASSERT_EQ(ds.train.count, 60000);
  ASSERT_EQ(ds.test.count, 10000);
  ASSERT_EQ(ds.train.images.size(), 60000u * kImagePixels);
  ASSERT_EQ(ds.test.images.size(), 10000u * kImagePixels);
  for (const ImageSet* set : {&ds.train, &ds.test}) {
    std::vector<int> histogram(kNumClasses, 0);
    for (uint8_t label : set->labels) histogram.at(label) += 1;
    int sum = 0;
    for (int c = 0; c < kNumClasses; ++c) {
      EXPECT_GT(histogram[c], set->count / 20) << "class " << c << " is nearly absent";
      sum += histogram[c];
    }
    EXPECT_EQ(sum, set->count);
  }
}

TEST(IdxReal, Mnist) {
  const char* dir = std::getenv("MNIST_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "MNIST_DIR not set";
  Dataset ds = load_dataset(dir, "mnist");
  check_real_dataset(ds);
  EXPECT_EQ(Bytes(ds.train.labels.begin(), ds.train.labels.begin() + 5), (Bytes{5, 0, 4, 1, 9}));
  EXPECT_EQ(Bytes(ds.test.labels.begin(), ds.test.labels.begin() + 5), (Bytes{7, 2, 1, 0, 4}));
  // Known per-class counts of the MNIST training set.
  std::vector<int> histogram(kNumClasses, 0);
  for (uint8_t label : ds.train.labels) histogram[label] += 1;
  EXPECT_EQ(histogram, (std::vector<int>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}));
}

TEST(IdxReal, FashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) GTEST_SKIP() << dir << " absent (Debian package dataset-fashion-mnist)";
  Dataset ds = load_dataset(default_data_dir("", "fashion"), "fashion");
  check_real_dataset(ds);
  // Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
  for (const ImageSet* set : {&ds.train, &ds.test}) {
    std::vector<int> histogram(kNumClasses, 0);
    for (uint8_t label : set->labels) histogram[label] += 1;
    EXPECT_EQ(histogram, std::vector<int>(kNumClasses, set->count / kNumClasses));
  }
}

}  // namespace
}  // namespace convnet
