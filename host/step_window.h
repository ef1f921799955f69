// A short run of training steps to measure, not to train a model: `convnet train --timing` (a CUDA
// event pair around every launch) and `--profile-steps` (the window between cudaProfilerStart and
// cudaProfilerStop that Nsight captures).
//
// `warmup` steps first (cuBLAS heuristics, first-touch page faults, lazy module loading and the
// KernelTimer's event pool all settle there), then `steps` measured ones. Steps are full batches of
// the recipe's training split in the recipe's order (TrainConfig: batch, val_split, limit_train, seed),
// epoch after epoch; an epoch's last partial batch is skipped, so every step launches the same shapes.
// No validation, test, log or checkpoint. The device is idle when the hooks `start` and `stop` run
// (the metrics read-back synchronises); a new epoch's order is uploaded before `before_step`, so it
// never falls inside a measured step.
#pragma once

#include <functional>

#include "backend.h"
#include "idx.h"
#include "trainer.h"

namespace convnet {

struct StepWindowHooks {
  std::function<void()> start;        // after the warm-up steps
  std::function<void()> before_step;  // around each measured step
  std::function<void()> after_step;
  std::function<void()> stop;         // after the last measured step
};

// Runs the window on the training images `train` (added to the backend here) and returns the training
// metrics of the measured steps. Throws UsageError when the split holds no full batch, NumericError
// (naming the step, layer and tensor) when a loss or gradient went NaN/Inf.
Metrics run_step_window(Backend& backend, const ImageSet& train, const TrainConfig& config, int warmup, int steps,
                        const StepWindowHooks& hooks = {});

}  // namespace convnet
