// libFuzzer target: what `convnet predict` does with a user's image file, short of the network:
// load_image_gray (host/image_io.cpp: format sniffing, the truncation walks, stbi_info's size
// check, stb_image's decoders for PNG, JPEG, BMP, PGM/PPM, GIF) and preprocess_digit
// (host/preprocess.cpp: ink levels, box, area resampling, centring).
//
// The input is the image file, read through a memfd (fuzz_util.h). Only InputError may escape.
// After a successful load: one grey channel and width * height pixels within kMaxImageSide; after
// preprocessing: a 28x28 image.
// Seeds (tests/fuzz/make_seeds.cpp): a 28x28 drawn digit as grey and RGBA PNG, JPEG, BMP, PGM, PPM
// and a 1x1 GIF.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "fuzz_util.h"
#include "image_io.h"
#include "preprocess.h"

// A GIF's logical screen costs stb 9 bytes a pixel with no pixel data behind it: a 35-byte GIF
// of 2282x8422 with a 1x1 frame loads as a 19 Mpx image (0.23 s Release, 1.1 s under ASan). That
// is the product's pixel budget (kMaxImagePixels), not a bug, and every other format needs data
// for its pixels (4 KB inputs stay at a few Mpx), so GIFs declaring between 4 Mpx and that budget
// are skipped to keep -timeout=1 meaningful. Larger ones still run: they must be refused at once.
bool gif_within_budget_but_slow(const uint8_t* data, size_t size) {
  if (size < 10 || std::memcmp(data, "GIF8", 4) != 0) return false;
  const int64_t w = data[6] | data[7] << 8, h = data[8] | data[9] << 8;
  return w * h > (int64_t{1} << 22) && w * h <= convnet::kMaxImagePixels;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static convnet::fuzz::MemFile file;
  if (gif_within_budget_but_slow(data, size)) return 0;
  const std::string& path = file.write(data, size);
  std::optional<convnet::Image> image;
  convnet::fuzz::only_documented_errors("load_image_gray", [&] { image = convnet::load_image_gray(path); });
  if (!image) return 0;
  const std::string dims = std::to_string(image->width) + "x" + std::to_string(image->height) + "x" +
                           std::to_string(image->channels);
  FUZZ_EXPECT(image->channels == 1 && image->width > 0 && image->height > 0 &&
                  image->width <= convnet::kMaxImageSide && image->height <= convnet::kMaxImageSide &&
                  image->pixels.size() == static_cast<size_t>(image->width) * image->height,
              dims + ", " + std::to_string(image->pixels.size()) + " pixels");
  convnet::fuzz::only_documented_errors("preprocess_digit", [&] {
    const convnet::PreprocessedDigit digit = convnet::preprocess_digit(*image, "fuzz.png");
    FUZZ_EXPECT(digit.pixels.size() == 28 * 28, dims + ": " + std::to_string(digit.pixels.size()) + " pixels out");
  });
  return 0;
}
