// Reading users' images and writing PNGs, through stb_image / stb_image_write (Debian libstb-dev).
//
// Every problem with an input file (missing, not an image, truncated, unsupported format, zero or
// absurd dimensions) throws InputError with ONE line naming the file and what is wrong. Dimensions
// are checked against kMaxImageSide and kMaxImagePixels before any pixel buffer is allocated
// (stbi_info first).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

constexpr int kMaxImageSide = 16384;
// And at most this many pixels (32 Mpx, above a 24 Mpx phone photo): stb allocates up to 9 bytes
// per pixel of the declared size before it reads the pixel data, so a 156-byte GIF declaring
// 16384x16384 made it allocate 2.4 GB (found by tests/fuzz/fuzz_image).
constexpr int64_t kMaxImagePixels = int64_t{1} << 25;

// An 8-bit image, row-major, `channels` interleaved values per pixel (1 grey, 3 RGB).
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

// Load PNG, JPEG, BMP, PGM/PPM or GIF (first frame) as grey (channels 1) with alpha composited
// onto white, so a transparent background reads as paper. Throws InputError.
Image load_image_gray(const std::string& path);

// Write an 8-bit PNG (1 = grey, 3 = RGB), atomically (temporary file + rename). Throws InputError
// naming the path on failure.
void write_png(const std::string& path, const Image& image);

}  // namespace convnet
