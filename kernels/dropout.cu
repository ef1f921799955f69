// Inverted dropout (Keras semantics), forward and backward.
//
// Layout: x, y, dy, dx are flat arrays of n floats (any tensor shape; element i of the flat array).
// CPU twins: dropout_forward_cpu / dropout_backward_cpu (host/cpu_layers.cpp): y = x * scale where
// kept, else 0, with scale = 1 / (1 - rate) computed in float exactly as the CPU does, and the keep
// decision dropout_keep(seed, step, layer, i, rate) from kernels/rng.h, a pure hash of the element's
// coordinates, so no mask is stored and forward, backward and the CPU agree bit for bit.
// Threading: one thread per element in a grid-stride loop (grid capped by grid_for); no shared memory,
// no synchronisation, 64-bit indices. In place (y == x) is allowed: each thread reads and writes only
// its own element, so the pointers are not __restrict__.
// Tolerance class: exact (a mask and one float multiply).
// Last measured time: not measured on a GPU yet.
#include "dropout.h"

#include <stdexcept>
#include <string>

#include "cuda_compat.h"
#include "launch.h"
#include "rng.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;

// Backward is the same map applied to dy: d(x * scale * mask)/dx = scale * mask.
__global__ void dropout_kernel(const float* in, float* out, size_t n, float rate, float scale, uint64_t seed,
                               const int64_t* step_ptr, uint32_t layer) {
  const uint64_t step = static_cast<uint64_t>(*step_ptr);
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = dropout_keep(seed, step, layer, i, rate) ? in[i] * scale : 0.0f;
}

void dropout_gpu(const char* who, const float* in, float* out, size_t n, float rate, uint64_t seed, const int64_t* step,
                 uint32_t layer, cudaStream_t stream) {
  if (!(rate >= 0.0f && rate < 1.0f))
    throw std::invalid_argument(std::string(who) + ": dropout rate " + std::to_string(rate) + " outside [0, 1)");
  if (n == 0) return;  // a zero-block grid is a launch error
  const float scale = 1.0f / (1.0f - rate);
  launch("dropout_kernel", dropout_kernel, grid_for(n, kBlock), kBlock, 0, stream, in, out, n, rate, scale, seed,
         step, layer);
}

}  // namespace

void dropout_forward_gpu(const float* x, float* y, size_t n, float rate, uint64_t seed, const int64_t* step,
                         uint32_t layer, cudaStream_t stream) {
  dropout_gpu("dropout_forward_gpu", x, y, n, rate, seed, step, layer, stream);
}

void dropout_backward_gpu(const float* dy, float* dx, size_t n, float rate, uint64_t seed, const int64_t* step,
                          uint32_t layer, cudaStream_t stream) {
  dropout_gpu("dropout_backward_gpu", dy, dx, n, rate, seed, step, layer, stream);
}

}  // namespace convnet
