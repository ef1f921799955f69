// convnet show: a PNG grid of test digits captioned "predicted/true" by a saved model, framed green
// when right and red when wrong (render.h draws it; write_png writes it).
//
// Which digits: a seeded selection (pick_samples) from the test set, or with --misclassified from the
// test digits the model gets wrong (the whole test set is evaluated to find them). Fewer errors than
// --count shows all of them and says so; no errors at all still writes a valid image, a small one
// reading "NO ERRORS" — nothing failed, so it is not an error, and a script gets the file it expects.
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "errors.h"
#include "idx.h"
#include "image_io.h"
#include "checkpoint.h"
#include "model_io.h"
#include "output_file.h"
#include "render.h"
#include "trainer.h"

namespace convnet {

namespace {

const char* const kShowHelp =
    "usage: convnet show --model PATH [flags]\n"
    "  --model PATH        a model from 'convnet train --save', or a --checkpoint file\n"
    "  --out PATH          the PNG to write (default predictions.png)\n"
    "  --misclassified     show only test digits the model gets wrong, captioned with its confidence\n"
    "  --count N           how many digits (default 64)\n"
    "  --seed N            which digits: a seeded random selection of the test set (default 1)\n"
    "  --cols N            digits per row (default 8)\n"
    "  --scale K           upscale each 28x28 digit K times, nearest neighbour (default 3)\n"
    "  --device D          auto (default: the GPU when there is one), gpu or cpu\n"
    "  --sync-launches     GPU debugging: wait for every kernel, so a fault names its kernel (slow)\n"
    "  --data DIR          folder of the dataset's test files (default: $MNIST_DIR, then data/mnist,\n"
    "                      for mnist; /usr/share/datasets/fashion-mnist for fashion)\n"
    "  --dataset D         mnist or fashion (default: the one the model was trained on)\n"
    "Each digit is captioned PREDICTED/TRUE (\"4/9\": the model says 4, the label is 9), with\n"
    "--misclassified also the model's probability for its answer (\"4/9 87%\"); the frame is green\n"
    "when the prediction is right and red when it is wrong.\n";

constexpr int kShowBatch = 256;

// The images of `set` at `indices`, with their labels, as a set of their own.
ImageSet subset(const ImageSet& set, const std::vector<int>& indices) {
  ImageSet s;
  s.count = static_cast<int>(indices.size());
  for (int i : indices) {
    const auto first = set.images.begin() + static_cast<ptrdiff_t>(i) * kImagePixels;
    s.images.insert(s.images.end(), first, first + kImagePixels);
    s.labels.push_back(set.labels[static_cast<size_t>(i)]);
  }
  return s;
}

// Softmax probabilities (set.count, 10) of the trained model on `set`.
std::vector<float> predict_all(Backend& backend, const ImageSet& set) {
  std::vector<float> probs(static_cast<size_t>(set.count) * kNumClasses);
  if (set.count > 0) evaluate(backend, backend.add_images(set), 0, set.count, kShowBatch, probs.data());
  return probs;
}

int argmax(const float* p) {
  int best = 0;
  for (int c = 1; c < kNumClasses; ++c)
    if (p[c] > p[best]) best = c;
  return best;
}

// Grid items for samples `indices` of `set`, whose probabilities are rows `rows[k]` of probs.
std::vector<GridItem> make_items(const ImageSet& set, const std::vector<int>& indices, const std::vector<int>& rows,
                                 const std::vector<float>& probs) {
  std::vector<GridItem> items;
  for (size_t k = 0; k < indices.size(); ++k) {
    const float* p = probs.data() + static_cast<size_t>(rows[k]) * kNumClasses;
    GridItem it;
    it.pixels = set.images.data() + static_cast<size_t>(indices[k]) * kImagePixels;
    it.label = set.labels[static_cast<size_t>(indices[k])];
    it.predicted = argmax(p);
    it.prob = p[it.predicted];
    items.push_back(it);
  }
  return items;
}

}  // namespace

int cmd_show(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kShowHelp, 0;
  const ShowOptions o = parse_show_options(args, probe_cuda_device);
  refuse_same_output({{"model", o.model_path}, {"out", o.out}});  // the PNG would replace the model
  check_output_file("out", o.out);  // before the model runs
  enable_sync_launches(o.sync_launches);
  auto [model, params, trained_on] = load_model_or_checkpoint(o.model_path);
  Dataset data = load_dataset(o.data.dir(trained_on), o.data.dataset(trained_on), Splits::TestOnly);
  const std::string& out = o.out;
  const int count = o.count;
  const GridOptions& opt = o.grid;
  BackendConfig bc;
  bc.max_batch = kShowBatch;
  std::unique_ptr<Backend> backend = make_trained_backend(o.device, model, params, bc);
  const ImageSet& test = data.test;

  std::vector<int> all(static_cast<size_t>(test.count));
  for (int i = 0; i < test.count; ++i) all[static_cast<size_t>(i)] = i;
  if (!opt.show_prob) {  // only the chosen digits need the model
    const std::vector<int> picked = pick_samples(all, count, o.seed);
    const std::vector<int> rows(all.begin(), all.begin() + static_cast<ptrdiff_t>(picked.size()));  // 0, 1, ...
    std::vector<GridItem> items = make_items(test, picked, rows, predict_all(*backend, subset(test, picked)));
    int correct = 0;
    for (const GridItem& it : items) correct += it.predicted == it.label;
    write_png(out, render_prediction_grid(items, opt));
    std::printf("wrote %s: %zu digits, %d correct%s\n", out.c_str(), items.size(), correct,
                static_cast<int>(items.size()) < count ? " (all the test set has)" : "");
    return 0;
  }
  const std::vector<float> probs = predict_all(*backend, test);
  std::vector<int> wrong;
  for (int i = 0; i < test.count; ++i)
    if (argmax(probs.data() + static_cast<size_t>(i) * kNumClasses) != test.labels[static_cast<size_t>(i)])
      wrong.push_back(i);
  if (wrong.empty()) {
    write_png(out, render_message("NO ERRORS"));
    std::printf("wrote %s: no misclassified digits among %d test images, so it only says NO ERRORS\n", out.c_str(),
                test.count);
    return 0;
  }
  const std::vector<int> picked = pick_samples(wrong, count, o.seed);
  write_png(out, render_prediction_grid(make_items(test, picked, picked, probs), opt));
  if (static_cast<int>(picked.size()) < count)
    std::printf("wrote %s: all %zu misclassified digits of %d test images (fewer than --count %d)\n", out.c_str(),
                picked.size(), test.count, count);
  else
    std::printf("wrote %s: %zu misclassified digits (of %zu among %d test images)\n", out.c_str(), picked.size(),
                wrong.size(), test.count);
  return 0;
}

}  // namespace convnet
