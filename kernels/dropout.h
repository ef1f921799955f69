// Inverted dropout on the GPU: launchers in plain C++ (no CUDA syntax), twins of dropout_forward_cpu
// and dropout_backward_cpu (host/cpu_layers.h) with the same arguments in the same order plus the
// stream. Pointers are device pointers, x/y and dy/dx hold n floats each and may be the same array.
// The one difference from the CPU twins: `step` is a pointer to the step counter in DEVICE memory
// (DeviceStep::step, kernels/device_state.h), read by the kernel, so a training step's launches do
// not change from step to step and can be captured once into a CUDA Graph.
// cudaStream_t comes from cuda_fwd.h (the same typedef as the CUDA runtime's), so including this
// header needs no CUDA headers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_fwd.h"

namespace convnet {

// y[i] = x[i] * (1 / (1 - rate)) where dropout_keep(seed, *step, layer, i, rate) (kernels/rng.h), else 0.
// rate must lie in [0, 1) (std::invalid_argument otherwise).
void dropout_forward_gpu(const float* x, float* y, size_t n, float rate, uint64_t seed,
                         const int64_t* step, uint32_t layer, cudaStream_t stream);
// dx[i] = dy[i] * (1 / (1 - rate)) where kept, else 0: the mask is recomputed from the same coordinates.
void dropout_backward_gpu(const float* dy, float* dx, size_t n, float rate, uint64_t seed,
                          const int64_t* step, uint32_t layer, cudaStream_t stream);

}  // namespace convnet
