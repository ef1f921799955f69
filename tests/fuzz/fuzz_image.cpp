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
#include <optional>
#include <string>

#include "fuzz_util.h"
#include "image_io.h"
#include "preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static convnet::fuzz::MemFile file;
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
