// The Keras recipe as a loop: split, shuffle, mini-batch steps, per-epoch validation, final test.
//
// Validation is the LAST val_split of the training images, taken before shuffling (Keras'
// validation_split); the rest is reshuffled every epoch from (seed, epoch) with the counter-based
// hash, so every backend sees the same batches for a given seed; the last partial batch is kept.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <vector>

#include "backend.h"
#include "idx.h"

namespace convnet {

struct TrainConfig {
  int epochs = 15;
  int batch = 128;
  double val_split = 0.1;
  uint64_t seed = 1;
  int limit_train = 0;   // 0: all training images
  bool progress = false; // live progress bar (a terminal)
  bool test = true;      // evaluate the test set at the end
};

// Which samples of the training file are trained on and which validate.
struct Split {
  int train_count = 0;  // samples [0, train_count)
  int val_first = 0;    // samples [val_first, val_first + val_count)
  int val_count = 0;
};
Split make_split(int total, double val_split, int limit_train);

// Fisher-Yates permutation of [0, n) for this (seed, epoch).
std::vector<int32_t> epoch_order(uint64_t seed, int epoch, int n);

struct EpochStats {
  int epoch = 0;      // 1-based
  int steps = 0;
  Metrics train, val;
  double seconds = 0.0;
  double images_per_second = 0.0;
};

struct TrainSummary {
  std::vector<EpochStats> epochs;
  Metrics test;
  double seconds = 0.0;  // whole run, validation and test included
};

// Evaluate samples [first, first + count) of `set` in chunks of `batch`; writes probabilities
// (count, 10) when probs is non-null.
Metrics evaluate(Backend& backend, int set, int first, int count, int batch, float* probs = nullptr);

// Train with the recipe in `config`, printing Keras-like lines to `out`. Throws NumericError when the
// loss becomes NaN or Inf.
TrainSummary train_model(Backend& backend, const Dataset& data, const TrainConfig& config, std::ostream& out);

}  // namespace convnet
