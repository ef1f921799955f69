// The --timing / --profile-steps window (see step_window.h).
#include "step_window.h"

#include <string>

#include "errors.h"

namespace convnet {
namespace {

void call(const std::function<void()>& hook) {
  if (hook) hook();
}

// Full batches of the training split, epoch after epoch, in the recipe's order.
class BatchCycle {
 public:
  BatchCycle(Backend& backend, const ImageSet& train, const TrainConfig& config)
      : backend_(backend), config_(config), split_(make_split(train.count, config.val_split, config.limit_train)) {
    full_batches_ = split_.train_count / config.batch;
    if (full_batches_ == 0)
      throw UsageError("--batch-size: " + std::to_string(config.batch) + " is more than the " +
                       std::to_string(split_.train_count) +
                       " training images; timing and profiling run full batches only");
    set_ = backend.add_images(train);
    position_ = full_batches_;  // the first step starts epoch 1
  }
  int full_batches() const { return full_batches_; }
  // Uploads the next epoch's order when this one's full batches are used up.
  void prepare() {
    if (position_ < full_batches_) return;
    backend_.set_order(epoch_order(config_.seed, ++epoch_, split_.train_count));
    position_ = 0;
  }
  void step() {
    backend_.train_step(set_, position_ * config_.batch, config_.batch);
    ++position_;
  }

 private:
  Backend& backend_;
  const TrainConfig& config_;
  Split split_;
  int full_batches_ = 0, set_ = 0, epoch_ = 0, position_ = 0;
};

}  // namespace

Metrics run_step_window(Backend& backend, const ImageSet& train, const TrainConfig& config, int warmup, int steps,
                        const StepWindowHooks& hooks) {
  CONVNET_CHECK(warmup >= 0 && steps > 0, "a step window needs warmup >= 0 and steps > 0");
  BatchCycle batches(backend, train, config);
  for (int s = 0; s < warmup; ++s) {
    batches.prepare();
    batches.step();
  }
  backend.take_train_metrics();  // waits for the warm-up steps
  call(hooks.start);
  for (int s = 0; s < steps; ++s) {
    batches.prepare();
    call(hooks.before_step);
    batches.step();
    call(hooks.after_step);
  }
  const Metrics measured = backend.take_train_metrics();  // waits for the measured steps
  call(hooks.stop);
  if (std::optional<NumericFault> fault = backend.numeric_fault())
    throw NumericError(divergence_message(*fault, batches.full_batches()) + "; try a smaller --lr");
  return measured;
}

}  // namespace convnet
