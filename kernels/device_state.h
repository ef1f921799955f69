// Per-step scalars and metric accumulators that live in device memory (see kernels/kernels.h).
// Plain structs shared by kernels and host code; the host reads them back at epoch boundaries (and
// before checkpoints) only.
#pragma once

#include <cstdint>

namespace convnet {

// Step state in device memory, advanced by step_advance_gpu at the end of every training step.
struct DeviceStep {
  int64_t step;    // optimiser steps taken so far (dropout uses it; Adam uses t = step + 1)
  int32_t cursor;  // position in the epoch's sample order of the next batch's first sample
  int32_t pad;
};

// The first non-finite value of a training run: written in device memory by finite_check_gpu (CPU
// twin finite_check_cpu, host/cpu_layers.h) once per step, read by the host only where it synchronises
// anyway (epoch end, before a checkpoint), so a step never waits for it. Once a step has recorded a
// fault, the checks of later steps leave the record alone: it names the FIRST step that went wrong.
// Within that step the smallest flat index wins (atomicMin), so the record is deterministic.
struct DeviceFault {
  long long step;           // DeviceStep::step of the faulty step (steps done before it); kNoFaultStep: none
  unsigned long long grad;  // (i << 1) | (1 if Inf, 0 if NaN) for the smallest flat index i of a non-finite
                            // gradient in that step; kNoFaultGrad when every gradient was finite
  int loss;                 // the training-loss accumulator (DeviceMetrics::loss_sum) after that step:
                            // kValueFinite, kValueNaN or kValueInf
  int pad;
};
constexpr long long kNoFaultStep = 0x7fffffffffffffffLL;
constexpr unsigned long long kNoFaultGrad = ~0ULL;
constexpr int kValueFinite = 0, kValueNaN = 1, kValueInf = 2;
// The record of a run that has not faulted.
inline DeviceFault no_device_fault() { return DeviceFault{kNoFaultStep, kNoFaultGrad, kValueFinite, 0}; }

// Loss and accuracy accumulated over many batches in device memory, read back once per epoch.
// Updated by a single thread per batch after a fixed-order reduction: deterministic.
struct DeviceMetrics {
  double loss_sum;
  long long correct;
  long long count;
};

}  // namespace convnet
