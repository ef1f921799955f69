// Regression tests for what fuzzing found (tests/fuzz/, run by tests/fuzz/run.sh), so the ordinary
// suite checks every fixed finding without the fuzzer, plus the "declared sizes are checked before
// any allocation" guarantee for IDX and model files.
//
// Inputs are inline bytes. Each test names the finding, the file that was fixed and how it showed.
// The size tests bound time (well under a second) and memory: getrusage's peak RSS must not grow by
// more than 16 MB across the load (a 2^31-image or 2^31-float allocation would be gigabytes), and
// the error must be InputError, not std::bad_alloc, so the check ran before any allocation was tried.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "cli_options.h"
#include "errors.h"
#include "flags.h"
#include "idx.h"
#include "image_io.h"
#include "model.h"
#include "model_file.h"
#include "model_io.h"

namespace convnet {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes bytes_of(const char* text, size_t n) { return Bytes(text, text + n); }

// A file in a fresh temporary folder holding the given bytes, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const Bytes& bytes) {
    char templ[] = "/tmp/convnet_test_fuzz_XXXXXX";
    const char* made = mkdtemp(templ);
    if (!made) throw std::runtime_error("mkdtemp failed");
    dir_ = made;
    path_ = dir_ + "/" + name;
    FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0)
      throw std::runtime_error("cannot write " + path_);
  }
  ~TempFile() {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
};

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// Runs load, which must throw InputError containing `expected`, within max_seconds and without the
// peak RSS growing by more than 16 MB.
template <class F>
void expect_fast_bounded_refusal(F&& load, const std::string& expected, double max_seconds = 0.25) {
  const long rss_before = peak_rss_kb();
  const auto start = std::chrono::steady_clock::now();
  try {
    load();
    ADD_FAILURE() << "accepted; expected InputError containing: " << expected;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, max_seconds);
  EXPECT_LT(peak_rss_kb() - rss_before, 16 * 1024) << "peak RSS grew by more than 16 MB";
}

// ---- declared sizes are checked before anything is allocated ----------------------------------

// 40 bytes: an idx3 header declaring 2^31 images of 28x28 (1.6 TB), then 24 bytes.
const char kIdx2To31Images[] =
    "\x00\x00\x08\x03" "\x80\x00\x00\x00" "\x00\x00\x00\x1c" "\x00\x00\x00\x1c"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

// The same 40 bytes gzip-compressed (31 bytes).
const char kIdx2To31ImagesGz[] =
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\x63\x60\xe0\x60\x6e\x60"
    "\x00\x03\x19\x28\xc6\x0a\x00\xf7\x27\xf8\x93\x28\x00\x00\x00";

TEST(FuzzRegressions, IdxFileClaiming2To31ImagesIsRefusedFastWithBoundedMemory) {
  const Bytes raw = bytes_of(kIdx2To31Images, sizeof kIdx2To31Images - 1);
  ASSERT_EQ(raw.size(), 40u);
  TempFile file("train-images-idx3-ubyte", raw);
  expect_fast_bounded_refusal(
      [&] {
        int count = 0;
        parse_idx_images(read_maybe_gzip(file.path()), file.path(), &count);
      },
      "declares 2147483648 images of 28x28 (1683627180032 bytes) but only 24 bytes follow the header");

  const Bytes gz = bytes_of(kIdx2To31ImagesGz, sizeof kIdx2To31ImagesGz - 1);
  TempFile gz_file("train-images-idx3-ubyte.gz", gz);
  ASSERT_EQ(read_maybe_gzip(gz_file.path()), raw);
  expect_fast_bounded_refusal(
      [&] {
        int count = 0;
        parse_idx_images(read_maybe_gzip(gz_file.path()), gz_file.path(), &count);
      },
      "declares 2147483648 images of 28x28");
}

// 40 bytes: a model file whose one tensor (empty name) declares 2^31 floats (8 GiB).
const char kModel2To31Floats[] =
    "CNVNMODL" "\x01\x00\x00\x00" "\x00\x00\x00\x00" "\x00\x00\x00\x00" "\x01\x00\x00\x00"
    "\x00\x00\x00\x00" "\x01\x00\x00\x00" "\x00\x00\x00\x80\x00\x00\x00\x00";

TEST(FuzzRegressions, ModelFileClaiming2To31FloatsIsRefusedFastWithBoundedMemory) {
  TempFile file("model.cnvn", bytes_of(kModel2To31Floats, sizeof kModel2To31Floats - 1));
  ASSERT_EQ(sizeof kModel2To31Floats - 1, 40u);
  expect_fast_bounded_refusal([&] { load_model_file(file.path()); },
                              "tensor '' declares 2147483648 float values");
  expect_fast_bounded_refusal([&] { load_trained_model(file.path()); },
                              "tensor '' declares 2147483648 float values");
}

// ---- findings ----------------------------------------------------------------------------------

// Finding (fuzz_model, arch-text mode, after 1.66 million inputs: a 3.5 KB file of the seed model
// whose arch became conv1x1-flatten-dense65536-dense10, malloc(208 MB) over the 64 MB limit; fixed
// in host/model_io.cpp): load_trained_model sized the parameter arena from the arch before it
// compared the tensor shapes with it. The input here is a 213-byte version of the same: a valid
// checksum, six 0-d tensors named as the arch needs, and conv4096x1-flatten-dense65536relu-dense10,
// an arena of 2.1e11 floats (841 GB): ASan out-of-memory in the fuzzer, std::bad_alloc (an
// undocumented error) or the OOM killer in the program.
const char kHugeArchModel[] =
    "CNVNMODL\x01\x00\x00\x00)\x00\x00\x00"
    "conv4096x1-flatten-dense65536relu-dense10\x00\x00\x00\x00\x06\x00\x00\x00\x0d\x00\x00\x00"
    "conv2d.weight\x00\x00\x00\x00\x00\x00\x00\x00\x0b\x00\x00\x00"
    "conv2d.bias\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x00\x00"
    "dense.weight\x00\x00\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00"
    "dense.bias\x00\x00\x00\x00\x00\x00\x00\x00\x0e\x00\x00\x00"
    "dense_1.weight\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x00\x00"
    "dense_1.bias\x00\x00\x00\x00\x00\x00\x00\x00\xa2(\x12\xc9";

TEST(FuzzRegressions, HostileArchInAValidModelFileIsRefusedBeforeTheArenaIsAllocated) {
  TempFile file("model.cnvn", bytes_of(kHugeArchModel, sizeof kHugeArchModel - 1));
  ASSERT_NO_THROW(load_model_file(file.path()));  // the container itself is valid
  expect_fast_bounded_refusal([&] { load_trained_model(file.path()); },
                              "architecture mismatch: tensor 'conv2d.weight' has shape (), architecture "
                              "'conv4096x1-flatten-dense65536relu-dense10' needs (4096, 1, 1, 1)");
}

// Finding (review; fixed in host/model_file.cpp): `--model /dev/zero` read the device until memory
// ran out (1.2 GB in 6 s before a 4 GB ulimit stopped it). Devices are now refused at once.
TEST(FuzzRegressions, ModelFileFromADeviceIsRefusedAtOnce) {
  expect_fast_bounded_refusal([] { load_model_file("/dev/zero"); }, "/dev/zero: cannot read model file: is a device");
}

// Finding (fuzz_cli, 8 s into the first run; fixed in host/model.cpp format_rate): the canonical
// spec printed a dropout rate with "%g", 6 significant digits, so it did not rebuild the rate the
// model was built with, and a saved model's arch differed from the trained one. The fuzzer's input
// (NUL-separated argv):
const char kRateDigitsInput[] =
    "train\0--limit-train\0" "666666666666666666summa6ry\0--arch=conv6x3,pool,flatten,dropout0.0001849866,dense10";

// The spec must rebuild the same model, and every dropout rate the same float.
void expect_round_trip(const std::string& arch) {
  SCOPED_TRACE(arch);
  const Model m = build_model(arch);
  Model again;
  ASSERT_NO_THROW(again = build_model(m.spec)) << m.spec;
  EXPECT_EQ(again.spec, m.spec);
  ASSERT_EQ(again.layers.size(), m.layers.size());
  for (size_t i = 0; i < m.layers.size(); ++i) {
    EXPECT_EQ(again.layers[i].spec.rate, m.layers[i].spec.rate) << m.spec << " layer " << i;
    if (m.layers[i].spec.kind == LayerKind::Dropout) {
      EXPECT_LT(m.layers[i].spec.rate, 1.0f) << m.spec;
    }
  }
}

TEST(FuzzRegressions, DropoutRateSurvivesTheCanonicalSpec) {
  const std::string input(kRateDigitsInput, sizeof kRateDigitsInput - 1);
  const std::string arch = input.substr(input.find("--arch=") + 7);
  expect_round_trip(arch);
  EXPECT_EQ(build_model(arch).spec, "conv6-pool-flatten-dropout0.0001849866-dense10");  // was 0.000184987
  // 0.9999999 became "dropout1", a spec that does not parse: a model saved with it never loaded.
  expect_round_trip("pool-flatten-dropout0.9999999-dense10");
  EXPECT_EQ(build_model("pool-flatten-dropout0.9999999-dense10").spec, "pool-flatten-dropout0.9999999-dense10");
  // The presets and ordinary rates keep their short canonical form.
  EXPECT_EQ(build_model("seed").spec, "conv32-pool-conv64-pool-conv64-pool-flatten-dropout0.6-dense10");
  EXPECT_EQ(build_model("pool-flatten-dropout0.25-dropout0-dense10").spec, "pool-flatten-dropout0.25-dropout0-dense10");
}

// Finding (fuzz_cli, second run; fixed in host/model.cpp format_rate): below 1e-4 "%g" wrote an
// exponent, "dropout1.1976012e-09", and its '-' is the token separator, so the canonical spec did
// not parse ("bad layer 'dropout1.1976012e'"). The fuzzer's spec ended in
// "...-dropout0-dropout0-dropout1.1976012e-09-dense10"; 0.00001 is the everyday case.
TEST(FuzzRegressions, SmallDropoutRateIsWrittenWithoutAnExponent) {
  expect_round_trip("pool-flatten-dropout0.0000000011976012-dense10");
  expect_round_trip("pool-flatten-dropout0.00001-dense10");
  EXPECT_EQ(build_model("pool-flatten-dropout0.00001-dense10").spec, "pool-flatten-dropout0.00001-dense10");
  expect_round_trip("pool-flatten-dropout0.000000000000000000000000000000000000000000001-dense10");  // denormal
}

// Finding (review, then the fuzz_cli rate invariant; fixed in host/model.cpp parse_token):
// 0.99999999 < 1 passed the range check as a double but rounds to 1.0f, the rate the layers use:
// 1 / (1 - rate) is inf, and the CPU layer's CONVNET_CHECK threw std::logic_error at training time
// instead of a UsageError naming --arch.
TEST(FuzzRegressions, DropoutRateThatRoundsToOneIsRefused) {
  try {
    build_model("pool-flatten-dropout0.99999999-dense10");
    ADD_FAILURE() << "accepted a rate that is 1.0f";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("bad layer 'dropout0.99999999': rate must be a number in [0, 1)"),
              std::string::npos)
        << e.what();
  }
}

// Finding (review, then the fuzz_cli u64 invariant; fixed in host/flags.cpp get_u64): strtoull
// skips leading blanks and negates a '-' after them, so --seed " -1" passed the s[0] == '-' test and
// became 18446744073709551615. The input as the fuzzer feeds it:
const char kNegativeSeedInput[] = "train\0--seed\0 -1";

TEST(FuzzRegressions, NegativeSeedBehindABlankIsRefused) {
  const std::string input(kNegativeSeedInput, sizeof kNegativeSeedInput - 1);
  const std::vector<std::string> args = {"--seed", input.substr(input.rfind('\0') + 1)};
  ASSERT_EQ(args[1], " -1");
  Flags f = parse_command_flags("train", args);
  EXPECT_THROW(f.get_u64("seed", 1), UsageError);
  for (const char* bad : {"\t-5", "+-1", " 7", "-0"}) {
    Flags g = parse_command_flags("train", {"--seed", bad});
    EXPECT_THROW(g.get_u64("seed", 1), UsageError) << "'" << bad << "'";
  }
  Flags ok = parse_command_flags("train", {"--seed", "18446744073709551615"});
  EXPECT_EQ(ok.get_u64("seed", 1), 18446744073709551615ull);
}

// The arguments of a fuzz_cli input (NUL-separated, command first), without the command.
std::vector<std::string> cli_args(const char* input, size_t n) {
  std::vector<std::string> tokens(1);
  for (size_t i = 0; i < n; ++i) {
    if (input[i] == '\0') tokens.emplace_back();
    else tokens.back() += input[i];
  }
  return std::vector<std::string>(tokens.begin() + 1, tokens.end());
}

const GpuProbe kNoGpu = [](std::string* why) {
  *why = "test";
  return false;
};

// Finding (fuzz_cli, its first seed run after it moved to host/cli_options.h; the target's invariant
// was wrong, not the program): a new run without --checkpoint has checkpoint_every 0, "no periodic
// checkpoints", and --checkpoint alone makes it 1. Any new-run line without --checkpoint showed it,
// such as this one. The target now expects exactly that.
const char kNoCheckpointInput[] = "train\0--limit-train\0" "1000\0--no-test";

TEST(FuzzRegressions, CheckpointEveryIsZeroWithoutACheckpointAndOneWithIt) {
  const std::vector<std::string> args = cli_args(kNoCheckpointInput, sizeof kNoCheckpointInput - 1);
  ASSERT_EQ(args.size(), 3u);
  EXPECT_EQ(parse_train_options(args, kNoGpu).settings.checkpoint_every, 0);
  const TrainOptions o = parse_train_options({"--checkpoint", "r.ckpt"}, kNoGpu);
  EXPECT_EQ(o.settings.checkpoint_every, 1);
  EXPECT_EQ(o.checkpoint_path, "r.ckpt");
}

// Finding (fuzz_cli, 9,154 executions into its second run; the target's invariant was wrong): a
// --resume line's recipe flags (--seed '^' here) are read against the checkpoint's recipe, so
// parse_train_options, which has no checkpoint yet, leaves them alone and resume_train_options refuses
// them. The target now checks --seed's digits only after resume_train_options accepted the line.
const char kResumeBadSeedInput[] = "train\0--resume=run.ckpt\0--optimizer\0sgd\0--momentum\0"
                                   "0.;summary\0--nesterov\0--seed\0^";

TEST(FuzzRegressions, ResumedRunsRecipeFlagsAreCheckedAgainstTheCheckpoint) {
  const std::vector<std::string> args = cli_args(kResumeBadSeedInput, sizeof kResumeBadSeedInput - 1);
  ASSERT_EQ(args.back(), "^");
  TrainOptions o = parse_train_options(args, kNoGpu);
  EXPECT_TRUE(o.resumed);
  Checkpoint c;
  c.model = build_model("seed");
  c.recipe.arch = c.model.spec;
  c.recipe.optimizer.kind = "sgd";
  c.recipe.optimizer.momentum = 0.9f;
  try {
    resume_train_options(&o, args, c);
    ADD_FAILURE() << "a resumed run accepted --seed '^'";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--seed: expected a non-negative integer, got '^'"), std::string::npos)
        << e.what();
  }
  std::vector<std::string> seed_only = {"--resume", "run.ckpt", "--seed", "^"};
  TrainOptions p = parse_train_options(seed_only, kNoGpu);
  try {
    resume_train_options(&p, seed_only, c);
    ADD_FAILURE() << "a resumed run accepted --seed '^'";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--seed: expected a non-negative integer"), std::string::npos) << e.what();
  }
}

// ---- image files (load_image_gray: stb_image 2.27 from Debian's libstb-dev) -------------------

// Finding (fuzz_image, 5,000 inputs into its first run; fixed in host/image_io.cpp): a JPEG whose
// DHT segment declares more than 256 Huffman codes makes stb write past its 257-entry size array
// (UBSan: "index 257 out of bounds for type 'stbi_uc[257]'", nothings/stb issue 1291), already in
// stbi_info. The second finding had the table after junk that stb's header parser skips. The
// third case puts it after the first scan, as progressive JPEGs place tables: there stb resumes
// wherever its entropy decoding ends (this scan's data stops stb before it, a real one would not),
// so every DHT marker after the first scan is checked.
const char kJpegHugeHuffman[] =
    "\xff\xd8"                          // SOI
    "\xff\xc4\x00\x13\x00"              // DHT, 19 bytes, table class 0 id 0
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\x02"  // 255 + 2 = 257 codes
    "\xff\xd9";
const char kJpegHugeHuffmanAfterJunk[] =
    "\xff\xd8" "\xff\xe0\x00\x04\x00\x00" "junk"  // SOI, a 4-byte APP0, bytes between segments
    "\xff\xff\xc4\x00\x13\x00"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\x02"
    "\xff\xd9";
const char kJpegHugeHuffmanAfterScan[] =
    "\xff\xd8"
    "\xff\xc0\x00\x0b\x08\x00\x1c\x00\x1c\x01\x01\x11\x00"  // SOF0 28x28 grey
    "\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" "\x12\x34\x56"  // SOS, 3 bytes of scan data
    "\xff\xc4\x00\x13\x10"
    "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\x02"
    "\xff\xd9";

// Finding (fuzz_image; fixed in host/image_io.cpp): stb reads a PNM header number into an int with
// no overflow check (UBSan: "signed integer overflow: 283333333 * 10 cannot be represented").
const char kPnmHugeWidth[] = "P5\n28333333333333333333 28\n255\n\x01\x02\x03";

// Finding (fuzz_image, libFuzzer "out-of-memory (malloc(2147483648))"; fixed in host/image_io.cpp):
// stb reallocates its IDAT buffer to the chunk's declared length before it reads the data, so
// this 66-byte PNG, a 28x28 IHDR and an IDAT declaring 2 GB, made it allocate 2 GB.
const char kPngHugeIdat[] =
    "\x89PNG\r\n\x1a\n"
    "\x00\x00\x00\x0d" "IHDR" "\x00\x00\x00\x1c\x00\x00\x00\x1c\x08\x00\x00\x00\x00" "\x00\x00\x00\x00"
    "\x7f\xff\xff\xff" "IDAT" "\x78\x5e\x63\x60\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

// Finding (fuzz_image, a timeout: over 1 s and 1.4 GB under ASan for a 156-byte file; fixed by
// kMaxImagePixels in host/image_io.h): a GIF's logical screen of up to 16384x16384, within the
// per-side limit, makes stb allocate 9 bytes per pixel (2.4 GB) before it reads any pixel data.
const char kGifHugeCanvas[] =
    "GIF89a" "\x00\x40\x00\x40" "\x00\x00\x00"                  // 16384x16384, no colour table
    "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00" "\x02\x02\x44\x01\x00" "\x3b";

// Finding (review of the fuzz_image runs; fixed in host/image_io.cpp jpeg_complete): the seed JPEG
// with its SOF size changed to 5792x5792 (906 bytes) loaded as a 33 Mpx image, stb decoding the
// missing scan data as zeros (0.3 s Release, 2.8 s under ASan). Every 8x8 block codes its DC value
// in at least one bit, so scans shorter than blocks / 8 bytes are refused as truncated. Here: a
// frame of 524,176 blocks with 3 bytes of scan data.
const char kJpegScanTooShort[] =
    "\xff\xd8"
    "\xff\xc0\x00\x0b\x08\x16\xa0\x16\xa0\x01\x01\x11\x00"  // SOF0 5792x5792 grey
    "\xff\xc4\x00\x26"                                              // DHT: DC 0 and AC 0, one code each
    "\x00" "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" "\x00"
    "\x10" "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" "\x00"
    "\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" "\x12\x34\x56"
    "\xff\xd9";

// Finding (fuzz_image, a timeout in the second 120 s run: 1.2 s under ASan for a 2 KB file; fixed
// in host/image_io.cpp bmp_complete): stb reads a BMP's compression field as an int and decodes any
// value it does not refuse (1, 2, >= 4), negative ones included, as uncompressed rows; bmp_complete
// skipped its size check for every value but 0, 3 and 6, so 0xff0000ff with 6913x1820 pixels
// decoded as zero padding. The 54-byte header of that case plus 6 bytes:
const char kBmpNegativeCompression[] =
    "BM" "\x3c\x00\x00\x00" "\x00\x00\x00\x00" "\x36\x00\x00\x00"                // size 60, pixels at 54
    "\x28\x00\x00\x00" "\x01\x1b\x00\x00" "\x1c\x07\x00\x00" "\x01\x00" "\x18\x00"  // 6913x1820, 24 bpp
    "\xff\x00\x00\xff" "\x00\x00\x00\x00" "\x13\x0b\x00\x00\x13\x0b\x00\x00" "\x00\x00\x00\x00\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x00\x00";

// Finding (fuzz_image, the final 120 s run; fixed in host/image_io.cpp): stb mallocs its JPEG
// decoder state without clearing it, and a scan whose AC table no DHT defined (the fuzzer turned
// the seed's AC table 1 into a DC table 3) decoded through uninitialised tables: UBSan "index -916
// out of bounds for type 'stbi_uc[256]'", a read anywhere. Here: DC table 0 is defined, the scan
// asks for AC table 1.
const char kJpegUndefinedAcTable[] =
    "\xff\xd8"
    "\xff\xc0\x00\x0b\x08\x00\x1c\x00\x1c\x01\x01\x11\x00"  // SOF0 28x28 grey
    "\xff\xc4\x00\x14\x00" "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" "\x00"
    "\xff\xda\x00\x08\x01\x01\x01\x00\x3f\x00" "\x12\x34\x56\x78\x9a\xbc\xde\xf0\x12\x34"
    "\xff\xd9";

TEST(FuzzRegressions, HostileImageHeadersAreRefusedBeforeStbActsOnThem) {
  struct Case {
    const char* name;
    Bytes bytes;
    const char* expected;
  };
  const Case cases[] = {
      {"huffman.jpg", bytes_of(kJpegHugeHuffman, sizeof kJpegHugeHuffman - 1),
       "corrupt JPEG (a Huffman table declares more than 256 codes)"},
      {"huffman-after-junk.jpg", bytes_of(kJpegHugeHuffmanAfterJunk, sizeof kJpegHugeHuffmanAfterJunk - 1),
       "corrupt JPEG (a Huffman table declares more than 256 codes)"},
      {"huffman-after-scan.jpg", bytes_of(kJpegHugeHuffmanAfterScan, sizeof kJpegHugeHuffmanAfterScan - 1),
       "corrupt JPEG (a Huffman table declares more than 256 codes)"},
      {"huge-width.pgm", bytes_of(kPnmHugeWidth, sizeof kPnmHugeWidth - 1),
       "corrupt PNM (a header number is larger than 2147483647)"},
      {"huge-idat.png", bytes_of(kPngHugeIdat, sizeof kPngHugeIdat - 1), "corrupt or truncated PNG"},
      {"huge-canvas.gif", bytes_of(kGifHugeCanvas, sizeof kGifHugeCanvas - 1),
       "image is 16384x16384 = 268435456 pixels, more than the limit of 33554432"},
      {"short-scan.jpg", bytes_of(kJpegScanTooShort, sizeof kJpegScanTooShort - 1), "truncated JPEG (5792x5792)"},
      {"undefined-ac-table.jpg", bytes_of(kJpegUndefinedAcTable, sizeof kJpegUndefinedAcTable - 1),
       "corrupt JPEG (a scan uses a Huffman table that no DHT segment defines)"},
      {"negative-compression.bmp", bytes_of(kBmpNegativeCompression, sizeof kBmpNegativeCompression - 1),
       "truncated BMP (6913x1820)"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TempFile file(c.name, c.bytes);
    expect_fast_bounded_refusal([&] { load_image_gray(file.path()); }, c.expected);
  }
}

// Finding (review, like --model /dev/zero; fixed in host/image_io.cpp): `predict /dev/zero` read
// the device until memory ran out. Devices are refused at once.
TEST(FuzzRegressions, ImageFromADeviceIsRefusedAtOnce) {
  expect_fast_bounded_refusal([] { load_image_gray("/dev/zero"); }, "/dev/zero: is a device, not an image");
}

}  // namespace
}  // namespace convnet
