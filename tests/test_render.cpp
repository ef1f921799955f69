// The pictures of `convnet show` and `eval --confusion-png` (host/render.h), checked pixel by pixel:
// the font has a distinct glyph for every character the pictures use, the grid and heat map have
// the sizes their layouts promise (numbers worked out by hand here, not by calling the layout), the
// verdict colours sit where a reader looks for them, and a digit is its input upscaled exactly.
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "idx.h"
#include "render.h"
#include "test_util.h"

namespace convnet::test {
namespace {

std::vector<uint8_t> random_digit(uint64_t seed) { return random_vector<uint8_t>(kImagePixels, seed, 0.0, 255.99); }

int brightness(Rgb c) { return c.r + c.g + c.b; }

TEST(RenderFont, EveryCharacterThePicturesUseHasADistinctGlyph) {
  // Captions ("4/9 87%"), the zero-error picture, the heat map's title and counts.
  const std::string used = "0123456789/% NO ERRORS ROWS: TRUE  COLUMNS: PREDICTED";
  for (char c : used) EXPECT_NE(glyph(c), nullptr) << "no glyph for '" << c << "'";
  const std::string all = font_characters();
  std::set<std::vector<uint8_t>> shapes;
  for (char c : all) {
    const uint8_t* g = glyph(c);
    ASSERT_NE(g, nullptr) << c;
    std::vector<uint8_t> rows(g, g + kGlyphH);
    for (uint8_t r : rows) EXPECT_EQ(r & ~0x1F, 0) << "glyph '" << c << "' is wider than 5 columns";
    if (c != ' ') {
      EXPECT_NE(rows, std::vector<uint8_t>(kGlyphH, 0)) << "glyph '" << c << "' is blank";
    }
    EXPECT_TRUE(shapes.insert(rows).second) << "glyph '" << c << "' looks like another one";
  }
  EXPECT_EQ(glyph('n'), glyph('N'));  // lowercase draws as uppercase
  EXPECT_EQ(glyph('~'), nullptr);
}

TEST(RenderFont, DrawTextSetsExactlyTheGlyphPixels) {
  EXPECT_EQ(text_width("", 2), 0);
  EXPECT_EQ(text_width("7", 2), 10);
  EXPECT_EQ(text_width("4/9", 2), 34);  // 3 glyphs of 5 and 2 blank columns, doubled
  Image im = make_canvas(40, 20, kWhite);
  draw_text(im, 3, 2, "17", 2, kBlack);
  const uint8_t* one = glyph('1');
  const uint8_t* seven = glyph('7');
  for (int y = 0; y < 20; ++y)
    for (int x = 0; x < 40; ++x) {
      bool ink = false;
      const int fx = (x - 3) / 2, fy = (y - 2) / 2;
      if (x >= 3 && y >= 2 && fy < kGlyphH) {
        if (fx < kGlyphW) ink = one[fy] & (0x10 >> fx);
        if (fx >= kGlyphAdvance && fx < kGlyphAdvance + kGlyphW) ink = seven[fy] & (0x10 >> (fx - kGlyphAdvance));
      }
      ASSERT_EQ(pixel_at(im, x, y), ink ? kBlack : kWhite) << "(" << x << ", " << y << ")";
    }
  EXPECT_THROW(draw_text(im, 0, 0, "1~", 1, kBlack), std::logic_error);
}

TEST(RenderCanvas, RectsClipAndFramesStayInside) {
  Image im = make_canvas(10, 8, kWhite);
  EXPECT_EQ(im.channels, 3);
  EXPECT_EQ(im.pixels.size(), 10u * 8u * 3u);
  fill_rect(im, -5, -5, 7, 7, kBlack);  // clipped to [0, 2) x [0, 2)
  EXPECT_EQ(pixel_at(im, 1, 1), kBlack);
  EXPECT_EQ(pixel_at(im, 2, 2), kWhite);
  fill_rect(im, 8, 6, 100, 100, kWrong);
  EXPECT_EQ(pixel_at(im, 9, 7), kWrong);
  Image fr = make_canvas(10, 8, kWhite);
  draw_frame(fr, 1, 1, 8, 6, 2, kCorrect);
  EXPECT_EQ(pixel_at(fr, 0, 0), kWhite);
  EXPECT_EQ(pixel_at(fr, 1, 1), kCorrect);
  EXPECT_EQ(pixel_at(fr, 2, 4), kCorrect);
  EXPECT_EQ(pixel_at(fr, 3, 3), kWhite);  // inside the 2-pixel border
  EXPECT_EQ(pixel_at(fr, 8, 6), kCorrect);
  EXPECT_EQ(pixel_at(fr, 9, 7), kWhite);
}

TEST(RenderGrid, SizeIsCellsTimesDigitCaptionAndMargins) {
  const std::vector<uint8_t> d = random_digit(1);
  std::vector<GridItem> items(64, GridItem{d.data(), 3, 3, 0.9f});
  // Default: 8x8 cells of (2 + 84 + 2) x (2 + 84 + 20 caption band), 6 apart, 8 margin.
  Image im = render_prediction_grid(items, GridOptions{});
  EXPECT_EQ(im.width, 8 + 8 * 88 + 7 * 6 + 8);
  EXPECT_EQ(im.height, 8 + 8 * 106 + 7 * 6 + 8);
  EXPECT_EQ(im.channels, 3);
  // --misclassified: the widest caption "0/0 100%" (94 px + 2 * 3 pad) widens the cells past 84.
  GridOptions prob;
  prob.show_prob = true;
  Image ip = render_prediction_grid(items, prob);
  EXPECT_EQ(ip.width, 8 + 8 * 104 + 7 * 6 + 8);
  EXPECT_EQ(ip.height, im.height);
  // --count 10 --cols 5 --scale 2: 2 rows of 5 cells of (2 + 56 + 2) x (2 + 56 + 20).
  GridOptions small;
  small.cols = 5;
  small.scale = 2;
  Image is = render_prediction_grid(std::vector<GridItem>(10, items[0]), small);
  EXPECT_EQ(is.width, 8 + 5 * 60 + 4 * 6 + 8);
  EXPECT_EQ(is.height, 8 + 2 * 78 + 6 + 8);
  // 11 items make a third, partly empty row; 3 items do not fill 8 columns, so the grid is 3 wide.
  EXPECT_EQ(render_prediction_grid(std::vector<GridItem>(11, items[0]), small).height, 8 + 3 * 78 + 2 * 6 + 8);
  Image narrow = render_prediction_grid(std::vector<GridItem>(3, items[0]), GridOptions{});
  EXPECT_EQ(narrow.width, 8 + 3 * 88 + 2 * 6 + 8);
  EXPECT_EQ(narrow.height, 8 + 106 + 8);
  // Scale 1: the caption "0/0" (34 px + 6 pad) is wider than the 28-pixel digit.
  GridOptions tiny;
  tiny.scale = 1;
  EXPECT_EQ(render_prediction_grid(std::vector<GridItem>(1, items[0]), tiny).width, 8 + 44 + 8);
  for (const GridOptions& o : {GridOptions{}, prob, small, tiny}) {
    const GridLayout g = grid_layout(64, o);
    EXPECT_EQ(g.width, render_prediction_grid(items, o).width);
  }
}

TEST(RenderGrid, RightIsFramedGreenWrongRedAndDigitsAreTheScaledInput) {
  const uint64_t seed = test_seed(7);
  CONVNET_SEED_TRACE(seed);
  const std::vector<uint8_t> a = random_digit(seed), b = random_digit(seed + 1);
  const std::vector<GridItem> items = {{a.data(), 7, 7, 0.99f}, {b.data(), 9, 4, 0.87f}, {a.data(), 0, 0, 1.0f}};
  GridOptions opt;
  opt.cols = 2;
  opt.scale = 3;
  const Image im = render_prediction_grid(items, opt);
  const GridLayout g = grid_layout(3, opt);
  ASSERT_EQ(g.cols, 2);
  ASSERT_EQ(g.rows, 2);
  EXPECT_EQ(pixel_at(im, 0, 0), kWhite);
  EXPECT_EQ(pixel_at(im, g.cell_x(1) - 1, g.cell_y(1)), kWhite);  // the gap between cells
  const Rgb verdict[3] = {kCorrect, kWrong, kCorrect};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE("cell " + std::to_string(i));
    const int x = g.cell_x(i), y = g.cell_y(i), mid = g.digit_y(i) + g.digit / 2;
    EXPECT_EQ(pixel_at(im, x, y), verdict[i]);                            // top-left corner
    EXPECT_EQ(pixel_at(im, x + 1, mid), verdict[i]);                      // left border
    EXPECT_EQ(pixel_at(im, x + g.cell_w - 1, mid), verdict[i]);           // right border
    EXPECT_EQ(pixel_at(im, x + g.cell_w / 2, y + 1), verdict[i]);         // top border
    EXPECT_EQ(pixel_at(im, x + 1, y + g.cell_h - 1), verdict[i]);         // caption band, bottom
    const std::vector<uint8_t>& d = i == 1 ? b : a;
    for (int r = 0; r < kImageSide; ++r)
      for (int c = 0; c < kImageSide; ++c)
        for (int s = 0; s < opt.scale * opt.scale; ++s) {
          const uint8_t v = d[static_cast<size_t>(r * kImageSide + c)];
          const Rgb got = pixel_at(im, g.digit_x(i) + c * opt.scale + s % opt.scale,
                                   g.digit_y(i) + r * opt.scale + s / opt.scale);
          ASSERT_EQ(got, (Rgb{v, v, v})) << "digit pixel (" << r << ", " << c << ")";
        }
  }
  // The caption is white text in the band: its pixels are exactly draw_text's on the verdict colour.
  const std::string cap = grid_caption(items[1], false);
  EXPECT_EQ(cap, "4/9");  // label 9, predicted 4
  Image ref = make_canvas(g.cell_w, g.cell_h, kWrong);
  const int tx = (g.cell_w - text_width(cap, kCaptionScale)) / 2, ty = g.digit_y(1) - g.cell_y(1) + g.digit + kCaptionPad;
  draw_text(ref, tx, ty, cap, kCaptionScale, kWhite);
  int white = 0;
  for (int y = ty; y < g.cell_h; ++y)
    for (int x = 0; x < g.cell_w; ++x) {
      ASSERT_EQ(pixel_at(im, g.cell_x(1) + x, g.cell_y(1) + y), pixel_at(ref, x, y)) << x << ", " << y;
      white += pixel_at(ref, x, y) == kWhite;
    }
  EXPECT_GT(white, 0);
}

TEST(RenderGrid, CaptionsArePredictedSlashTrue) {
  const std::vector<uint8_t> d(kImagePixels, 0);
  EXPECT_EQ(grid_caption({d.data(), 7, 7, 0.5f}, false), "7/7");
  EXPECT_EQ(grid_caption({d.data(), 9, 4, 0.871f}, true), "4/9 87%");
  EXPECT_EQ(grid_caption({d.data(), 1, 2, 1.0f}, true), "2/1 100%");
  EXPECT_EQ(grid_caption({d.data(), 1, 2, 0.004f}, true), "2/1 0%");
  EXPECT_THROW(grid_caption({d.data(), 10, 2, 0.5f}, false), std::logic_error);
  EXPECT_THROW(render_prediction_grid({}, GridOptions{}), std::logic_error);
}

TEST(RenderGrid, MessageImageForNothingToShow) {
  const Image im = render_message("NO ERRORS");
  EXPECT_EQ(im.width, text_width("NO ERRORS", 2) + 24);
  EXPECT_EQ(im.height, 14 + 24);
  int ink = 0;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x) ink += pixel_at(im, x, y) == kBlack;
  EXPECT_GT(ink, 0);
}

TEST(RenderGrid, PickSamplesIsASeededSelection) {
  std::vector<int> cand;
  for (int i = 0; i < 500; ++i) cand.push_back(1000 + 3 * i);
  const std::vector<int> p = pick_samples(cand, 64, 1);
  EXPECT_EQ(p.size(), 64u);
  EXPECT_EQ(p, pick_samples(cand, 64, 1));
  EXPECT_NE(p, pick_samples(cand, 64, 2));
  std::set<int> seen(p.begin(), p.end());
  EXPECT_EQ(seen.size(), 64u);
  for (int v : p) EXPECT_TRUE(v >= 1000 && (v - 1000) % 3 == 0 && v < 2500) << v;
  EXPECT_NE(p, std::vector<int>(cand.begin(), cand.begin() + 64)) << "a shuffle, not the first ones";
  const std::vector<int> few = pick_samples({5, 6, 7}, 64, 1);
  EXPECT_EQ(std::set<int>(few.begin(), few.end()), (std::set<int>{5, 6, 7}));
  EXPECT_TRUE(pick_samples({}, 8, 1).empty());
}

TEST(RenderConfusion, SizeAndDiagonalShadedDarker) {
  std::vector<std::vector<int64_t>> cm(10, std::vector<int64_t>(10, 0));
  for (int r = 0; r < 10; ++r)
    for (int c = 0; c < 10; ++c) cm[r][c] = r == c ? 950 + 20 * r : (r + c) % 4;
  cm[3][5] = 123456789;  // too wide even at 1x: the shade alone tells it
  const Image im = render_confusion(cm);
  // Title line, column digits, then 10 x 10 cells of 56 px; left the row digits.
  const HeatLayout h = heat_layout();
  EXPECT_EQ(h.grid_x, 10 + 10 + 6);
  EXPECT_EQ(h.grid_y, 10 + 14 + 12 + 14 + 6);
  EXPECT_EQ(im.width, 26 + 560 + 10);
  EXPECT_EQ(im.height, 56 + 560 + 10);
  EXPECT_EQ(im.channels, 3);
  for (int r = 0; r < 10; ++r)
    for (int c = 0; c < 10; ++c) {
      if (r == c || r == 3) continue;
      // The corner of a cell is clear of its count.
      const Rgb diag = pixel_at(im, h.cell_x(r) + 2, h.cell_y(r) + 2);
      const Rgb off = pixel_at(im, h.cell_x(c) + 2, h.cell_y(r) + 2);
      EXPECT_LT(brightness(diag), brightness(off)) << "row " << r << " col " << c;
    }
  int64_t row3 = 0;
  for (int64_t v : cm[3]) row3 += v;
  EXPECT_EQ(pixel_at(im, h.cell_x(5) + 2, h.cell_y(3) + 2), heat_colour(123456789.0 / static_cast<double>(row3)));
  EXPECT_EQ(heat_colour(0.0), kWhite);
  EXPECT_LT(brightness(heat_colour(1.0)), brightness(heat_colour(0.5)));
  EXPECT_EQ(heat_colour(1.0), (Rgb{8, 48, 107}));
  // A 3% confusion is visibly shaded (sqrt: a quarter of the way to dark blue at 6.25%).
  EXPECT_LT(brightness(heat_colour(0.03)), 3 * 255 - 100);
  EXPECT_EQ(heat_colour(0.0625), (Rgb{193, 203, 218}));
  // A count is drawn in its cell: white ink on the dark diagonal.
  int ink = 0;
  for (int y = h.cell_y(0); y < h.cell_y(1); ++y)
    for (int x = h.cell_x(0); x < h.cell_x(1); ++x) ink += pixel_at(im, x, y) == kWhite;
  EXPECT_GT(ink, 20);
  // A row with no samples is white, not a division by zero.
  std::vector<std::vector<int64_t>> empty(10, std::vector<int64_t>(10, 0));
  EXPECT_EQ(pixel_at(render_confusion(empty), h.cell_x(0) + 2, h.cell_y(0) + 2), kWhite);
  EXPECT_THROW(render_confusion(std::vector<std::vector<int64_t>>(9, std::vector<int64_t>(10, 0))), std::logic_error);
}

}  // namespace
}  // namespace convnet::test
