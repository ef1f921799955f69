// Turning a user's picture of one handwritten digit into the 28x28 the network was trained on.
//
// MNIST's own recipe (LeCun et al.): the digit, light on black, is scaled so its bounding box fits
// 20x20 keeping the aspect ratio (anti-aliased, so grey levels appear), then pasted into a 28x28
// frame so its intensity centroid lands on pixel (14, 14). preprocess_digit does the same to an
// arbitrary grey image, in these steps (constants below):
//
//  1. Background and noise. The background level is the median of a border ring (width
//     max(1, min(w, h) / 40) pixels); the paper's noise is 1.4826 x the median absolute deviation of
//     that ring from it (a robust standard deviation), and the noise floor is 3 of those.
//  2. Polarity. Ink is whatever departs from the background by more than the floor; it is dark ink
//     on light paper (and gets inverted) when the pixels darker than the background outweigh the
//     lighter ones, summing each pixel's departure beyond the floor. Noise is symmetric and cancels;
//     the digit is not. So the rule holds for any paper shade, white on black, or mid-grey.
//  3. Ink scale. Each grey level maps to ink = (departure - floor) stretched so the strongest ink
//     is 255 (MNIST strokes saturate), 0 for paper and for the other polarity. A peak below
//     kMinInkContrast grey levels means there is no digit: InputError.
//  4. Box. The digit's bounding box holds the pixels with ink >= kInkBoxThreshold (a quarter of
//     the peak): sensor noise and paper texture stay below it after the floor, so they cannot
//     stretch the box. On MNIST's own digits this box is exactly the box of all non-zero pixels
//     along the longer side (measured on the test set), so the threshold agrees with MNIST's box.
//  5. Scale. zoom = 20 / the box's longer side. Resampling is area averaging: each output pixel is
//     the mean of the ink over its footprint in the source, with fractional coverage at the edges
//     (a box filter; exact for downscaling, blocky-but-honest for upscaling). The source region
//     is the box grown by max(1, round(1/zoom)) source pixels - about one output pixel - so the
//     anti-aliased rim just under the threshold is kept while specks farther out are dropped.
//  6. Centring. The ink's centroid (over that region) is placed on pixel (14, 14) at sub-pixel
//     precision, clipping what falls outside the frame. Exception: when zoom is exactly 1 (the
//     digit is already MNIST-sized, e.g. an MNIST digit itself) the shift is rounded to whole
//     pixels, as MNIST did (its centroids lie within +-0.5 px of (14, 14)): a copy stays a copy
//     instead of being blurred by a sub-pixel shift.
//
// Assumes a roughly even background with some margin around the digit: a tight crop whose border
// is mostly ink, or strong uneven lighting, can fool steps 1-2 (--save-preprocessed shows it).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "image_io.h"

namespace convnet {

constexpr int kDigitBoxSide = 20;           // the digit's longer side in the 28x28 frame
constexpr double kFrameCentre = 14.0;       // centroid target, pixel-index coordinates
constexpr double kNoiseFloorSigmas = 3.0;   // noise floor in robust standard deviations
constexpr int kMinInkContrast = 32;         // grey levels beyond the floor, else the image is blank
constexpr float kInkBoxThreshold = 64.0f;   // on the 0..255 ink scale: a quarter of the peak

// Half-open pixel rectangle [x0, x1) x [y0, y1).
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  bool empty() const { return x1 <= x0 || y1 <= y0; }
};

// How one image's grey levels map to ink (steps 1-3).
struct InkLevels {
  int background = 0;      // median grey of the border ring
  double noise_floor = 0;  // grey levels of departure treated as paper
  bool inverted = false;   // dark ink on light paper
  double contrast = 0;     // strongest departure beyond the floor, grey levels (0: blank)
  std::array<float, 256> ink{};  // grey level -> ink 0..255
};

struct PreprocessedDigit {
  std::vector<uint8_t> pixels;  // (28, 28) row-major, light digit on black: what the network sees
  InkLevels levels;
  PixelBox box;                 // source pixels with ink >= kInkBoxThreshold
  double zoom = 0;              // output pixels per source pixel
  double centroid_x = 0, centroid_y = 0;  // of `pixels`, pixel-index coordinates (target 14, 14)
};

// The whole recipe above. `grey` has channels 1. Throws InputError "<name>: no digit found: ..."
// for a blank image.
PreprocessedDigit preprocess_digit(const Image& grey, const std::string& name_for_errors);

// ---- the steps, exposed for tests ------------------------------------------------------------------

// Interleaved 8-bit grey, grey+alpha, RGB or RGBA (channels 1..4) to grey: alpha composited onto
// white (a transparent background reads as paper), then luma 0.299 R + 0.587 G + 0.114 B, rounded.
Image to_gray(const uint8_t* data, int width, int height, int channels);

// Steps 1-3 (contrast 0 and an all-zero table when nothing departs from the background).
InkLevels measure_ink(const Image& grey);

// Bounding box of the pixels whose ink is >= threshold (empty when none).
PixelBox ink_box(const Image& grey, const std::array<float, 256>& ink, float threshold);

// Ink-weighted centroid of `region`, continuous coordinates (pixel x covers [x, x+1), so its
// centre is x + 0.5). Returns false when the region holds no ink.
bool ink_centroid(const Image& grey, const std::array<float, 256>& ink, const PixelBox& region, double* cx,
                  double* cy);

// Area-averaging resample of the ink of `region` into an (out_h, out_w) float image under the map
// output = source * zoom + shift (continuous coordinates, per axis). Output pixel i averages the
// ink over its footprint [(i - shift) / zoom, (i + 1 - shift) / zoom), weighting each source pixel
// by the fraction of the footprint it covers; outside `region` the ink is 0.
std::vector<float> area_resample(const Image& grey, const std::array<float, 256>& ink, const PixelBox& region,
                                 double zoom, double shift_x, double shift_y, int out_w, int out_h);

// Intensity centroid of an (h, w) 8-bit image in pixel-index coordinates; (-1, -1) when all zero.
void pixel_centroid(const std::vector<uint8_t>& pixels, int width, int height, double* cx, double* cy);

}  // namespace convnet
