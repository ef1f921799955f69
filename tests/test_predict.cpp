// convnet predict and the image files it reads.
//
// ImageIo: the same digit written as PNG, JPEG, BMP, PGM and GIF loads as the same grey image, and
// every kind of bad file (missing, empty, a directory, not an image, unsupported, zero-size, too
// large, truncated in each format) is one InputError naming the file.
// Predict.MnistThroughPngKeepsItsClass: 1,000 MNIST test digits written as PNG, read back and
// preprocessed get the class the network gives the IDX tensor (a model trained here for a few
// seconds: the claim is about the pipeline, not the model); and all 10,000 through preprocess_digit
// in memory keep it but for a measured one, whose stray speck the crop drops.
// PredictCli: the binary as a user runs it: good and bad files in one call, --json parsed by a
// strict parser, --save-preprocessed, batches over 256, usage errors. Its model is randomly
// initialised (no MNIST needed): the CLI's numbers are compared with an in-process evaluation.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.h"
#include "errors.h"
#include "idx.h"
#include "image_io.h"
#include "model.h"
#include "model_file.h"
#include "model_io.h"
#include "preprocess.h"
#include "process.h"
#include "scratch_mounts.h"
#include "stb_image_write.h"
#include "synthetic_digit.h"
#include "test_util.h"
#include "trainer.h"

namespace convnet::test {
namespace {

using Bytes = std::vector<uint8_t>;

// ---- files -----------------------------------------------------------------------------------------

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/convnet_predict_XXXXXX";
    if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { (void)std::system(("rm -rf '" + path + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes read_bytes(const std::string& path) {
  const std::string s = slurp(path);
  return Bytes(s.begin(), s.end());
}

void append_to(void* ctx, void* data, int n) {
  auto* b = static_cast<Bytes*>(ctx);
  b->insert(b->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + n);
}

// render_grey(48, 40, 30, 9, 5, 20, 235) as a baseline JPEG (Pillow 13, quality 90; within 13 grey
// levels of the pixels). Stored rather than made with stb_image_write, whose JPEG writer
// left-shifts negative ints (undefined behaviour the sanitizer build stops on).
Bytes digit_jpeg() {
  static const char kJpeg[] =
    "\xff\xd8\xff\xe0\x00\x10\x4a\x46\x49\x46\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb\x00\x43"
    "\x00\x03\x02\x02\x03\x02\x02\x03\x03\x03\x03\x04\x03\x03\x04\x05\x08\x05\x05\x04\x04\x05\x0a\x07"
    "\x07\x06\x08\x0c\x0a\x0c\x0c\x0b\x0a\x0b\x0b\x0d\x0e\x12\x10\x0d\x0e\x11\x0e\x0b\x0b\x10\x16\x10"
    "\x11\x13\x14\x15\x15\x15\x0c\x0f\x17\x18\x16\x14\x18\x12\x14\x15\x14\xff\xc0\x00\x0b\x08\x00\x28"
    "\x00\x30\x01\x01\x11\x00\xff\xc4\x00\x1f\x00\x00\x01\x05\x01\x01\x01\x01\x01\x01\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\xff\xc4\x00\xb5\x10\x00\x02\x01\x03"
    "\x03\x02\x04\x03\x05\x05\x04\x04\x00\x00\x01\x7d\x01\x02\x03\x00\x04\x11\x05\x12\x21\x31\x41\x06"
    "\x13\x51\x61\x07\x22\x71\x14\x32\x81\x91\xa1\x08\x23\x42\xb1\xc1\x15\x52\xd1\xf0\x24\x33\x62\x72"
    "\x82\x09\x0a\x16\x17\x18\x19\x1a\x25\x26\x27\x28\x29\x2a\x34\x35\x36\x37\x38\x39\x3a\x43\x44\x45"
    "\x46\x47\x48\x49\x4a\x53\x54\x55\x56\x57\x58\x59\x5a\x63\x64\x65\x66\x67\x68\x69\x6a\x73\x74\x75"
    "\x76\x77\x78\x79\x7a\x83\x84\x85\x86\x87\x88\x89\x8a\x92\x93\x94\x95\x96\x97\x98\x99\x9a\xa2\xa3"
    "\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9"
    "\xca\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xf1\xf2\xf3\xf4"
    "\xf5\xf6\xf7\xf8\xf9\xfa\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00\xfd\x1d\xaf\x93\x7e\x24\xff\x00"
    "\xc1\x4b\xbe\x15\x7c\x32\xf1\xde\xb9\xe1\x4b\xdd\x33\xc5\x1a\x9d\xf6\x8f\x74\xf6\x57\x37\x1a\x75"
    "\x94\x06\x0f\x39\x0e\xd7\x55\x32\x4e\x8c\x76\xb0\x2b\x9d\xb8\xc8\xe3\x23\x06\xb9\xaf\xf8\x7b\x47"
    "\xc2\x1f\xfa\x17\x3c\x6d\xff\x00\x80\x36\x7f\xfc\x95\x5e\x8f\xf0\x1b\xf6\xf6\xf8\x71\xfb\x42\xf8"
    "\xe9\x7c\x25\xa0\xd8\xf8\x83\x4c\xd5\xe4\x82\x4b\x88\x46\xaf\x69\x12\x47\x30\x41\x96\x55\x68\xa5"
    "\x93\x04\x2e\x4f\xcc\x00\xc0\x3c\xe7\x8a\xfa\x42\x8a\x2b\xce\x7c\x4b\xfb\x38\x7c\x2d\xf1\x8e\xb7"
    "\x75\xac\xeb\x7f\x0f\xfc\x3b\xaa\x6a\xb7\x6d\xbe\xe2\xf2\xe7\x4f\x8d\xa5\x95\xb1\x8c\xb3\x63\x24"
    "\xe0\x0e\x4d\x79\x3f\xed\x09\xf0\x8f\xe0\x7f\xc0\xff\x00\x83\x9e\x28\xf1\x94\xff\x00\x0c\x7c\x26"
    "\x66\xd3\xed\x1b\xec\x70\xc9\xa6\xc5\x89\xae\x9f\xe4\x85\x3a\x72\x0b\xb2\xe7\x1d\x00\x27\xb5\x78"
    "\x5f\xfc\x12\x7b\xe0\xc7\x93\x61\xe2\x5f\x8a\x5a\x8c\x0b\xe6\xdd\x31\xd2\x34\xb2\x54\x0c\x20\x21"
    "\xee\x24\x1f\x56\xf2\xd0\x11\x8c\x6c\x71\xde\xbf\x44\xa8\xa2\x8a\xfc\xdf\xff\x00\x82\x9d\xfc\x49"
    "\xbf\xf1\xff\x00\xc4\x1f\x05\x7c\x12\xf0\xd6\x6e\xef\x5e\xe2\x2b\xab\xbb\x78\xcf\xfa\xcb\xb9\x8f"
    "\x97\x6b\x11\xf4\x21\x59\x9c\xf6\xc4\xa8\x7b\x57\xde\x5f\x09\x3e\x1c\x69\xff\x00\x08\xbe\x1a\x78"
    "\x73\xc1\xda\x66\x0d\xa6\x8f\x66\x96\xde\x60\x18\xf3\x5f\xac\x92\x11\xd8\xbb\x96\x63\xee\xc6\xba"
    "\xea\x28\xac\x9f\x16\xf8\xa3\x4e\xf0\x47\x85\xf5\x6f\x10\xea\xf3\xfd\x9f\x4b\xd2\xed\x65\xbc\xb9"
    "\x97\xfb\xb1\xc6\xa5\x9b\x03\xb9\xc0\xe0\x77\x35\xf9\xbb\xfb\x02\xf8\x5b\x51\xfd\xa2\x7f\x69\xff"
    "\x00\x19\x7c\x6c\xf1\x1c\x25\xa0\xd3\xa7\x92\x78\x15\xf9\x51\x77\x3e\x56\x28\xd4\x91\x82\x21\x84"
    "\x30\xf5\x07\xca\x35\xfa\x71\x45\x14\x57\x39\xf1\x1f\xe1\xfe\x91\xf1\x53\xc0\xda\xd7\x84\xb5\xd4"
    "\x96\x4d\x27\x56\xb7\x36\xf7\x02\x09\x36\x48\x01\xe4\x32\xb7\x62\x08\x04\x64\x11\x91\xc8\x23\x8a"
    "\xc0\xf8\x17\xf0\x2f\xc3\x1f\xb3\xcf\x80\xe2\xf0\x9f\x85\x52\xe4\xd8\x89\xde\xe6\x5b\x9b\xd9\x16"
    "\x4b\x8b\x89\x5b\x00\xbc\x8c\xaa\xa0\x9c\x2a\xa8\xc2\x81\x85\x1c\x57\xa1\x51\x45\x7f\xff\xd9";
  return Bytes(kJpeg, kJpeg + sizeof kJpeg - 1);
}

Bytes encode_bmp(const Image& g) {
  Bytes b;
  stbi_write_bmp_to_func(append_to, &b, g.width, g.height, g.channels, g.pixels.data());
  return b;
}

Bytes encode_pgm(const Image& g) {
  const std::string header = "P5\n# made by test_predict\n" + std::to_string(g.width) + " " + std::to_string(g.height) + "\n255\n";
  Bytes b(header.begin(), header.end());
  b.insert(b.end(), g.pixels.begin(), g.pixels.end());
  return b;
}

// An uncompressed GIF (grey palette): every pixel is a literal 9-bit LZW code, and a clear code
// every 250 pixels keeps the decoder's table (and so the code width) from growing.
Bytes encode_gif(const Image& g) {
  Bytes b = {'G', 'I', 'F', '8', '9', 'a'};
  auto u16 = [&](int v) { b.push_back(static_cast<uint8_t>(v & 255)), b.push_back(static_cast<uint8_t>(v >> 8)); };
  u16(g.width), u16(g.height);
  b.insert(b.end(), {0xf7, 0, 0});  // global colour table of 256 entries
  for (int i = 0; i < 256; ++i) b.insert(b.end(), {uint8_t(i), uint8_t(i), uint8_t(i)});
  b.push_back(0x2c);
  u16(0), u16(0), u16(g.width), u16(g.height);
  b.insert(b.end(), {0, 8});  // no local table; LZW minimum code size 8
  Bytes codes;
  uint32_t acc = 0;
  int bits = 0;
  auto put = [&](int code) {
    acc |= static_cast<uint32_t>(code) << bits, bits += 9;
    for (; bits >= 8; bits -= 8, acc >>= 8) codes.push_back(static_cast<uint8_t>(acc & 255));
  };
  for (size_t i = 0; i < g.pixels.size(); ++i) {
    if (i % 250 == 0) put(256);
    put(g.pixels[i]);
  }
  put(257);
  if (bits > 0) codes.push_back(static_cast<uint8_t>(acc & 255));
  for (size_t i = 0; i < codes.size(); i += 255) {
    const size_t n = std::min<size_t>(255, codes.size() - i);
    b.push_back(static_cast<uint8_t>(n));
    b.insert(b.end(), codes.begin() + static_cast<std::ptrdiff_t>(i), codes.begin() + static_cast<std::ptrdiff_t>(i + n));
  }
  b.insert(b.end(), {0, 0x3b});
  return b;
}

// A PNG signature and IHDR declaring width x height (correct CRC), then nothing: enough for
// stbi_info, never decodable.
Bytes png_header_only(uint32_t width, uint32_t height) {
  Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (uint32_t v : {width, height}) b.insert(b.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
  b.insert(b.end(), {8, 0, 0, 0, 0});  // 8-bit grey
  const uLong crc = crc32(0, b.data() + 12, 17);
  b.insert(b.end(), {uint8_t(crc >> 24), uint8_t(crc >> 16), uint8_t(crc >> 8), uint8_t(crc)});
  return b;
}

Bytes truncated(Bytes b, size_t keep) {
  b.resize(keep);
  return b;
}

std::string load_error(const std::string& path) {
  try {
    load_image_gray(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// ---- ImageIo -------------------------------------------------------------------------------------

TEST(ImageIo, EveryFormatLoadsTheSameGreyDigit) {
  TempDir dir;
  const Image digit = render_grey(48, 40, 30, 9, 5, 20, 235);
  write_png(dir / "d.png", digit);
  write_bytes(dir / "d.jpg", digit_jpeg());
  write_bytes(dir / "d.bmp", encode_bmp(digit));
  write_bytes(dir / "d.pgm", encode_pgm(digit));
  write_bytes(dir / "d.gif", encode_gif(digit));
  for (const char* name : {"d.png", "d.jpg", "d.bmp", "d.pgm", "d.gif"}) {
    SCOPED_TRACE(name);
    const Image g = load_image_gray(dir / name);
    ASSERT_EQ(g.width, 48);
    ASSERT_EQ(g.height, 40);
    ASSERT_EQ(g.channels, 1);
    // Lossless formats give the pixels back; JPEG's error is a few grey levels near the strokes.
    const double tol = std::string(name) == "d.jpg" ? 13 : 0;
    expect_close(convert<int>(digit.pixels), convert<int>(g.pixels), tol, 0, name);
  }
  // RGB PNGs come back as luma.
  write_png(dir / "rgb.png", Image{2, 1, 3, {255, 0, 0, 0, 0, 255}});
  EXPECT_EQ(load_image_gray(dir / "rgb.png").pixels, (std::vector<uint8_t>{76, 29}));
}

TEST(ImageIo, BadFilesAreOneErrorNamingTheFile) {
  TempDir dir;
  const Image digit = render_grey(48, 40, 30, 9, 5, 20, 235);
  write_png(dir / "d.png", digit);
  const Bytes png = read_bytes(dir / "d.png"), jpg = digit_jpeg(), bmp = encode_bmp(digit),
              pgm = encode_pgm(digit), gif = encode_gif(digit);
  const std::string riff("RIFF\x10\0\0\0WEBPVP8 ", 16);
  const std::vector<std::pair<std::string, Bytes>> files = {
      {"empty.png", {}},
      {"text.png", Bytes{'h', 'e', 'l', 'l', 'o', '\n'}},
      {"photo.webp", Bytes(riff.begin(), riff.end())},
      {"ascii.pgm", Bytes{'P', '2', '\n', '1', ' ', '1', '\n', '2', '5', '5', '\n', '0', '\n'}},
      {"zero.png", png_header_only(0, 5)},
      {"huge.png", png_header_only(100000, 20)},
      {"short-header.png", truncated(png, 20)},
      {"half.png", truncated(png, png.size() / 2)},
      {"half.jpg", truncated(jpg, jpg.size() / 2)},
      {"no-eoi.jpg", truncated(jpg, jpg.size() - 2)},
      {"half.bmp", truncated(bmp, bmp.size() / 2)},
      {"last-byte.bmp", truncated(bmp, bmp.size() - 1)},
      {"half.pgm", truncated(pgm, pgm.size() / 2)},
      {"last-byte.pgm", truncated(pgm, pgm.size() - 1)},
      {"half.gif", truncated(gif, gif.size() / 2)},
      {"no-terminator.gif", truncated(gif, gif.size() - 2)},
      {"signature-only.gif", Bytes{'G', 'I', 'F', '8', '9', 'a'}},
      {"negative.pgm", Bytes{'P', '5', '\n', '-', '5', ' ', '5', '\n', '2', '5', '5', '\n', 0, 0, 0, 0, 0}},
      {"zero-width.pgm", Bytes{'P', '5', '\n', '0', ' ', '5', '\n', '2', '5', '5', '\n'}},
  };
  const std::map<std::string, std::string> expect = {
      {"empty.png", "empty file"},          {"text.png", "not an image"},
      {"photo.webp", "unsupported image format WebP"},
      {"ascii.pgm", "unsupported image format plain-text"},
      {"zero.png", "zero-size image"},      {"huge.png", "image is 100000x20 pixels, larger than the limit of 16384"},
      {"short-header.png", "corrupt or truncated PNG"}, {"half.png", "corrupt or truncated PNG"},
      {"half.jpg", "truncated JPEG"},       {"no-eoi.jpg", "truncated JPEG"},
      {"half.bmp", "truncated BMP"},        {"last-byte.bmp", "truncated BMP"},
      {"half.pgm", "truncated PNM"},        {"last-byte.pgm", "truncated PNM"},
      {"half.gif", "truncated GIF"},        {"no-terminator.gif", "truncated GIF"},
      {"signature-only.gif", "truncated GIF (shorter than its 13-byte header)"},
      {"negative.pgm", "corrupt PNM (the header's width, height and maxval must be decimal numbers)"},
      {"zero-width.pgm", "zero-size image"},
  };
  for (const auto& [name, bytes] : files) write_bytes(dir / name, bytes);
  for (const auto& [name, want] : expect) {
    SCOPED_TRACE(name);
    const std::string e = load_error(dir / name);
    EXPECT_EQ(e.rfind(dir / name + ": ", 0), 0u) << e;
    EXPECT_NE(e.find(want), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_NE(load_error(dir / "missing.png").find("missing.png: cannot open: No such file"), std::string::npos);
  EXPECT_NE(load_error(dir.path).find("is a directory"), std::string::npos);
  // The GIF trailer byte itself is not needed: the first frame is complete without it.
  write_bytes(dir / "no-trailer.gif", truncated(gif, gif.size() - 1));
  EXPECT_EQ(load_image_gray(dir / "no-trailer.gif").pixels, digit.pixels);
}

TEST(ImageIo, WritePngIsAtomicAndRefusesAMissingFolder) {
  TempDir dir;
  write_png(dir / "a.png", Image{3, 2, 1, {0, 50, 100, 150, 200, 250}});
  EXPECT_EQ(load_image_gray(dir / "a.png").pixels, (std::vector<uint8_t>{0, 50, 100, 150, 200, 250}));
  write_png(dir / "a.png", Image{1, 1, 1, {7}});  // replaces
  EXPECT_EQ(load_image_gray(dir / "a.png").pixels, (std::vector<uint8_t>{7}));
  const std::string none = dir / "no/such/folder/x.png";
  try {
    write_png(none, Image{1, 1, 1, {7}});
    ADD_FAILURE() << "wrote into a missing folder";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(none + ": cannot write", 0), 0u) << e.what();
  }
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + dir.path + "' | grep -v '^a.png$')\"").c_str()), 0)
      << "a temporary file was left behind";
}

// ---- the pipeline against the IDX tensor ---------------------------------------------------------

int argmax(const float* p) {
  int best = 0;
  for (int c = 1; c < kNumClasses; ++c)
    if (p[c] > p[best]) best = c;
  return best;
}

TEST(Predict, MnistThroughPngKeepsItsClass) {
  const char* mnist = std::getenv("MNIST_DIR");
  if (!mnist || !*mnist) GTEST_SKIP() << "MNIST_DIR is not set: real MNIST digits and a briefly trained model are needed";
  const auto t0 = std::chrono::steady_clock::now();
  const Dataset data = load_dataset(mnist, "mnist");
  BackendConfig bc;
  bc.seed = 1;
  auto backend = make_cpu_backend(build_model("keras"), bc);
  TrainConfig tc;
  tc.epochs = 1;
  tc.limit_train = 5000;
  tc.val_split = 0;
  tc.test = false;
  std::ostringstream log;
  train_model(*backend, data, tc, log);

  const int n = 1000;
  ImageSet idx, piped;
  idx.count = piped.count = n;
  idx.images.assign(data.test.images.begin(), data.test.images.begin() + n * kImagePixels);
  idx.labels.assign(data.test.labels.begin(), data.test.labels.begin() + n);
  piped.labels = idx.labels;
  TempDir dir;
  for (int i = 0; i < n; ++i) {
    const std::string path = dir / (std::to_string(i) + ".png");
    const auto first = idx.images.begin() + static_cast<std::ptrdiff_t>(i) * kImagePixels;
    write_png(path, Image{kImageSide, kImageSide, 1, std::vector<uint8_t>(first, first + kImagePixels)});
    const PreprocessedDigit d = preprocess_digit(load_image_gray(path), path);
    piped.images.insert(piped.images.end(), d.pixels.begin(), d.pixels.end());
  }
  std::vector<float> p_idx(n * kNumClasses), p_piped(n * kNumClasses);
  const Metrics m = evaluate(*backend, backend->add_images(idx), 0, n, bc.max_batch, p_idx.data());
  evaluate(*backend, backend->add_images(piped), 0, n, bc.max_batch, p_piped.data());
  int same = 0;
  std::string differ;
  for (int i = 0; i < n; ++i) {
    const int a = argmax(&p_idx[static_cast<size_t>(i) * kNumClasses]), b = argmax(&p_piped[static_cast<size_t>(i) * kNumClasses]);
    if (a == b) ++same;
    else differ += " #" + std::to_string(i) + " (" + std::to_string(a) + " -> " + std::to_string(b) + ")";
  }
  EXPECT_EQ(same, n) << "classes differ:" << differ;

  // The first 1,000 only change by a grey level (a peak of 254 stretched to 255); over the whole
  // test set, in memory, 62 digits change more (a faint fragment cropped, or rescaled from a box
  // under 20 px at the 25% threshold): see how many of those keep their class.
  ImageSet all = data.test;
  for (int i = 0; i < all.count; ++i) {
    const auto first = all.images.begin() + static_cast<std::ptrdiff_t>(i) * kImagePixels;
    const PreprocessedDigit d = preprocess_digit(Image{kImageSide, kImageSide, 1, std::vector<uint8_t>(first, first + kImagePixels)}, "");
    std::copy(d.pixels.begin(), d.pixels.end(), first);
  }
  std::vector<float> p_all(static_cast<size_t>(all.count) * kNumClasses), p_orig(p_all.size());
  evaluate(*backend, backend->add_images(data.test), 0, all.count, bc.max_batch, p_orig.data());
  evaluate(*backend, backend->add_images(all), 0, all.count, bc.max_batch, p_all.data());
  int same_all = 0;
  std::string differ_all;
  for (int i = 0; i < all.count; ++i) {
    const int a = argmax(&p_orig[static_cast<size_t>(i) * kNumClasses]), b = argmax(&p_all[static_cast<size_t>(i) * kNumClasses]);
    if (a == b) ++same_all;
    else differ_all += " #" + std::to_string(i) + " (" + std::to_string(a) + " -> " + std::to_string(b) + ")";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("MNIST through PNG + preprocess_digit: %d of %d keep the IDX tensor's class (model accuracy on them %.3f); "
              "all %d through preprocess_digit in memory: %d; %.1f s\n",
              same, n, m.accuracy(), all.count, same_all, seconds);
  // Measured: 9,999. The one that changes, #6560 (a 9 this weak model calls 3, then 5), has a faint
  // speck 3 px left of its box: cropping it moves the centroid, so the digit moves by one pixel.
  // Dropping such specks is what the crop is for; five is a margin for changes to the trainer.
  EXPECT_GE(same_all, all.count - 5) << "classes differ:" << differ_all;
  EXPECT_GT(m.accuracy(), 0.5) << "the briefly trained model did not learn: the comparison says little\n" << log.str();
}

// ---- the command line ----------------------------------------------------------------------------

// A strict JSON parser (RFC 8259) for checking --json output.
struct Json {
  enum Type { Null, Bool, Number, String, Array, Object } type = Null;
  bool b = false;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;
  const Json& operator[](const std::string& key) const {
    for (const auto& kv : obj)
      if (kv.first == key) return kv.second;
    throw std::runtime_error("no key " + key);
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& s) : s_(s) {}
  Json document() {
    Json v = value();
    ws();
    if (p_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what + " at offset " + std::to_string(p_)); }
  void ws() {
    while (p_ < s_.size() && std::strchr(" \t\r\n", s_[p_]) && s_[p_]) ++p_;
  }
  bool eat(char c) {
    ws();
    if (p_ < s_.size() && s_[p_] == c) return ++p_, true;
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  Json value() {
    ws();
    if (p_ >= s_.size()) fail("unexpected end");
    Json v;
    const char c = s_[p_];
    if (c == '{') {
      v.type = Json::Object, ++p_;
      if (eat('}')) return v;
      do {
        ws();
        std::string k = string();
        expect(':');
        v.obj.emplace_back(k, value());
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      v.type = Json::Array, ++p_;
      if (eat(']')) return v;
      do v.arr.push_back(value());
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.type = Json::String, v.str = string();
    } else if (s_.compare(p_, 4, "true") == 0 || s_.compare(p_, 5, "false") == 0) {
      v.type = Json::Bool, v.b = c == 't', p_ += v.b ? 4 : 5;
    } else if (s_.compare(p_, 4, "null") == 0) {
      p_ += 4;
    } else {
      v.type = Json::Number, v.num = number();
    }
    return v;
  }
  double number() {
    const size_t start = p_;
    if (p_ < s_.size() && s_[p_] == '-') ++p_;
    auto digits = [&]() {
      const size_t d = p_;
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
      if (p_ == d) fail("expected a digit");
      return p_ - d;
    };
    if (p_ < s_.size() && s_[p_] == '0') ++p_;
    else digits();
    if (p_ < s_.size() && s_[p_] == '.') ++p_, digits();
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      digits();
    }
    return std::strtod(s_.substr(start, p_ - start).c_str(), nullptr);
  }
  void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) *out += static_cast<char>(cp);
    else if (cp < 0x800) *out += static_cast<char>(0xc0 | cp >> 6), *out += static_cast<char>(0x80 | (cp & 63));
    else if (cp < 0x10000)
      *out += static_cast<char>(0xe0 | cp >> 12), *out += static_cast<char>(0x80 | (cp >> 6 & 63)),
          *out += static_cast<char>(0x80 | (cp & 63));
    else
      *out += static_cast<char>(0xf0 | cp >> 18), *out += static_cast<char>(0x80 | (cp >> 12 & 63)),
          *out += static_cast<char>(0x80 | (cp >> 6 & 63)), *out += static_cast<char>(0x80 | (cp & 63));
  }
  uint32_t hex4() {
    if (p_ + 4 > s_.size()) fail("short \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[p_++];
      if (!std::isxdigit(static_cast<unsigned char>(h))) fail("bad \\u escape");
      v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 32) - 'a' + 10);
    }
    return v;
  }
  std::string string() {
    if (p_ >= s_.size() || s_[p_] != '"') fail("expected a string");
    ++p_;
    std::string out;
    for (;;) {
      if (p_ >= s_.size()) fail("unterminated string");
      const auto c = static_cast<unsigned char>(s_[p_++]);
      if (c == '"') return out;
      if (c < 0x20) fail("raw control character in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (p_ >= s_.size()) fail("unterminated escape");
      const char e = s_[p_++];
      const char* simple = std::strchr("\"\\/bfnrt", e);
      if (e && simple) {
        out += "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      } else if (e == 'u') {
        uint32_t cp = hex4();
        if (cp >= 0xd800 && cp < 0xdc00) {
          if (s_.compare(p_, 2, "\\u") != 0) fail("lone surrogate");
          p_ += 2;
          const uint32_t lo = hex4();
          if (lo < 0xdc00 || lo >= 0xe000) fail("bad low surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          fail("lone low surrogate");
        }
        utf8(cp, &out);
      } else {
        fail("bad escape");
      }
    }
  }
  const std::string& s_;
  size_t p_ = 0;
};

Json parse_json(const std::string& s) { return JsonParser(s).document(); }

TEST(PredictCli, TheJsonCheckerIsStrict) {
  EXPECT_EQ(parse_json(R"( {"a": [1, -2.5e3, true, null], "b\u00e9\ud83d\ude00": "x\"\\\n"} )")["b\xc3\xa9\xf0\x9f\x98\x80"].str,
            "x\"\\\n");
  for (const char* bad : {"[1,]", "{\"a\" 1}", "\"a\tb\"", "[01]", "[1.]", "nan", "\"\\x\"", "[1] 2", "\"\\ud800\""})
    EXPECT_THROW(parse_json(bad), std::runtime_error) << bad;
}

// A randomly initialised keras-architecture model file (predictions need not be right here).
struct CliFixture {
  TempDir dir;
  std::string model = dir / "random.cnvn";
  Model net = build_model("keras");
  std::vector<float> params = init_params(net, 5);
  CliFixture() { save_model_file(model, make_model_file(net, params, {{"note", "random weights for tests"}})); }

  // The probabilities the network gives these files' preprocessed digits, in process.
  std::vector<float> expected(const std::vector<std::string>& files) const {
    ImageSet set;
    set.count = static_cast<int>(files.size());
    set.labels.assign(files.size(), 0);
    for (const std::string& f : files) {
      const PreprocessedDigit d = preprocess_digit(load_image_gray(f), f);
      set.images.insert(set.images.end(), d.pixels.begin(), d.pixels.end());
    }
    BackendConfig bc;
    bc.max_batch = set.count;
    auto be = make_cpu_backend(net, bc);
    be->set_arena(Arena::Params, params);
    std::vector<float> probs(files.size() * kNumClasses);
    evaluate(*be, be->add_images(set), 0, set.count, set.count, probs.data());
    return probs;
  }
};

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(PredictCli, BadFilesGetOneLineEachAndTheGoodOnesStillPrint) {
  CliFixture fx;
  const std::string good1 = fx.dir / "seven.png", good2 = fx.dir / "seven.jpg";
  write_png(good1, render_grey(90, 80, 60, 12, 9, 0, 255));
  write_bytes(good2, digit_jpeg());
  const Bytes png = read_bytes(good1);
  std::vector<std::pair<std::string, std::string>> bad = {
      {fx.dir / "missing.png", "cannot open"},
      {fx.dir / "notes.txt", "not an image"},
      {fx.dir / "empty.png", "empty file"},
      {fx.dir / "cut.png", "corrupt or truncated PNG"},
      {fx.dir / "photo.webp", "unsupported image format WebP"},
      {fx.dir / "blank.png", "no digit found"},
      {fx.dir / "huge.png", "larger than the limit"},
      {fx.dir / "zero.png", "zero-size image"},
  };
  write_bytes(fx.dir / "notes.txt", Bytes{'7', '\n'});
  write_bytes(fx.dir / "empty.png", {});
  write_bytes(fx.dir / "cut.png", truncated(png, png.size() / 2));
  const std::string riff("RIFF\x10\0\0\0WEBPVP8 ", 16);
  write_bytes(fx.dir / "photo.webp", Bytes(riff.begin(), riff.end()));
  write_png(fx.dir / "blank.png", Image{40, 30, 1, std::vector<uint8_t>(1200, 250)});
  write_bytes(fx.dir / "huge.png", png_header_only(20000, 20000));
  write_bytes(fx.dir / "zero.png", png_header_only(7, 0));

  std::vector<std::string> args = {"predict", "--model", fx.model, "--device", "cpu", good1};
  for (const auto& b : bad) args.push_back(b.first);
  args.push_back(good2);
  const ProcessResult r = run_convnet(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  const std::vector<std::string> err = r.err_lines();
  ASSERT_EQ(err.size(), bad.size()) << r.err;
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(err[i].rfind("convnet: error: " + bad[i].first + ": ", 0), 0u) << err[i];
    EXPECT_NE(err[i].find(bad[i].second), std::string::npos) << err[i];
  }
  const std::vector<std::string> out = lines_of(r.out);
  ASSERT_EQ(out.size(), 2u) << r.out;
  const std::vector<float> p = fx.expected({good1, good2});
  for (size_t i = 0; i < 2; ++i) {
    const std::string& file = i == 0 ? good1 : good2;
    const float* pi = &p[i * kNumClasses];
    char want[64];
    std::snprintf(want, sizeof want, ": %d (%.1f%%), ", argmax(pi), 100.0 * static_cast<double>(pi[argmax(pi)]));
    EXPECT_EQ(out[i].rfind(file + want, 0), 0u) << out[i] << "\nexpected to start with " << file << want;
    EXPECT_EQ(std::count(out[i].begin(), out[i].end(), '%'), 3) << out[i];
  }

  // Only good files: exit 0 and nothing on stderr.
  const ProcessResult ok = run_convnet({"predict", "--model", fx.model, "--device", "cpu", good1, good2});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.err, "");
  EXPECT_EQ(ok.out, r.out);
}

TEST(PredictCli, JsonParsesAndEscapesFileNames) {
  CliFixture fx;
  const std::vector<std::string> names = {"plain.png", "quote\"back\\slash.png", "tab\tnew\nline.png",
                                          "sieben-\xc3\xa4-\xe2\x9c\x93.png", "latin1-\xe4.png"};
  std::vector<std::string> files;
  for (size_t i = 0; i < names.size(); ++i) {
    files.push_back(fx.dir / names[i]);
    write_png(files.back(), render_grey(60 + 10 * static_cast<int>(i), 70, 50, 5, 8, 10, 240));
  }
  std::vector<std::string> args = {"predict", "--json", "--model", fx.model, "--device", "cpu"};
  args.insert(args.end(), files.begin(), files.end());
  args.push_back(fx.dir / "missing.png");
  const ProcessResult r = run_convnet(args);
  EXPECT_EQ(r.exit_code, 2);
  ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
  Json doc;
  try {
    doc = parse_json(r.out);
  } catch (const std::exception& e) {
    FAIL() << "invalid JSON: " << e.what() << "\n" << r.out;
  }
  ASSERT_EQ(doc.type, Json::Array);
  ASSERT_EQ(doc.arr.size(), files.size());
  const std::vector<float> p = fx.expected(files);
  for (size_t i = 0; i < files.size(); ++i) {
    SCOPED_TRACE(files[i]);
    const Json& o = doc.arr[i];
    // Bytes that are not UTF-8 (a Latin-1 file name) become U+FFFD; everything else round-trips.
    const std::string want = i == 4 ? fx.dir / "latin1-\xef\xbf\xbd.png" : files[i];
    EXPECT_EQ(o["file"].str, want);
    const Json& probs = o["probabilities"];
    ASSERT_EQ(probs.arr.size(), 10u);
    double sum = 0;
    for (int c = 0; c < kNumClasses; ++c) {
      EXPECT_NEAR(probs.arr[c].num, p[i * kNumClasses + c], 1e-5) << "class " << c;
      sum += probs.arr[c].num;
    }
    EXPECT_NEAR(sum, 1.0, 1e-4);
    const Json& top = o["top3"];
    ASSERT_EQ(top.arr.size(), 3u);
    EXPECT_EQ(top.arr[0]["digit"].num, argmax(&p[i * kNumClasses]));
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(top.arr[k]["probability"].num, probs.arr[static_cast<size_t>(top.arr[k]["digit"].num)].num);
      if (k) {
        EXPECT_GE(top.arr[k - 1]["probability"].num, top.arr[k]["probability"].num);
      }
    }
  }
  // Nothing good at all: still a valid (empty) JSON array.
  const ProcessResult none = run_convnet({"predict", "--json", "--model", fx.model, "--device", "cpu", fx.dir / "x.png"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(parse_json(none.out).arr.size(), 0u) << none.out;
}

TEST(PredictCli, SavePreprocessedWritesThe28x28TheNetworkSaw) {
  CliFixture fx;
  std::system(("mkdir -p '" + fx.dir / "a" + "' '" + fx.dir / "b" + "'").c_str());
  const std::string a = fx.dir / "a/7.png", b = fx.dir / "b/7.png";
  write_png(a, render_grey(200, 150, 120, 30, 10, 0, 255));
  write_bytes(b, encode_bmp(render_grey(40, 40, 30, 3, 4, 255, 0)));
  const std::string out_dir = fx.dir / "seen/by/net";  // created by predict, parents included
  const ProcessResult r =
      run_convnet({"predict", "--model", fx.model, "--device", "cpu", "--save-preprocessed", out_dir, a, b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The same base name twice: the second gets -2 instead of overwriting the first.
  const std::vector<std::pair<std::string, std::string>> saved = {{a, out_dir + "/7.png.28x28.png"},
                                                                  {b, out_dir + "/7.png-2.28x28.png"}};
  for (const auto& [input, png] : saved) {
    SCOPED_TRACE(png);
    const Image seen = load_image_gray(png);
    EXPECT_EQ(seen.width, 28);
    EXPECT_EQ(seen.height, 28);
    EXPECT_EQ(seen.pixels, preprocess_digit(load_image_gray(input), input).pixels);
  }
  // A file where the folder should be is a usage error before any image is read.
  write_bytes(fx.dir / "file", {1});
  const ProcessResult f = run_convnet({"predict", "--model", fx.model, "--save-preprocessed", fx.dir / "file", a});
  EXPECT_EQ(f.exit_code, 2);
  ASSERT_EQ(f.err_lines().size(), 1u) << f.err;
  EXPECT_NE(f.err.find("--save-preprocessed"), std::string::npos) << f.err;
  // A FIFO where a preview goes is not replaced by a regular file: that preview is refused in one line.
  const std::string fifo = out_dir + "/7.png.28x28.png";
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  const ProcessResult p =
      run_convnet({"predict", "--model", fx.model, "--device", "cpu", "--save-preprocessed", out_dir, a});
  EXPECT_EQ(p.exit_code, 2);
  ASSERT_EQ(p.err_lines().size(), 1u) << p.err;
  EXPECT_NE(p.err.find(fifo + " is a FIFO, not a regular file"), std::string::npos) << p.err;
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // A folder that takes no file is a usage error before any image is read, not one error per image.
  ReadOnlyFolder ro(fx.dir / "ro");
  if (!ro.ok()) GTEST_SKIP() << ro.why();
  const ProcessResult r2 = run_convnet({"predict", "--model", fx.model, "--save-preprocessed", fx.dir / "ro", a, b});
  EXPECT_EQ(r2.exit_code, 2);
  ASSERT_EQ(r2.err_lines().size(), 1u) << r2.err;
  EXPECT_NE(r2.err.find("--save-preprocessed: cannot create a file in " + fx.dir / "ro"), std::string::npos) << r2.err;
  EXPECT_EQ(r2.out, "");
}

TEST(PredictCli, MoreThanOneBatchGivesTheSameAnswers) {
  CliFixture fx;
  std::vector<std::string> files;
  for (int i = 0; i < 300; ++i) {  // 256 + 44: two batches in the CLI, one in process
    files.push_back(fx.dir / ("d" + std::to_string(i) + ".pgm"));
    write_bytes(files.back(), encode_pgm(render_grey(40 + i % 7, 36 + i % 5, 24 + i % 11, 3 + i % 4, 2 + i % 3,
                                                     i % 2 ? 0 : 255, i % 2 ? 255 : 0)));
  }
  std::vector<std::string> args = {"predict", "--json", "--model", fx.model, "--device", "cpu"};
  args.insert(args.end(), files.begin(), files.end());
  const ProcessResult r = run_convnet(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json doc = parse_json(r.out);
  ASSERT_EQ(doc.arr.size(), files.size());
  const std::vector<float> p = fx.expected(files);
  for (size_t i = 0; i < files.size(); ++i)
    for (int c = 0; c < kNumClasses; ++c)
      ASSERT_NEAR(doc.arr[i]["probabilities"].arr[static_cast<size_t>(c)].num, p[i * kNumClasses + c], 1e-5)
          << files[i] << " class " << c;
}

TEST(PredictCli, UsageErrorsAreOneLine) {
  CliFixture fx;
  const std::string img = fx.dir / "7.png";
  write_png(img, render_grey(40, 40, 30, 5, 5, 0, 255));
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"predict", "--model", fx.model}, "no IMAGE given"},
      {{"predict", img}, "--model: required"},
      {{"predict", "--model", fx.dir / "nope.cnvn", img}, fx.dir / "nope.cnvn"},
      {{"predict", "--model", img, img}, img},  // a PNG is not a model
      {{"predict", "--model", fx.model, "--device", "tpu", img}, "--device"},
      {{"predict", "--model", fx.model, "--frobnicate", img}, "unknown flag --frobnicate"},
      {{"predict", "--model", fx.model, "--json=yes", img}, "--json: takes no value"},
  };
  for (const auto& [args, needle] : cases) {
    SCOPED_TRACE(args.back());
    const ProcessResult r = run_convnet(args);
    EXPECT_EQ(r.exit_code, 2);
    ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_EQ(r.err_lines()[0].rfind("convnet: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
  const ProcessResult h = run_convnet({"predict", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("usage: convnet predict"), std::string::npos);
  EXPECT_NE(run_convnet({"--help"}).out.find("predict"), std::string::npos);
}

}  // namespace
}  // namespace convnet::test
