// The Keras recipe as a loop: split, shuffle, mini-batch steps, per-epoch validation, final test.
//
// Validation is the LAST val_split of the training images, taken before shuffling (Keras'
// validation_split); the rest is reshuffled every epoch from (seed, epoch) with the counter-based
// hash, so every backend sees the same batches for a given seed; the last partial batch is kept.
//
// Resuming: the RNG is counter-based (shuffle = hash(seed, epoch), dropout = hash(seed, step, layer,
// index)), so (seed, epoch, global step) IS the random state and the position inside an epoch's
// order is epoch_step * batch. A backend given a checkpoint's arenas and step (checkpoint.h) and
// trained from its TrainState therefore ends bit-identical to the uninterrupted run. A run resumed
// in the middle of an epoch restores that epoch's partial training metrics, so the epoch line
// reports the same loss and accuracy; only its seconds and img/s cover just the resumed part.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "backend.h"
#include "idx.h"

namespace convnet {

// Where a run stands, besides the backend's arenas: what a checkpoint records.
struct TrainState {
  int epochs_done = 0;      // completed epochs (validation and log line included)
  int epoch_step = 0;       // steps done of epoch epochs_done + 1; 0 at an epoch boundary
  int64_t global_step = 0;  // optimiser steps so far (Backend::step)
  Metrics partial;          // training metrics of those epoch_step steps
};

struct TrainConfig {
  int epochs = 15;
  int batch = 128;
  double val_split = 0.1;
  uint64_t seed = 1;
  int limit_train = 0;   // 0: all training images
  bool progress = false; // live progress bar (a terminal)
  bool test = true;      // evaluate the test set at the end

  std::string log_path;          // append one JSON line per epoch here (train_log.h); "" for none
  double learning_rate = 0.0;    // for the log lines only
  std::string device;            // for the log lines only

  // Called with the state at every epoch boundary that is a multiple of checkpoint_every (0: none),
  // after the last epoch when checkpoint_every > 0, and when the run stops early. May be empty.
  std::function<void(const TrainState&)> checkpoint;
  int checkpoint_every = 0;
  // Polled after every step (a signal flag, interrupt.h). When it says stop, the run finishes the
  // step (or, after an epoch's last step, the epoch's validation), checkpoints and returns.
  std::function<bool()> stop_requested;
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
  int64_t global_step = 0;  // at the end of the epoch
  Metrics train, val;
  double seconds = 0.0;
  double images_per_second = 0.0;
};

struct TrainSummary {
  std::vector<EpochStats> epochs;  // those trained by this call
  Metrics test;
  double seconds = 0.0;  // whole run, validation and test included
  int steps_per_epoch = 0;
  bool interrupted = false;  // stop_requested said stop: no test, `stopped` was checkpointed
  TrainState stopped;
};

// Evaluate samples [first, first + count) of `set` in chunks of `batch`; writes probabilities
// (count, 10) when probs is non-null.
Metrics evaluate(Backend& backend, int set, int first, int count, int batch, float* probs = nullptr);

// Train with the recipe in `config`, printing Keras-like lines to `out`, from `start` (a fresh run by
// default; else the backend already holds the checkpoint's arenas and step). Throws NumericError,
// naming the first faulty step, layer and tensor (Backend::numeric_fault), when the loss or a gradient
// becomes NaN or Inf: at the end of that epoch (after logging it, a non-finite loss as null), or before
// an interrupted run's checkpoint. No checkpoint callback is made after the fault.
TrainSummary train_model(Backend& backend, const Dataset& data, const TrainConfig& config, std::ostream& out,
                         const TrainState& start = TrainState{});

}  // namespace convnet
