// A diverged training run in the user's terms: which step, which layer, which tensor.
//
// The backends record the first non-finite loss or gradient as a DeviceFault (kernels/device_state.h:
// a step and a flat index into the gradient arena, written on the device by finite_check_gpu or on
// the host by finite_check_cpu); numeric_fault_from maps that index to the parameter tensor and layer
// through the model's layout table (Model::params offsets), and divergence_message makes the one line
// `convnet train` ends with (exit code 3):
//   training diverged at step 1234 (epoch 3, step 390 of 422): gradient of conv2d_1.weight (layer
//   conv2d_1, Conv2D) has NaN (first at element 517 of 18432)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "device_state.h"
#include "model.h"

namespace convnet {

struct NumericFault {
  int64_t step = 0;    // the faulty step, counted from 1 (Backend::step() right after it)
  std::string loss;    // "NaN" or "Inf" when the training loss was not finite after it, else ""
  std::string value;   // "NaN" or "Inf": the first non-finite gradient; "" when every gradient was finite
  std::string tensor;  // its parameter tensor, e.g. "conv2d_1.weight"
  std::string layer;   // its layer and the layer's type, e.g. "conv2d_1, Conv2D"
  size_t element = 0;  // flat index inside the tensor
  size_t count = 0;    // values in the tensor
};

// What `record` says in the model's terms; nullopt when it holds no fault.
std::optional<NumericFault> numeric_fault_from(const Model& model, const DeviceFault& record);

// "training diverged at step S (epoch E, step k of N): ..." for a run of steps_per_epoch steps an
// epoch (global steps count on across epochs and resumes, so S gives the epoch).
std::string divergence_message(const NumericFault& fault, int steps_per_epoch);

}  // namespace convnet
