// MNIST-style preprocessing of a user's digit image; the recipe and its reasons are in preprocess.h.
//
// Everything that looks at all pixels works from 256-bin histograms and a 256-entry grey -> ink
// table, so a 16384x16384 photo costs no buffer beyond the decoded image itself; only the
// horizontal pass of the resample keeps (region height, 28) floats.
#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "errors.h"
#include "idx.h"

namespace convnet {

namespace {

using Histogram = std::array<int64_t, 256>;

// The lower median of the values a histogram counts (n >= 1).
int histogram_median(const Histogram& h) {
  int64_t n = 0;
  for (int64_t c : h) n += c;
  const int64_t want = (n - 1) / 2;  // 0-based rank
  int64_t seen = 0;
  for (int v = 0; v < 256; ++v) {
    seen += h[static_cast<size_t>(v)];
    if (seen > want) return v;
  }
  return 255;
}

uint8_t grey_at(const Image& g, int x, int y) {
  return g.pixels[static_cast<size_t>(y) * static_cast<size_t>(g.width) + static_cast<size_t>(x)];
}

// Histogram of the border ring max(1, min(w, h) / 40) pixels wide.
Histogram border_histogram(const Image& g) {
  const int r = std::max(1, std::min(g.width, g.height) / 40);
  Histogram h{};
  for (int y = 0; y < g.height; ++y) {
    const bool edge_row = y < r || y >= g.height - r;
    for (int x = 0; x < g.width; ++x)
      if (edge_row || x < r || x >= g.width - r) ++h[grey_at(g, x, y)];
  }
  return h;
}

// For each output index i of an axis, the source pixels its footprint covers and their weights.
struct Tap {
  int src;
  float weight;
};
std::vector<std::vector<Tap>> axis_taps(int lo, int hi, double zoom, double shift, int out_n) {
  std::vector<std::vector<Tap>> taps(static_cast<size_t>(out_n));
  for (int i = 0; i < out_n; ++i) {
    const double a = (i - shift) / zoom, b = (i + 1 - shift) / zoom;  // footprint, b - a = 1 / zoom
    const int first = std::max(lo, static_cast<int>(std::floor(a)));
    const int last = std::min(hi - 1, static_cast<int>(std::ceil(b)) - 1);
    for (int s = first; s <= last; ++s) {
      const double cover = std::min<double>(b, s + 1) - std::max<double>(a, s);
      if (cover > 0) taps[static_cast<size_t>(i)].push_back({s, static_cast<float>(cover * zoom)});
    }
  }
  return taps;
}

}  // namespace

Image to_gray(const uint8_t* data, int width, int height, int channels) {
  CONVNET_CHECK(channels >= 1 && channels <= 4, "channels " + std::to_string(channels));
  CONVNET_CHECK(width >= 0 && height >= 0, "negative size");
  Image g;
  g.width = width;
  g.height = height;
  g.channels = 1;
  const size_t n = static_cast<size_t>(width) * static_cast<size_t>(height);
  g.pixels.resize(n);
  const bool alpha = channels == 2 || channels == 4;
  const int colours = alpha ? channels - 1 : channels;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = data + i * static_cast<size_t>(channels);
    const int a = alpha ? p[channels - 1] : 255;
    int c[3];
    for (int k = 0; k < 3; ++k) {
      const int v = p[colours == 1 ? 0 : k];
      c[k] = (v * a + 255 * (255 - a) + 127) / 255;  // over white, rounded
    }
    g.pixels[i] = static_cast<uint8_t>(colours == 1 ? c[0] : (299 * c[0] + 587 * c[1] + 114 * c[2] + 500) / 1000);
  }
  return g;
}

InkLevels measure_ink(const Image& grey) {
  CONVNET_CHECK(grey.channels == 1 && grey.width > 0 && grey.height > 0, "measure_ink: needs a grey image");
  InkLevels L;
  const Histogram ring = border_histogram(grey);
  L.background = histogram_median(ring);
  Histogram dev{};
  for (int v = 0; v < 256; ++v) dev[static_cast<size_t>(std::abs(v - L.background))] += ring[static_cast<size_t>(v)];
  L.noise_floor = kNoiseFloorSigmas * 1.4826 * histogram_median(dev);

  Histogram all{};
  for (uint8_t v : grey.pixels) ++all[v];
  double dark = 0, light = 0, dark_peak = 0, light_peak = 0;
  for (int v = 0; v < 256; ++v) {
    const int64_t count = all[static_cast<size_t>(v)];
    if (count == 0) continue;
    const double beyond = std::abs(v - L.background) - L.noise_floor;
    if (beyond <= 0) continue;
    if (v < L.background) dark += beyond * static_cast<double>(count), dark_peak = std::max(dark_peak, beyond);
    else light += beyond * static_cast<double>(count), light_peak = std::max(light_peak, beyond);
  }
  if (dark == 0 && light == 0) return L;  // contrast 0: blank
  L.inverted = dark > light;
  L.contrast = L.inverted ? dark_peak : light_peak;
  for (int v = 0; v < 256; ++v) {
    const double beyond = (L.inverted ? L.background - v : v - L.background) - L.noise_floor;
    L.ink[static_cast<size_t>(v)] = beyond > 0 ? static_cast<float>(std::min(255.0, beyond * 255.0 / L.contrast)) : 0.0f;
  }
  return L;
}

PixelBox ink_box(const Image& grey, const std::array<float, 256>& ink, float threshold) {
  PixelBox b{grey.width, grey.height, 0, 0};
  for (int y = 0; y < grey.height; ++y)
    for (int x = 0; x < grey.width; ++x)
      if (ink[grey_at(grey, x, y)] >= threshold) {
        b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x + 1);
        b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y + 1);
      }
  return b.empty() ? PixelBox{} : b;
}

bool ink_centroid(const Image& grey, const std::array<float, 256>& ink, const PixelBox& region, double* cx,
                  double* cy) {
  double mass = 0, sx = 0, sy = 0;
  for (int y = region.y0; y < region.y1; ++y) {
    double row = 0;
    for (int x = region.x0; x < region.x1; ++x) {
      const double v = ink[grey_at(grey, x, y)];
      row += v;
      sx += v * (x + 0.5);
    }
    mass += row;
    sy += row * (y + 0.5);
  }
  if (mass <= 0) return false;
  *cx = sx / mass;
  *cy = sy / mass;
  return true;
}

std::vector<float> area_resample(const Image& grey, const std::array<float, 256>& ink, const PixelBox& region,
                                 double zoom, double shift_x, double shift_y, int out_w, int out_h) {
  CONVNET_CHECK(zoom > 0 && region.x0 >= 0 && region.y0 >= 0 && region.x1 <= grey.width && region.y1 <= grey.height,
                "area_resample: bad zoom or region");
  const auto cols = axis_taps(region.x0, region.x1, zoom, shift_x, out_w);
  const auto rows = axis_taps(region.y0, region.y1, zoom, shift_y, out_h);
  // Horizontal pass over the region's rows into (region height, out_w), then vertical; the
  // intermediate holds weighted sums in double so a 16384-pixel footprint loses nothing.
  const int rh = std::max(0, region.height());
  std::vector<double> tmp(static_cast<size_t>(rh) * static_cast<size_t>(out_w), 0.0);
  for (int y = 0; y < rh; ++y)
    for (int i = 0; i < out_w; ++i) {
      double s = 0;
      for (const Tap& t : cols[static_cast<size_t>(i)]) s += t.weight * ink[grey_at(grey, t.src, region.y0 + y)];
      tmp[static_cast<size_t>(y) * static_cast<size_t>(out_w) + static_cast<size_t>(i)] = s;
    }
  std::vector<float> out(static_cast<size_t>(out_w) * static_cast<size_t>(out_h), 0.0f);
  for (int j = 0; j < out_h; ++j)
    for (int i = 0; i < out_w; ++i) {
      double s = 0;
      for (const Tap& t : rows[static_cast<size_t>(j)])
        s += t.weight * tmp[static_cast<size_t>(t.src - region.y0) * static_cast<size_t>(out_w) + static_cast<size_t>(i)];
      out[static_cast<size_t>(j) * static_cast<size_t>(out_w) + static_cast<size_t>(i)] = static_cast<float>(s);
    }
  return out;
}

void pixel_centroid(const std::vector<uint8_t>& pixels, int width, int height, double* cx, double* cy) {
  double mass = 0, sx = 0, sy = 0;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const double v = pixels[static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)];
      mass += v, sx += v * x, sy += v * y;
    }
  *cx = mass > 0 ? sx / mass : -1.0;
  *cy = mass > 0 ? sy / mass : -1.0;
}

PreprocessedDigit preprocess_digit(const Image& grey, const std::string& name_for_errors) {
  CONVNET_CHECK(grey.channels == 1, "preprocess_digit: needs a grey image");
  CONVNET_CHECK(grey.pixels.size() == static_cast<size_t>(grey.width) * static_cast<size_t>(grey.height),
                "preprocess_digit: pixel count");
  if (grey.width <= 0 || grey.height <= 0) throw InputError(name_for_errors + ": zero-size image");
  PreprocessedDigit d;
  d.levels = measure_ink(grey);
  if (d.levels.contrast < kMinInkContrast)
    throw InputError(name_for_errors + ": no digit found: the image is blank (nothing differs from the background, grey " +
                     std::to_string(d.levels.background) + ", by " + std::to_string(kMinInkContrast) +
                     " or more grey levels beyond its noise)");
  d.box = ink_box(grey, d.levels.ink, kInkBoxThreshold);  // non-empty: the peak's pixel has ink 255
  d.zoom = static_cast<double>(kDigitBoxSide) / std::max(d.box.width(), d.box.height());
  const int grow = std::max(1, static_cast<int>(std::lround(1.0 / d.zoom)));
  const PixelBox region{std::max(0, d.box.x0 - grow), std::max(0, d.box.y0 - grow),
                        std::min(grey.width, d.box.x1 + grow), std::min(grey.height, d.box.y1 + grow)};
  double cx = 0, cy = 0;
  ink_centroid(grey, d.levels.ink, region, &cx, &cy);
  // Continuous coordinates: the centre of output pixel 14 is 14.5.
  double shift_x = kFrameCentre + 0.5 - cx * d.zoom, shift_y = kFrameCentre + 0.5 - cy * d.zoom;
  if (d.zoom == 1.0) shift_x = std::round(shift_x), shift_y = std::round(shift_y);
  const std::vector<float> out =
      area_resample(grey, d.levels.ink, region, d.zoom, shift_x, shift_y, kImageSide, kImageSide);
  d.pixels.resize(out.size());
  for (size_t i = 0; i < out.size(); ++i)
    d.pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(out[i], 0.0f, 255.0f)));
  pixel_centroid(d.pixels, kImageSide, kImageSide, &d.centroid_x, &d.centroid_y);
  return d;
}

}  // namespace convnet
