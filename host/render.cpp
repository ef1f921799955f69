// Prediction grids and confusion heat maps as RGB images (see render.h for the layouts).
#include "render.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "errors.h"
#include "idx.h"
#include "trainer.h"

namespace convnet {

namespace {

// The 5x7 font: seven rows per glyph, bit 4 the leftmost column (the classic HD44780 shapes).
struct Glyph {
  char c;
  uint8_t rows[kGlyphH];
};
constexpr Glyph kFont[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'/', {0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10}}, {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}}, {' ', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}},
};

constexpr int kBandH = kGlyphH * kCaptionScale + 2 * kCaptionPad;  // caption band under a digit

int check_class(int c, const char* what) {
  CONVNET_CHECK(c >= 0 && c < kNumClasses, std::string(what) + " " + std::to_string(c) + " is not a class 0..9");
  return c;
}

}  // namespace

// ---- canvas -------------------------------------------------------------------------------------

Image make_canvas(int width, int height, Rgb fill) {
  CONVNET_CHECK(width > 0 && height > 0 && width <= kMaxImageSide && height <= kMaxImageSide,
                "canvas " + std::to_string(width) + "x" + std::to_string(height));
  Image im;
  im.width = width;
  im.height = height;
  im.channels = 3;
  im.pixels.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  fill_rect(im, 0, 0, width, height, fill);
  return im;
}

Rgb pixel_at(const Image& image, int x, int y) {
  CONVNET_CHECK(image.channels == 3 && x >= 0 && y >= 0 && x < image.width && y < image.height,
                "pixel (" + std::to_string(x) + ", " + std::to_string(y) + ") outside the image");
  const uint8_t* p = &image.pixels[(static_cast<size_t>(y) * static_cast<size_t>(image.width) + x) * 3];
  return {p[0], p[1], p[2]};
}

void fill_rect(Image& image, int x, int y, int w, int h, Rgb colour) {
  CONVNET_CHECK(image.channels == 3, "an RGB canvas");
  const int x0 = std::max(x, 0), y0 = std::max(y, 0);
  const int x1 = std::min(x + w, image.width), y1 = std::min(y + h, image.height);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) {
      uint8_t* p = &image.pixels[(static_cast<size_t>(yy) * static_cast<size_t>(image.width) + xx) * 3];
      p[0] = colour.r, p[1] = colour.g, p[2] = colour.b;
    }
}

void draw_frame(Image& image, int x, int y, int w, int h, int thickness, Rgb colour) {
  fill_rect(image, x, y, w, thickness, colour);                  // top
  fill_rect(image, x, y + h - thickness, w, thickness, colour);  // bottom
  fill_rect(image, x, y, thickness, h, colour);                  // left
  fill_rect(image, x + w - thickness, y, thickness, h, colour);  // right
}

void blit_digit(Image& image, int x, int y, const uint8_t* digit, int scale) {
  CONVNET_CHECK(digit != nullptr && scale >= 1, "a digit and a scale >= 1");
  for (int r = 0; r < kImageSide; ++r)
    for (int c = 0; c < kImageSide; ++c) {
      const uint8_t v = digit[r * kImageSide + c];
      fill_rect(image, x + c * scale, y + r * scale, scale, scale, {v, v, v});
    }
}

// ---- text ---------------------------------------------------------------------------------------

const uint8_t* glyph(char c) {
  const char up = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Glyph& g : kFont)
    if (g.c == up) return g.rows;
  return nullptr;
}

std::string font_characters() {
  std::string s;
  for (const Glyph& g : kFont) s += g.c;
  return s;
}

int text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kGlyphAdvance - 1) * scale;
}

void draw_text(Image& image, int x, int y, const std::string& text, int scale, Rgb colour) {
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t* rows = glyph(text[i]);
    CONVNET_CHECK(rows != nullptr, std::string("the font has no glyph for '") + text[i] + "'");
    const int gx = x + static_cast<int>(i) * kGlyphAdvance * scale;
    for (int r = 0; r < kGlyphH; ++r)
      for (int c = 0; c < kGlyphW; ++c)
        if (rows[r] & (0x10 >> c)) fill_rect(image, gx + c * scale, y + r * scale, scale, scale, colour);
  }
}

// ---- prediction grid ----------------------------------------------------------------------------

GridLayout grid_layout(int count, const GridOptions& options) {
  CONVNET_CHECK(count >= 1 && options.cols >= 1 && options.scale >= 1, "a non-empty grid");
  GridLayout g;
  g.cols = std::min(options.cols, count);
  g.rows = (count + g.cols - 1) / g.cols;
  g.digit = kImageSide * options.scale;
  const int caption = text_width(options.show_prob ? "0/0 100%" : "0/0", kCaptionScale);
  g.cell_w = std::max(g.digit, caption + 2 * kCaptionPad) + 2 * kFrame;
  g.cell_h = kFrame + g.digit + kBandH;
  g.width = 2 * kGridMargin + g.cols * g.cell_w + (g.cols - 1) * kGridGap;
  g.height = 2 * kGridMargin + g.rows * g.cell_h + (g.rows - 1) * kGridGap;
  return g;
}

std::string grid_caption(const GridItem& item, bool show_prob) {
  char buf[32];
  const int pred = check_class(item.predicted, "prediction"), label = check_class(item.label, "label");
  if (show_prob) {
    const long pct = std::lround(100.0 * std::clamp(static_cast<double>(item.prob), 0.0, 1.0));
    std::snprintf(buf, sizeof buf, "%d/%d %ld%%", pred, label, pct);
  } else {
    std::snprintf(buf, sizeof buf, "%d/%d", pred, label);
  }
  return buf;
}

Image render_prediction_grid(const std::vector<GridItem>& items, const GridOptions& options) {
  CONVNET_CHECK(!items.empty(), "at least one digit to draw");
  const GridLayout g = grid_layout(static_cast<int>(items.size()), options);
  Image im = make_canvas(g.width, g.height, kWhite);
  for (size_t k = 0; k < items.size(); ++k) {
    const GridItem& it = items[k];
    CONVNET_CHECK(it.pixels != nullptr, "digit " + std::to_string(k) + " has pixels");
    const int i = static_cast<int>(k);
    const std::string caption = grid_caption(it, options.show_prob);
    fill_rect(im, g.cell_x(i), g.cell_y(i), g.cell_w, g.cell_h, it.predicted == it.label ? kCorrect : kWrong);
    blit_digit(im, g.digit_x(i), g.digit_y(i), it.pixels, options.scale);
    const int tx = g.cell_x(i) + (g.cell_w - text_width(caption, kCaptionScale)) / 2;
    draw_text(im, tx, g.digit_y(i) + g.digit + kCaptionPad, caption, kCaptionScale, kWhite);
  }
  return im;
}

Image render_message(const std::string& message) {
  const int pad = 12;
  Image im = make_canvas(text_width(message, kCaptionScale) + 2 * pad, kGlyphH * kCaptionScale + 2 * pad, kWhite);
  draw_text(im, pad, pad, message, kCaptionScale, kBlack);
  return im;
}

std::vector<int> pick_samples(const std::vector<int>& candidates, int count, uint64_t seed) {
  const int n = static_cast<int>(candidates.size());
  const std::vector<int32_t> order = epoch_order(seed, 0, n);
  std::vector<int> picked;
  for (int k = 0; k < std::min(count, n); ++k) picked.push_back(candidates[static_cast<size_t>(order[k])]);
  return picked;
}

// ---- confusion heat map -------------------------------------------------------------------------

namespace {
const char* const kHeatTitle = "ROWS: TRUE  COLUMNS: PREDICTED";
constexpr int kLabelGap = 6;  // between an axis digit and the grid
}  // namespace

HeatLayout heat_layout() {
  const int text_h = kGlyphH * kCaptionScale;
  HeatLayout h;
  h.grid_x = kHeatMargin + text_width("0", kCaptionScale) + kLabelGap;
  h.grid_y = kHeatMargin + text_h + 2 * kLabelGap + text_h + kLabelGap;
  h.width = std::max(h.grid_x + kNumClasses * kHeatCell, kHeatMargin + text_width(kHeatTitle, kCaptionScale)) +
            kHeatMargin;
  h.height = h.grid_y + kNumClasses * kHeatCell + kHeatMargin;
  return h;
}

Rgb heat_colour(double fraction) {
  const double t = std::sqrt(std::clamp(fraction, 0.0, 1.0));
  const Rgb dark{8, 48, 107};  // the end of matplotlib's "Blues"
  auto mix = [t](uint8_t lo) { return static_cast<uint8_t>(std::lround(255.0 + (lo - 255.0) * t)); };
  return {mix(dark.r), mix(dark.g), mix(dark.b)};
}

Image render_confusion(const std::vector<std::vector<int64_t>>& cm) {
  CONVNET_CHECK(cm.size() == static_cast<size_t>(kNumClasses), "a 10x10 confusion matrix");
  const HeatLayout h = heat_layout();
  const int text_h = kGlyphH * kCaptionScale;
  Image im = make_canvas(h.width, h.height, kWhite);
  draw_text(im, kHeatMargin, kHeatMargin, kHeatTitle, kCaptionScale, kBlack);
  for (int k = 0; k < kNumClasses; ++k) {
    const std::string d = std::to_string(k);
    draw_text(im, h.cell_x(k) + (kHeatCell - text_width(d, kCaptionScale)) / 2, h.grid_y - kLabelGap - text_h, d,
              kCaptionScale, kBlack);
    draw_text(im, kHeatMargin, h.cell_y(k) + (kHeatCell - text_h) / 2, d, kCaptionScale, kBlack);
  }
  for (int r = 0; r < kNumClasses; ++r) {
    CONVNET_CHECK(cm[static_cast<size_t>(r)].size() == static_cast<size_t>(kNumClasses), "a 10x10 confusion matrix");
    int64_t total = 0;
    for (int64_t v : cm[static_cast<size_t>(r)]) total += v;
    for (int c = 0; c < kNumClasses; ++c) {
      const int64_t v = cm[static_cast<size_t>(r)][static_cast<size_t>(c)];
      const double frac = total > 0 ? static_cast<double>(v) / static_cast<double>(total) : 0.0;
      fill_rect(im, h.cell_x(c), h.cell_y(r), kHeatCell, kHeatCell, heat_colour(frac));
      const std::string s = std::to_string(v);
      const int scale = text_width(s, 2) <= kHeatCell - 4 ? 2 : text_width(s, 1) <= kHeatCell - 4 ? 1 : 0;
      if (scale == 0) continue;
      const Rgb ink = frac > 0.25 ? kWhite : v == 0 ? Rgb{170, 170, 170} : kBlack;
      draw_text(im, h.cell_x(c) + (kHeatCell - text_width(s, scale)) / 2,
                h.cell_y(r) + (kHeatCell - kGlyphH * scale) / 2, s, scale, ink);
    }
  }
  draw_frame(im, h.grid_x - 1, h.grid_y - 1, kNumClasses * kHeatCell + 2, kNumClasses * kHeatCell + 2, 1,
             Rgb{120, 120, 120});
  return im;
}

}  // namespace convnet
