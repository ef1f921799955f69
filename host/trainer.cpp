// The training loop (see trainer.h). Prints Keras-like progress; all numeric work is the backend's.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "errors.h"
#include "rng.h"

namespace convnet {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// "  37/422 [==>.........................] - ETA: 21s" redrawn in place, at most ~10 times a second.
class ProgressBar {
 public:
  ProgressBar(std::ostream& out, int total, bool enabled) : out_(out), total_(total), enabled_(enabled) {}

  void update(int done) {
    if (!enabled_) return;
    double elapsed = seconds_since(start_);
    if (done < total_ && elapsed - last_draw_ < 0.1) return;
    last_draw_ = elapsed;
    const int width = 30;
    int filled = total_ ? done * width / total_ : width;
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), '.');
    double eta = done ? elapsed / done * (total_ - done) : 0.0;
    char buf[160];
    std::snprintf(buf, sizeof buf, "\r%*d/%d [%s] - ETA: %.0fs ", digits(), done, total_, bar.c_str(), eta);
    out_ << buf << std::flush;
  }

  // Erase the bar so the epoch line replaces it.
  void finish() {
    if (enabled_) out_ << "\r" << std::string(80, ' ') << "\r";
  }

 private:
  int digits() const { return static_cast<int>(std::to_string(total_).size()); }
  std::ostream& out_;
  int total_;
  bool enabled_;
  Clock::time_point start_ = Clock::now();
  double last_draw_ = -1.0;
};

void check_finite(const Metrics& m, int epoch, const char* what) {
  if (m.count > 0 && !std::isfinite(m.loss()))
    throw NumericError(std::string(what) + " loss became " + (std::isnan(m.loss()) ? "NaN" : "Inf") +
                       " in epoch " + std::to_string(epoch) + " (try a smaller --lr)");
}

}  // namespace

Split make_split(int total, double val_split, int limit_train) {
  Split s;
  // Keras: split_at = int(round(n * (1 - validation_split))).
  int split_at = static_cast<int>(std::lround(total * (1.0 - val_split)));
  s.val_first = split_at;
  s.val_count = total - split_at;
  s.train_count = limit_train > 0 ? std::min(limit_train, split_at) : split_at;
  return s;
}

std::vector<int32_t> epoch_order(uint64_t seed, int epoch, int n) {
  std::vector<int32_t> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int i = n - 1; i > 0; --i) {
    uint64_t h = hash4(seed ^ (kStreamShuffle << 56), static_cast<uint64_t>(epoch), static_cast<uint64_t>(i), 0);
    std::swap(order[static_cast<size_t>(i)], order[h % static_cast<uint64_t>(i + 1)]);
  }
  return order;
}

Metrics evaluate(Backend& backend, int set, int first, int count, int batch, float* probs) {
  backend.take_eval_metrics();
  for (int b = 0; b < count; b += batch) {
    int n = std::min(batch, count - b);
    backend.eval_batch(set, first + b, n, probs ? probs + static_cast<size_t>(b) * kNumClasses : nullptr);
  }
  return backend.take_eval_metrics();
}

TrainSummary train_model(Backend& backend, const Dataset& data, const TrainConfig& config, std::ostream& out) {
  const Clock::time_point run_start = Clock::now();
  const Split split = make_split(data.train.count, config.val_split, config.limit_train);
  if (split.train_count <= 0) throw UsageError("--val-split: leaves no training images");
  const int train_set = backend.add_images(data.train);
  const int test_set = config.test ? backend.add_images(data.test) : -1;
  const int steps = (split.train_count + config.batch - 1) / config.batch;
  out << "Training on " << split.train_count << " images, validating on " << split.val_count << ", "
      << steps << " steps of " << config.batch << " per epoch\n";

  TrainSummary summary;
  for (int epoch = 1; epoch <= config.epochs; ++epoch) {
    out << "Epoch " << epoch << "/" << config.epochs << "\n" << std::flush;
    const Clock::time_point t0 = Clock::now();
    backend.set_order(epoch_order(config.seed, epoch, split.train_count));
    backend.take_train_metrics();
    ProgressBar bar(out, steps, config.progress);
    for (int s = 0; s < steps; ++s) {
      int begin = s * config.batch;
      backend.train_step(train_set, begin, std::min(config.batch, split.train_count - begin));
      bar.update(s + 1);
    }
    EpochStats e;
    e.epoch = epoch;
    e.steps = steps;
    e.train = backend.take_train_metrics();
    const double train_seconds = seconds_since(t0);
    check_finite(e.train, epoch, "training");
    if (split.val_count > 0) e.val = evaluate(backend, train_set, split.val_first, split.val_count, config.batch);
    e.seconds = seconds_since(t0);
    e.images_per_second = split.train_count / std::max(train_seconds, 1e-9);
    bar.finish();
    std::string line = std::to_string(steps) + "/" + std::to_string(steps) + " - " + fmt("%.1fs", e.seconds) +
                       " - loss: " + fmt("%.4f", e.train.loss()) + " - accuracy: " + fmt("%.4f", e.train.accuracy());
    if (split.val_count > 0)
      line += " - val_loss: " + fmt("%.4f", e.val.loss()) + " - val_accuracy: " + fmt("%.4f", e.val.accuracy());
    line += " - " + fmt("%.0f", e.images_per_second) + " img/s";
    out << line << "\n" << std::flush;
    summary.epochs.push_back(e);
  }
  if (config.test) {
    summary.test = evaluate(backend, test_set, 0, data.test.count, config.batch);
    out << "Test loss: " << fmt("%.4f", summary.test.loss()) << "\n"
        << "Test accuracy: " << fmt("%.4f", summary.test.accuracy()) << "\n";
  }
  summary.seconds = seconds_since(run_start);
  return summary;
}

}  // namespace convnet
