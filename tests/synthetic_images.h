// Synthetic MNIST-shaped image sets (28x28 u8 images, labels 0..9) for the tests that train or run a
// backend: small, deterministic (every value comes from rng.h's seeded hash4) and learnable where a
// test needs losses to move. One skeleton, generate_images, fills every set; each generator only
// says how a label and a pixel are chosen. The generators keep the exact values the tests were
// written against (their tolerances and expected losses were tuned on them), which is why there are
// several bar styles rather than one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "idx.h"
#include "rng.h"

namespace convnet::test {

// count images: labels[i] = label(i), and pixel p (row-major) of image i is pixel(i, labels[i], p).
template <typename LabelFn, typename PixelFn>
ImageSet generate_images(int count, LabelFn label, PixelFn pixel) {
  ImageSet s;
  s.count = count;
  s.images.resize(static_cast<size_t>(count) * kImagePixels);
  s.labels.resize(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const int l = label(i);
    s.labels[static_cast<size_t>(i)] = static_cast<uint8_t>(l);
    for (int p = 0; p < kImagePixels; ++p) s.images[static_cast<size_t>(i) * kImagePixels + p] = pixel(i, l, p);
  }
  return s;
}

// A label drawn from the seed (hash stream 1), so classes follow no pattern in the set's order.
inline int hashed_label(uint64_t seed, int i) {
  return static_cast<int>(hash4(seed, 1, static_cast<uint64_t>(i), 0) % kNumClasses);
}

// The grey levels of bar_digits: an "on" pixel is on + on_span * noise, any other off_span * noise,
// noise uniform in [0, 1).
struct BarLevels {
  float on, on_span, off_span;
};

// Each class l is a bright horizontal bar on rows [2 + 2l, 5 + 2l) plus a vertical bar on column
// 3 + 2l, on seeded noise (hash stream 2); labels from hashed_label. A network learns it in an
// epoch or two, so losses move and training runs are meaningful.
inline ImageSet bar_digits(int count, uint64_t seed, BarLevels levels = {170, 85, 90}) {
  return generate_images(
      count, [seed](int i) { return hashed_label(seed, i); },
      [seed, levels](int i, int label, int p) {
        const int row = p / kImageSide, col = p % kImageSide;
        const float noise = uniform01(hash4(seed, 2, static_cast<uint64_t>(i), static_cast<uint64_t>(p)));
        const bool on = (row >= 2 + 2 * label && row < 5 + 2 * label) || col == 3 + 2 * label;
        return static_cast<uint8_t>(on ? levels.on + levels.on_span * noise : levels.off_span * noise);
      });
}

// Each class l is one row, 3 + 2l, at 230 on integer noise below 60 (hash stream 2); labels from
// hashed_label.
inline ImageSet stripe_digits(int count, uint64_t seed) {
  return generate_images(
      count, [seed](int i) { return hashed_label(seed, i); },
      [seed](int i, int label, int p) {
        const uint64_t noise = hash4(seed, 2, static_cast<uint64_t>(i), static_cast<uint64_t>(p)) % 60;
        return static_cast<uint8_t>(p / kImageSide == 3 + 2 * label ? 230 : noise);
      });
}

// Labels cycle 0..9 in order; class l is a bar on rows [2 + 2l, 4 + 2l) at 200 + 55 * noise on
// 40 * noise (noise from hash4(seed, i, p, 9)).
inline ImageSet band_digits(int count, uint64_t seed) {
  return generate_images(
      count, [](int i) { return i % kNumClasses; },
      [seed](int i, int label, int p) {
        const int row = p / kImageSide;
        const float noise = uniform01(hash4(seed, static_cast<uint64_t>(i), static_cast<uint64_t>(p), 9));
        return static_cast<uint8_t>((row >= 2 + 2 * label && row < 4 + 2 * label) ? 200.0f + 55 * noise
                                                                                   : 40.0f * noise);
      });
}

// Pure noise: every byte hash4(seed, 1, flat pixel index, 0) & 0xff; labels cycle 0..9 in order.
// Nothing to learn: for tests that only count or time what a step does.
inline ImageSet noise_images(int count, uint64_t seed = 3) {
  return generate_images(
      count, [](int i) { return i % kNumClasses; },
      [seed](int i, int, int p) {
        const uint64_t flat = static_cast<uint64_t>(i) * kImagePixels + static_cast<uint64_t>(p);
        return static_cast<uint8_t>(hash4(seed, 1, flat, 0) & 0xff);
      });
}

}  // namespace convnet::test
