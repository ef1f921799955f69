// The training loop (see trainer.h). Prints Keras-like progress and the JSON log; all numeric work
// is the backend's. Stopping and checkpointing are the caller's callbacks (TrainConfig), so this file
// knows nothing of signals or files beyond the log.
#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include "errors.h"
#include "rng.h"
#include "train_log.h"

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
  // Counts steps up to total, starting at first (a resumed epoch); the ETA is from this run's pace.
  ProgressBar(std::ostream& out, int total, int first, bool enabled)
      : out_(out), total_(total), first_(first), enabled_(enabled) {}

  void update(int done) {
    if (!enabled_) return;
    double elapsed = seconds_since(start_);
    if (done < total_ && elapsed - last_draw_ < 0.1) return;
    last_draw_ = elapsed;
    const int width = 30;
    int filled = total_ ? done * width / total_ : width;
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), '.');
    double eta = done > first_ ? elapsed / (done - first_) * (total_ - done) : 0.0;
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
  int total_, first_;
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
  // Keras (3, and 2 before it): split_at = int(math.floor(n * (1.0 - validation_split))), the same
  // double arithmetic, so the same count.
  int split_at = static_cast<int>(std::floor(total * (1.0 - val_split)));
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

namespace {

// "1 image", "2 images": the count and the noun, plural unless the count is 1.
std::string counted(int64_t n, const std::string& noun) { return std::to_string(n) + " " + noun + (n == 1 ? "" : "s"); }

// What one train_model call works with, so the per-epoch pieces below stay short.
struct Run {
  Backend& backend;
  const TrainConfig& config;
  std::ostream& out;
  Split split;
  int train_set = 0, test_set = -1, steps = 0;
  JsonLinesLog log;
  bool stop() const { return config.stop_requested && config.stop_requested(); }
};

// Throws NumericError naming the step, layer and tensor when the backend recorded a NaN/Inf loss or
// gradient. Reading the record waits for the device: only where the run synchronises anyway.
void throw_if_diverged(Run& r, const std::optional<NumericFault>& fault) {
  if (fault) throw NumericError(divergence_message(*fault, r.steps) + "; try a smaller --lr");
}
void throw_if_diverged(Run& r) { throw_if_diverged(r, r.backend.numeric_fault()); }

// Steps [first, steps) of `epoch`. Returns false when asked to stop before the epoch's last step,
// with where it stopped (and the epoch's partial metrics) in *stopped.
bool train_steps(Run& r, int epoch, int first, TrainState* stopped) {
  ProgressBar bar(r.out, r.steps, first, r.config.progress);
  for (int s = first; s < r.steps; ++s) {
    const int begin = s * r.config.batch;
    r.backend.train_step(r.train_set, begin, std::min(r.config.batch, r.split.train_count - begin));
    bar.update(s + 1);
    if (s + 1 < r.steps && r.stop()) {
      bar.finish();
      *stopped = TrainState{epoch - 1, s + 1, r.backend.step(), r.backend.take_train_metrics()};
      return false;
    }
  }
  bar.finish();
  return true;
}

void log_epoch(Run& r, const EpochStats& e) {
  EpochLogEntry entry;
  entry.epoch = e.epoch;
  entry.step = e.global_step;
  entry.train = e.train;
  entry.val = e.val;
  entry.seconds = e.seconds;
  entry.images_per_second = e.images_per_second;
  entry.learning_rate = r.config.learning_rate;
  entry.device = r.config.device;
  r.log.append(epoch_log_line(entry));
}

// The end of an epoch whose steps from `first` on ran since t0: metrics, validation, the Keras line
// and the log line. A diverged epoch (a NaN/Inf loss or gradient) is logged, its loss as null when it
// is not finite, then throws NumericError.
EpochStats finish_epoch(Run& r, int epoch, int first, Clock::time_point t0) {
  EpochStats e;
  e.epoch = epoch;
  e.steps = r.steps;
  e.global_step = r.backend.step();
  e.train = r.backend.take_train_metrics();
  const int images = r.split.train_count - first * r.config.batch;
  e.images_per_second = images / std::max(seconds_since(t0), 1e-9);
  const std::optional<NumericFault> fault = r.backend.numeric_fault();
  if (fault || (e.train.count > 0 && !std::isfinite(e.train.loss()))) {
    e.seconds = seconds_since(t0);
    log_epoch(r, e);
    throw_if_diverged(r, fault);
    check_finite(e.train, epoch, "training");
  }
  if (r.split.val_count > 0)
    e.val = evaluate(r.backend, r.train_set, r.split.val_first, r.split.val_count, r.config.batch);
  e.seconds = seconds_since(t0);
  std::string line = std::to_string(r.steps) + "/" + std::to_string(r.steps) + " - " + fmt("%.1fs", e.seconds) +
                     " - loss: " + fmt("%.4f", e.train.loss()) + " - accuracy: " + fmt("%.4f", e.train.accuracy());
  if (r.split.val_count > 0)
    line += " - val_loss: " + fmt("%.4f", e.val.loss()) + " - val_accuracy: " + fmt("%.4f", e.val.accuracy());
  line += " - " + fmt("%.0f", e.images_per_second) + " img/s";
  r.out << line << "\n" << std::flush;
  log_epoch(r, e);
  return e;
}

}  // namespace

TrainSummary train_model(Backend& backend, const Dataset& data, const TrainConfig& config, std::ostream& out,
                         const TrainState& start) {
  const Clock::time_point run_start = Clock::now();
  const Split split = make_split(data.train.count, config.val_split, config.limit_train);
  if (split.train_count <= 0) throw UsageError("--val-split: leaves no training images");
  Run r{backend, config, out, split, 0, -1, (split.train_count + config.batch - 1) / config.batch,
        JsonLinesLog(config.log_path)};
  CONVNET_CHECK(start.epoch_step >= 0 && start.epoch_step < r.steps, "resume position outside the epoch");
  CONVNET_CHECK(start.global_step == backend.step(), "the backend's step is not the resume state's");
  r.train_set = backend.add_images(data.train);
  if (config.test) r.test_set = backend.add_images(data.test);
  out << "Training on " << counted(split.train_count, "image") << ", validating on " << split.val_count << ", "
      << counted(r.steps, "step") << " of " << config.batch << " per epoch\n";
  if (start.epochs_done > 0 || start.epoch_step > 0)
    out << "Resuming after " << counted(start.epochs_done, "epoch") << " and " << counted(start.epoch_step, "step")
        << " (global step " << start.global_step << ")\n";
  if (start.epochs_done >= config.epochs)  // a finished run, or one stopped after its last step
    out << "Nothing left to train: epoch " << start.epochs_done << " of " << config.epochs
        << " is done (raise --epochs to train longer)\n";

  TrainSummary summary;
  summary.steps_per_epoch = r.steps;
  for (int epoch = start.epochs_done + 1; epoch <= config.epochs; ++epoch) {
    const bool resumed = epoch == start.epochs_done + 1 && start.epoch_step > 0;
    const int first = resumed ? start.epoch_step : 0;
    out << "Epoch " << epoch << "/" << config.epochs << "\n" << std::flush;
    const Clock::time_point t0 = Clock::now();
    backend.set_order(epoch_order(config.seed, epoch, split.train_count), first * config.batch);
    backend.set_train_metrics(resumed ? start.partial : Metrics{});
    TrainState state;
    const bool finished = train_steps(r, epoch, first, &state);
    if (finished) {
      summary.epochs.push_back(finish_epoch(r, epoch, first, t0));
      state = TrainState{epoch, 0, backend.step(), Metrics{}};
    }
    const bool stop = !finished || r.stop();
    const int every = config.checkpoint_every;
    const bool due = every > 0 && (epoch % every == 0 || epoch == config.epochs);
    if (stop) throw_if_diverged(r);  // (a finished epoch was checked by finish_epoch)
    if (config.checkpoint && (stop || due)) config.checkpoint(state);
    if (stop) {
      summary.interrupted = true;
      summary.stopped = state;
      summary.seconds = seconds_since(run_start);
      return summary;
    }
  }
  if (config.test) {
    summary.test = evaluate(backend, r.test_set, 0, data.test.count, config.batch);
    out << "Test loss: " << fmt("%.4f", summary.test.loss()) << "\n"
        << "Test accuracy: " << fmt("%.4f", summary.test.accuracy()) << "\n";
  }
  summary.seconds = seconds_since(run_start);
  return summary;
}

}  // namespace convnet
