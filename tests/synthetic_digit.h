// A synthetic handwritten-style "7" for the preprocessing and predict tests: two thick strokes
// (a top bar and a diagonal, round ends, anti-aliased by 4x4 supersampling) drawn at any size and
// place, in any ink and paper colour, optionally on noisy paper. Deterministic: noise comes from
// test_util.h's seeded hash.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "image_io.h"
#include "test_util.h"

namespace convnet::test {

// Coverage (0..1) of a "7" `size` pixels tall with its box's top-left at (ox, oy) in an (h, w)
// canvas; strokes size/7 thick.
inline std::vector<float> seven_coverage(int w, int h, double size, double ox, double oy) {
  struct Seg {
    double ax, ay, bx, by;
  };
  const double r = size / 14.0;
  const Seg segs[] = {{ox + r, oy + r, ox + 0.62 * size, oy + r},
                      {ox + 0.62 * size, oy + r, ox + 0.25 * size, oy + size - r}};
  std::vector<float> cov(static_cast<size_t>(w) * h, 0.0f);
  const int x_lo = std::max(0, static_cast<int>(ox) - 2), x_hi = std::min(w, static_cast<int>(ox + size) + 2);
  const int y_lo = std::max(0, static_cast<int>(oy) - 2), y_hi = std::min(h, static_cast<int>(oy + size) + 2);
  for (int y = y_lo; y < y_hi; ++y)
    for (int x = x_lo; x < x_hi; ++x) {
      int hits = 0;
      for (int sy = 0; sy < 4; ++sy)
        for (int sx = 0; sx < 4; ++sx) {
          const double px = x + (sx + 0.5) / 4, py = y + (sy + 0.5) / 4;
          for (const Seg& s : segs) {
            const double dx = s.bx - s.ax, dy = s.by - s.ay;
            const double t = std::clamp(((px - s.ax) * dx + (py - s.ay) * dy) / (dx * dx + dy * dy), 0.0, 1.0);
            const double ex = px - s.ax - t * dx, ey = py - s.ay - t * dy;
            if (ex * ex + ey * ey <= r * r) {
              ++hits;
              break;
            }
          }
        }
      cov[static_cast<size_t>(y) * w + x] = hits / 16.0f;
    }
  return cov;
}

struct Rgb {
  int r, g, b;
};

// The "7" in RGB ink on RGB paper, plus uniform noise of +-noise per channel.
inline Image render_rgb(int w, int h, double size, double ox, double oy, Rgb ink, Rgb paper, int noise = 0,
                        uint64_t seed = 1) {
  const std::vector<float> cov = seven_coverage(w, h, size, ox, oy);
  Image im{w, h, 3, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  const int in[3] = {ink.r, ink.g, ink.b}, pa[3] = {paper.r, paper.g, paper.b};
  for (size_t i = 0; i < cov.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      const double n = noise ? (uniform_double(seed, 1, i * 3 + static_cast<size_t>(c)) * 2 - 1) * noise : 0.0;
      const double v = pa[c] + (in[c] - pa[c]) * static_cast<double>(cov[i]) + n;
      im.pixels[i * 3 + static_cast<size_t>(c)] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
    }
  return im;
}

// The "7" in grey levels (ink on paper).
inline Image render_grey(int w, int h, double size, double ox, double oy, int ink, int paper) {
  const std::vector<float> cov = seven_coverage(w, h, size, ox, oy);
  Image im{w, h, 1, std::vector<uint8_t>(cov.size())};
  for (size_t i = 0; i < cov.size(); ++i)
    im.pixels[i] = static_cast<uint8_t>(std::lround(paper + (ink - paper) * static_cast<double>(cov[i])));
  return im;
}

}  // namespace convnet::test
