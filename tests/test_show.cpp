// `convnet show` and `convnet eval --confusion-png` through the real binary, as a user runs them:
// the PNG decodes, is RGB and has the size the layout promises (worked out by hand here), its frames
// agree with the summary line, and --misclassified shows only red cells. The case of fewer errors
// than --count and of no errors at all use a made-up test set: ten copies of one digit labelled
// 0..9 (exactly nine are wrong, whatever the model) and one digit labelled with the model's own
// answer (none is wrong). Bad flags are one-line errors with exit 2.
//
// A tiny model (keras arch, 1 epoch on 1,024 images, under a second) is trained once per test
// process. Needs MNIST_DIR; skips saying so when it is unset.
#include <gtest/gtest.h>
#include <stb_image.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "idx.h"
#include "model_file.h"
#include "model_io.h"
#include "process.h"
#include "render.h"
#include "scratch_mounts.h"
#include "temp_dir.h"
#include "trainer.h"

namespace convnet::test {
namespace {

std::string mnist_dir() {
  const char* d = std::getenv("MNIST_DIR");
  return d && *d ? d : "";
}

// The tiny model, trained on the first call of the process; "" (with a failure) if training failed.
const std::string& tiny_model() {
  static TempDir dir("convnet_test_show");
  static const std::string path = [] {
    const std::string p = dir.file("tiny.cnvn");
    ProcessResult t = run_convnet({"train", "--arch", "keras", "--epochs", "1", "--limit-train", "1024", "--val-split",
                                   "0", "--no-test", "--device", "cpu", "--data", mnist_dir(), "--save", p});
    EXPECT_EQ(t.exit_code, 0) << t.err;
    return t.exit_code == 0 ? p : std::string();
  }();
  return path;
}

struct Png {
  int width = 0, height = 0;
  int colour_type = -1;  // from IHDR: 2 is 8-bit RGB
  std::vector<uint8_t> rgb;
  Rgb at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3;
    return {rgb[i], rgb[i + 1], rgb[i + 2]};
  }
};

// The PNG at path, decoded by stb_image; ADD_FAILURE and an empty Png when it is not one.
Png read_png(const std::string& path) {
  Png p;
  const std::string bytes = slurp(path);
  if (bytes.size() < 33 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0 || bytes.compare(12, 4, "IHDR") != 0) {
    ADD_FAILURE() << path << " is not a PNG (" << bytes.size() << " bytes)";
    return p;
  }
  p.colour_type = static_cast<uint8_t>(bytes[25]);
  int w = 0, h = 0, n = 0;
  uint8_t* px = stbi_load(path.c_str(), &w, &h, &n, 3);
  if (!px) {
    ADD_FAILURE() << path << " does not decode: " << stbi_failure_reason();
    return p;
  }
  p.width = w, p.height = h;
  p.rgb.assign(px, px + static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  stbi_image_free(px);
  return p;
}

#define NEED_MNIST()                                                                 \
  do {                                                                               \
    if (mnist_dir().empty()) GTEST_SKIP() << "MNIST_DIR is not set: real MNIST is needed"; \
    ASSERT_FALSE(tiny_model().empty()) << "training the tiny model failed";          \
  } while (0)

void expect_one_line_error(const std::vector<std::string>& args, const std::string& needle) {
  std::string cmd;
  for (const std::string& a : args) cmd += a + " ";
  SCOPED_TRACE("convnet " + cmd);
  ProcessResult r = run_convnet(args);
  EXPECT_EQ(r.exit_code, 2);
  const std::vector<std::string> lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("convnet: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

// The number of cells of a grid whose top-left frame pixel has `colour`.
int cells_coloured(const Png& png, const GridLayout& g, int count, Rgb colour) {
  int n = 0;
  for (int i = 0; i < count; ++i) n += png.at(g.cell_x(i), g.cell_y(i)) == colour;
  return n;
}

TEST(ShowCli, DefaultGridIs8x8WithFramesMatchingTheSummary) {
  NEED_MNIST();
  TempDir tmp;
  const std::string out = tmp.file("grid.png");
  ProcessResult r = run_convnet({"show", "--model", tiny_model(), "--out", out, "--data", mnist_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("wrote " + out + ": 64 digits, ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << "one line: " << r.out;
  const int correct = std::atoi(r.out.c_str() + r.out.find(", ") + 2);
  const Png png = read_png(out);
  EXPECT_EQ(png.colour_type, 2) << "8-bit RGB";
  // 8 x 8 cells of (2 + 28*3 + 2) x (2 + 28*3 + 20), 6 apart, with an 8-pixel margin.
  ASSERT_EQ(png.width, 8 + 8 * 88 + 7 * 6 + 8);
  ASSERT_EQ(png.height, 8 + 8 * 106 + 7 * 6 + 8);
  const GridLayout g = grid_layout(64, GridOptions{});
  EXPECT_EQ(cells_coloured(png, g, 64, kCorrect), correct);
  EXPECT_EQ(cells_coloured(png, g, 64, kWrong), 64 - correct);
  EXPECT_GT(correct, 0);
  EXPECT_LT(correct, 64) << "a model trained for one small epoch makes some mistakes";

  // --seed picks the digits: the same seed the same picture, another seed another one.
  ProcessResult again = run_convnet({"show", "--model", tiny_model(), "--out", tmp.file("again.png"), "--data",
                                     mnist_dir(), "--seed", "1"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(slurp(tmp.file("again.png")), slurp(out));
  ProcessResult other = run_convnet({"show", "--model", tiny_model(), "--out", tmp.file("other.png"), "--data",
                                     mnist_dir(), "--seed", "2"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(slurp(tmp.file("other.png")), slurp(out));
}

TEST(ShowCli, CountColsAndScaleSetTheSize) {
  NEED_MNIST();
  TempDir tmp;
  const std::string out = tmp.file("small.png");
  ProcessResult r = run_convnet({"show", "--model", tiny_model(), "--out", out, "--data", mnist_dir(), "--count", "10",
                                 "--cols", "5", "--scale", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(": 10 digits, "), std::string::npos) << r.out;
  const Png png = read_png(out);
  EXPECT_EQ(png.width, 8 + 5 * 60 + 4 * 6 + 8);  // cells of 2 + 56 + 2
  EXPECT_EQ(png.height, 8 + 2 * 78 + 6 + 8);     // cells of 2 + 56 + 20
}

TEST(ShowCli, MisclassifiedShowsOnlyRedCellsWithTheirConfidence) {
  NEED_MNIST();
  TempDir tmp;
  const std::string out = tmp.file("errors.png");
  ProcessResult r = run_convnet({"show", "--model", tiny_model(), "--out", out, "--data", mnist_dir(),
                                 "--misclassified", "--count", "16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("wrote " + out + ": 16 misclassified digits (of ", 0), 0u) << r.out;
  const Png png = read_png(out);
  // Captions "P/T NN%" need cells 100 + 2 * 2 wide, wider than the 84-pixel digit.
  ASSERT_EQ(png.width, 8 + 8 * 104 + 7 * 6 + 8);
  ASSERT_EQ(png.height, 8 + 2 * 106 + 6 + 8);
  GridOptions opt;
  opt.show_prob = true;
  EXPECT_EQ(cells_coloured(png, grid_layout(16, opt), 16, kWrong), 16);
}

// A test set of `labels.size()` copies of test digit 0 of MNIST, and no training files: eval and
// show read only the test files of `--data dir`.
void make_data_dir(const TempDir& dir, const std::vector<uint8_t>& labels, std::vector<uint8_t>* digit) {
  const ImageSet test = load_idx_pair(find_idx_file(mnist_dir(), "t10k-images"), find_idx_file(mnist_dir(), "t10k-labels"));
  digit->assign(test.images.begin(), test.images.begin() + kImagePixels);
  auto be32 = [](std::string& s, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xFF);
  };
  std::string images, lab;
  be32(images, 2051), be32(images, static_cast<uint32_t>(labels.size())), be32(images, 28), be32(images, 28);
  be32(lab, 2049), be32(lab, static_cast<uint32_t>(labels.size()));
  for (uint8_t l : labels) {
    images.append(digit->begin(), digit->end());
    lab += static_cast<char>(l);
  }
  std::ofstream(dir.file("t10k-images-idx3-ubyte"), std::ios::binary) << images;
  std::ofstream(dir.file("t10k-labels-idx1-ubyte"), std::ios::binary) << lab;
}

// What the tiny model answers for `digit`, computed in this process on the CPU reference.
int predict_cpu(const std::vector<uint8_t>& digit) {
  auto [model, params] = load_trained_model(tiny_model());
  BackendConfig bc;
  bc.max_batch = 1;
  std::unique_ptr<Backend> backend = make_cpu_backend(model, bc);
  backend->set_arena(Arena::Params, params);
  ImageSet one;
  one.count = 1;
  one.images = digit;
  one.labels = {0};
  std::vector<float> probs(kNumClasses);
  evaluate(*backend, backend->add_images(one), 0, 1, 1, probs.data());
  int best = 0;
  for (int c = 1; c < kNumClasses; ++c)
    if (probs[static_cast<size_t>(c)] > probs[static_cast<size_t>(best)]) best = c;
  return best;
}

TEST(ShowCli, FewerErrorsThanCountShowsThemAllAndNoErrorsStillWritesAnImage) {
  NEED_MNIST();
  std::vector<uint8_t> digit;
  {
    TempDir data, tmp;
    make_data_dir(data, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, &digit);
    const std::string out = tmp.file("nine.png");
    ProcessResult r = run_convnet({"show", "--model", tiny_model(), "--out", out, "--data", data.path(),
                                   "--misclassified", "--device", "cpu"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "wrote " + out + ": all 9 misclassified digits of 10 test images (fewer than --count 64)\n");
    const Png png = read_png(out);
    EXPECT_EQ(png.width, 8 + 8 * 104 + 7 * 6 + 8);
    EXPECT_EQ(png.height, 8 + 2 * 106 + 6 + 8);
  }
  TempDir data, tmp;
  make_data_dir(data, {static_cast<uint8_t>(predict_cpu(digit))}, &digit);
  const std::string out = tmp.file("none.png");
  ProcessResult r = run_convnet({"show", "--model", tiny_model(), "--out", out, "--data", data.path(),
                                 "--misclassified", "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "wrote " + out + ": no misclassified digits among 1 test images, so it only says NO ERRORS\n");
  const Png png = read_png(out);
  EXPECT_EQ(png.width, text_width("NO ERRORS", 2) + 24);
  EXPECT_EQ(png.height, 14 + 24);
}

TEST(ShowCli, EvalWritesTheConfusionHeatMap) {
  NEED_MNIST();
  TempDir tmp;
  const std::string out = tmp.file("confusion.png");
  ProcessResult r = run_convnet({"eval", "--model", tiny_model(), "--data", mnist_dir(), "--confusion-png", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Confusion matrix"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote " + out + "\n"), std::string::npos) << r.out;
  const Png png = read_png(out);
  EXPECT_EQ(png.colour_type, 2);
  EXPECT_EQ(png.width, 26 + 10 * 56 + 10);  // row digits, 10 cells, margin
  EXPECT_EQ(png.height, 56 + 10 * 56 + 10);  // title, column digits, 10 cells, margin
}

// eval and show evaluate the dataset the model was trained on (the model file records it) unless
// --dataset says otherwise, and need only its test files.
TEST(ShowCli, EvalAndShowDefaultToTheModelsDatasetAndNeedOnlyTheTestFiles) {
  NEED_MNIST();
  TempDir data, tmp;
  std::vector<uint8_t> digit;
  make_data_dir(data, {0, 1, 2}, &digit);
  ModelFile f = load_model_file(tiny_model());
  bool recorded = false;
  for (auto& [key, value] : f.metadata)
    if (key == "dataset") value = "fashion", recorded = true;
  ASSERT_TRUE(recorded) << "train --save records the dataset";
  const std::string fashion = tmp.file("fashion.cnvn");
  save_model_file(fashion, f);

  ProcessResult r = run_convnet({"eval", "--model", fashion, "--data", data.path(), "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Data: fashion test set, 3 images from " + data.path()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\n  9: -       (0/0)\n"), std::string::npos) << "a class without test images has no accuracy\n"
                                                                 << r.out;
  r = run_convnet({"eval", "--model", fashion, "--data", data.path(), "--device", "cpu", "--dataset", "mnist"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Data: mnist test set, 3 images"), std::string::npos) << r.out;
  r = run_convnet({"eval", "--model", tiny_model(), "--data", data.path(), "--device", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Data: mnist test set, 3 images"), std::string::npos) << r.out;
  r = run_convnet({"show", "--model", fashion, "--data", data.path(), "--device", "cpu", "--out", tmp.file("s.png")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(": 3 digits, "), std::string::npos) << r.out;
  // Without --data, a fashion model looks in Fashion-MNIST's folder, not in $MNIST_DIR.
  r = run_convnet({"eval", "--model", fashion, "--device", "cpu"});
  if (r.exit_code == 0)
    EXPECT_NE(r.out.find("images from /usr/share/datasets/fashion-mnist"), std::string::npos) << r.out;
  else
    EXPECT_NE(r.err.find("/usr/share/datasets/fashion-mnist"), std::string::npos) << r.err;
}

// A destination that cannot take the PNG is refused before the model runs (eval printed the whole
// evaluation first), naming the flag; a FIFO is not replaced by a regular file.
TEST(ShowCli, BadDestinationsAreRefusedBeforeTheModelRuns) {
  NEED_MNIST();
  TempDir tmp;
  std::filesystem::create_directory(tmp.file("folder"));
  { std::ofstream(tmp.file("plain")) << "a regular file"; }
  ASSERT_EQ(mkfifo(tmp.file("fifo").c_str(), 0644), 0);
  std::vector<std::pair<std::string, std::string>> bad = {
      {tmp.file("missing/out.png"), ": cannot write " + tmp.file("missing/out.png") + ": " + tmp.file("missing")},
      {tmp.file("folder"), ": " + tmp.file("folder") + " is a directory"},
      {tmp.file("plain/out.png"), ": cannot write " + tmp.file("plain/out.png") + ": " + tmp.file("plain") +
                                      " is not a directory"},
      {tmp.file("fifo"), ": " + tmp.file("fifo") + " is a FIFO"},
  };
  ReadOnlyFolder ro(tmp.file("ro"));
  if (ro.ok())
    bad.push_back({tmp.file("ro/out.png"), ": cannot write " + tmp.file("ro/out.png") + ": " + tmp.file("ro")});
  for (const auto& [path, needle] : bad) {
    SCOPED_TRACE(path);
    using Flag = std::pair<std::string, std::string>;  // command, its output flag
    for (const auto& [cmd, flag] : {Flag{"eval", "--confusion-png"}, Flag{"show", "--out"}}) {
      ProcessResult r = run_convnet({cmd, "--model", tiny_model(), "--data", mnist_dir(), flag, path});
      EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
      ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
      EXPECT_NE(r.err.find("convnet: error: " + flag + needle), std::string::npos) << r.err;
      EXPECT_EQ(r.out, "") << "ran the model before refusing";
    }
  }
  struct stat st {};
  ASSERT_EQ(lstat(tmp.file("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // The PNG would replace the model it was asked to draw from.
  const std::string model = tmp.file("m.cnvn");
  std::filesystem::copy_file(tiny_model(), model);
  const std::string before = slurp(model);
  using Flag = std::pair<std::string, std::string>;
  for (const auto& [cmd, flag] : {Flag{"eval", "--confusion-png"}, Flag{"show", "--out"}}) {
    ProcessResult r = run_convnet({cmd, "--model", model, "--data", mnist_dir(), flag, tmp.file("./m.cnvn")});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(r.err.find("convnet: error: --model and " + flag + " name the same file"), std::string::npos) << r.err;
  }
  EXPECT_EQ(slurp(model), before);
}

TEST(ShowCli, BadFlagsAreOneLineErrors) {
  const std::string m = "/nonexistent/model.cnvn";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"show"}, "--model: required"},
      {{"show", "--model", m, "--count", "0"}, "--count"},
      {{"show", "--model", m, "--count", "many"}, "--count: expected an integer"},
      {{"show", "--model", m, "--scale", "0"}, "--scale"},
      {{"show", "--model", m, "--cols", "0"}, "--cols"},
      {{"show", "--model", m, "--seed", "-1"}, "--seed"},
      {{"show", "--model", m, "--out", ""}, "--out"},
      {{"show", "--model", m, "--count", "5000", "--cols", "1"}, "over the 16384"},
      {{"show", "--model", m, "--misclassified=yes"}, "--misclassified: takes no value"},
      {{"show", "--model", m, "extra"}, "unexpected argument 'extra'"},
      {{"show", "--model", m, "--device", "tpu"}, "--device"},
      {{"show", "--model", m}, m},
      {{"eval", "--model", m, "--confusion-png"}, "--confusion-png: missing value"},
  };
  for (const auto& c : cases) expect_one_line_error(c.first, c.second);
  ProcessResult h = run_convnet({"show", "--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("usage: convnet show"), std::string::npos) << h.out;
  EXPECT_NE(h.out.find("PREDICTED/TRUE"), std::string::npos) << h.out;
}

}  // namespace
}  // namespace convnet::test
