// Pictures of what the network sees: a grid of test digits captioned with the model's predictions,
// and the confusion matrix as a heat map. Pure functions from numbers to an RGB Image (image_io.h);
// the caller writes the PNG, so everything here is unit-testable without files.
//
// Canvas: Image with channels 3, row-major, pixel (x, y) at pixels[(y * width + x) * 3 + {0,1,2}].
// Text: a built-in 5x7 bitmap font (digits, A-Z, a few signs) drawn at an integer scale; each glyph
// advances 6 font pixels (one blank column between characters). Lowercase is drawn as uppercase.
//
// Prediction grid, one cell per digit (cell_w x cell_h, see GridLayout):
//   +--------------------+   the whole cell is filled with the verdict colour, kCorrect (green) when
//   | F  28*scale digit  |   the prediction equals the label, kWrong (red) otherwise, so the digit
//   |    (grey, upscaled)|   sits in a frame of width kFrame and above a caption band of the same
//   |--------------------|   colour. The caption is "P/T" (predicted/true, e.g. "4/9"); with
//   | caption, white, 2x |   show_prob it adds the top probability, "4/9 87%". Digits keep MNIST's
//   +--------------------+   look (white ink on black) and are upscaled nearest-neighbour.
// Cells are laid out row by row, left to right, kGridGap apart inside a kGridMargin white border.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image_io.h"

namespace convnet {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kCorrect{0, 140, 60};  // frame and caption band of a right prediction
constexpr Rgb kWrong{210, 30, 30};   // ... of a wrong one

// ---- canvas -------------------------------------------------------------------------------------

// A width x height RGB image filled with `fill`.
Image make_canvas(int width, int height, Rgb fill);
// The colour at (x, y); CONVNET_CHECK that it is inside.
Rgb pixel_at(const Image& image, int x, int y);
// Fill the rectangle [x, x + w) x [y, y + h), clipped to the image.
void fill_rect(Image& image, int x, int y, int w, int h, Rgb colour);
// The border of that rectangle, `thickness` pixels wide, inside it.
void draw_frame(Image& image, int x, int y, int w, int h, int thickness, Rgb colour);
// A 28x28 grey digit (row-major bytes, 0 black .. 255 white) upscaled xscale, nearest neighbour, with
// its top-left corner at (x, y).
void blit_digit(Image& image, int x, int y, const uint8_t* digit /* (28, 28) */, int scale);

// ---- text ---------------------------------------------------------------------------------------

constexpr int kGlyphW = 5, kGlyphH = 7, kGlyphAdvance = 6;
constexpr int kCaptionScale = 2;  // captions and labels are drawn at 2x

// The seven 5-bit rows of c's glyph (bit 4 is the leftmost column), or nullptr when the font has none.
const uint8_t* glyph(char c);
// Every character the font can draw, in font order.
std::string font_characters();
// Width of `text` drawn at `scale` (no trailing blank column); height is kGlyphH * scale.
int text_width(const std::string& text, int scale);
// Draw text with its top-left corner at (x, y). CONVNET_CHECK: every character has a glyph.
void draw_text(Image& image, int x, int y, const std::string& text, int scale, Rgb colour);

// ---- prediction grid ----------------------------------------------------------------------------

// One digit to show. `pixels` points at 28x28 bytes that stay valid while the grid is built.
struct GridItem {
  const uint8_t* pixels = nullptr;
  int label = 0;       // true class
  int predicted = 0;   // argmax of the model's probabilities
  float prob = 0.0f;   // the model's probability of `predicted`
};

struct GridOptions {
  int cols = 8;            // cells per row (at most the number of items)
  int scale = 3;           // digit upscale factor
  bool show_prob = false;  // caption "P/T NN%" instead of "P/T"
};

constexpr int kFrame = 2;         // verdict-coloured border around the digit
constexpr int kCaptionPad = 3;    // band padding above and below the caption text
constexpr int kGridGap = 6;       // white space between cells
constexpr int kGridMargin = 8;    // white border around the grid

struct GridLayout {
  int cols = 0, rows = 0;
  int digit = 0;           // 28 * scale
  int cell_w = 0, cell_h = 0;
  int width = 0, height = 0;
  // Top-left corner of cell i (row-major) and of its digit.
  int cell_x(int i) const { return kGridMargin + (i % cols) * (cell_w + kGridGap); }
  int cell_y(int i) const { return kGridMargin + (i / cols) * (cell_h + kGridGap); }
  int digit_x(int i) const { return cell_x(i) + (cell_w - digit) / 2; }
  int digit_y(int i) const { return cell_y(i) + kFrame; }
};

// The geometry of a grid of `count` items (count >= 1).
//   inner  = max(28 * scale, widest caption + 2 * kCaptionPad), the widest caption being "0/0"
//            or, with show_prob, "0/0 100%"
//   cell_w = inner + 2 * kFrame;  cell_h = kFrame + 28 * scale + caption band (7 * 2 + 2 * kCaptionPad)
//   width  = 2 * kGridMargin + cols * cell_w + (cols - 1) * kGridGap, likewise height with rows.
GridLayout grid_layout(int count, const GridOptions& options);

// "4/9", or with show_prob "4/9 87%" (the probability rounded to a whole percent).
std::string grid_caption(const GridItem& item, bool show_prob);

// The grid image of `items` (at least one). CONVNET_CHECK on an empty list, a null pixel pointer or a
// class outside 0..9.
Image render_prediction_grid(const std::vector<GridItem>& items, const GridOptions& options);

// The picture shown when there is nothing to show: a small white image saying `message` in black
// (e.g. "NO ERRORS"), so a script that expects a file still gets a valid one.
Image render_message(const std::string& message);

// `count` of `candidates`, chosen by a seeded Fisher-Yates shuffle (epoch_order's counter hash, so
// the same seed picks the same samples on every machine); all of them, shuffled, when there are
// fewer. The order of the result is the order of the shuffle.
std::vector<int> pick_samples(const std::vector<int>& candidates, int count, uint64_t seed);

// ---- confusion heat map -------------------------------------------------------------------------

constexpr int kHeatCell = 56;      // side of one matrix cell (a 4-digit count at 2x with room to spare)
constexpr int kHeatMargin = 10;

// Geometry of the heat map: a title line ("ROWS: TRUE  COLUMNS: PREDICTED"), the class digits above
// the columns and left of the rows, then 10 x 10 cells of kHeatCell pixels.
struct HeatLayout {
  int grid_x = 0, grid_y = 0;  // top-left corner of cell (0, 0)
  int width = 0, height = 0;
  int cell_x(int col) const { return grid_x + col * kHeatCell; }
  int cell_y(int row) const { return grid_y + row * kHeatCell; }
};
HeatLayout heat_layout();

// The shade of a cell holding `fraction` (0..1) of its row: white at 0 to dark blue at 1, mixed by
// sqrt(fraction) so that the few percent of a row a typical confusion holds still shows (linear, a
// 3% cell is indistinguishable from an empty one next to a 97% diagonal).
Rgb heat_colour(double fraction);

// cm[true][predicted] counts (10 x 10) as a row-normalised heat map, each count printed in its cell
// (2x when it fits, else 1x, else left out), white text on dark cells, black on light ones, grey 0s.
Image render_confusion(const std::vector<std::vector<int64_t>>& cm);

}  // namespace convnet
