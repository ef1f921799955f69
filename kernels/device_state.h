// Per-step scalars and metric accumulators that live in device memory (see kernels/kernels.h).
// Plain structs shared by kernels and host code; the host reads them back at epoch boundaries only.
#pragma once

#include <cstdint>

namespace convnet {

// Step state in device memory, advanced by step_advance_gpu at the end of every training step.
struct DeviceStep {
  int64_t step;    // optimiser steps taken so far (dropout uses it; Adam uses t = step + 1)
  int32_t cursor;  // position in the epoch's sample order of the next batch's first sample
  int32_t pad;
};

// Loss and accuracy accumulated over many batches in device memory, read back once per epoch.
// Updated by a single thread per batch after a fixed-order reduction: deterministic.
struct DeviceMetrics {
  double loss_sum;
  long long correct;
  long long count;
};

}  // namespace convnet
