// Max-pool 2x2, stride 2, floor (OH = H / 2, OW = W / 2), forward with argmax and gather backward.
//
// Layouts (row-major): x, dx (NC, H, W); y, dy, argmax (NC, OH, OW), NC = N * C planes.
// argmax[o] is the int32 flat index of the chosen element in the WHOLE x tensor (not in its window),
// as maxpool_forward_cpu writes it. Ties pick the first maximum in row-major window order (strict `>`),
// so a NaN in the window's first element wins and NaNs elsewhere are skipped, exactly as on the CPU.
// CPU twins: maxpool_forward_cpu, maxpool_backward_cpu (host/cpu_layers.cpp).
//
// Threading: one thread per OUTPUT element in a grid-stride loop over its flat index: y/argmax for
// forward, dx for backward. Backward is a gather: dx[i] = dy[o] when argmax[o] == i for the one window
// o that contains i, else 0, so every dx element is written (the row and column dropped by the floor
// get 0) without a zero-fill pass or atomics. 32-bit unsigned index math: the launchers check that x
// has fewer than 2^31 elements (an int32 argmax could not address more anyway).
//
// Tolerance: exact (a selection and a copy).
// Last measured time: not measured on a GPU yet.
#include <climits>
#include <stdexcept>
#include <string>

#include "cuda_compat.h"
#include "kernels.h"
#include "launch.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;

// x (NC, H, W) -> y, argmax (NC, OH, OW); one thread per y element.
__global__ void maxpool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                       int32_t* __restrict__ argmax, unsigned H, unsigned W, unsigned OH,
                                       unsigned OW, unsigned total) {
  for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < total; o += blockDim.x * gridDim.x) {
    const unsigned ow = o % OW, t = o / OW, oh = t % OH, plane = t / OH;
    const unsigned top_left = (plane * H + 2 * oh) * W + 2 * ow;
    unsigned best = top_left;
    for (unsigned di = 0; di < 2; ++di)
      for (unsigned dj = 0; dj < 2; ++dj) {
        const unsigned i = top_left + di * W + dj;
        if (x[i] > x[best]) best = i;  // strict: the first maximum wins a tie
      }
    y[o] = x[best];
    argmax[o] = static_cast<int32_t>(best);
  }
}

// dy, argmax (NC, OH, OW) -> dx (NC, H, W); one thread per dx element.
__global__ void maxpool_backward_kernel(const float* __restrict__ dy, const int32_t* __restrict__ argmax,
                                        float* __restrict__ dx, unsigned H, unsigned W, unsigned OH,
                                        unsigned OW, unsigned total) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
    const unsigned w = i % W, t = i / W, h = t % H, plane = t / H;
    float g = 0.0f;
    if (h / 2 < OH && w / 2 < OW) {  // the row/column cut off by the floor belongs to no window
      const unsigned o = (plane * OH + h / 2) * OW + w / 2;
      if (static_cast<unsigned>(argmax[o]) == i) g = dy[o];
    }
    dx[i] = g;
  }
}

// Number of x elements; throws on a negative dimension or more elements than an int32 can index.
size_t check_pool_shape(const char* who, int NC, int H, int W) {
  if (NC < 0 || H < 0 || W < 0)
    throw std::invalid_argument(std::string(who) + ": negative dimension in NC=" + std::to_string(NC) +
                                " H=" + std::to_string(H) + " W=" + std::to_string(W));
  const size_t count = size_t(NC) * size_t(H) * size_t(W);
  if (count > size_t(INT_MAX))
    throw std::length_error(std::string(who) + ": input has " + std::to_string(count) +
                            " elements; an int32 argmax indexes at most " + std::to_string(INT_MAX));
  return count;
}

}  // namespace

void maxpool_forward_gpu(const float* x, float* y, int32_t* argmax, int NC, int H, int W, cudaStream_t stream) {
  check_pool_shape("maxpool_forward_gpu", NC, H, W);
  const unsigned OH = H / 2, OW = W / 2;
  const size_t total = size_t(NC) * OH * OW;
  if (total == 0) return;  // a zero-block grid is a launch error
  launch("maxpool_forward_kernel", maxpool_forward_kernel, grid_for(total, kBlock), kBlock, 0, stream, x, y,
         argmax, H, W, OH, OW, unsigned(total));
}

void maxpool_backward_gpu(const float* dy, const int32_t* argmax, float* dx, int NC, int H, int W,
                          cudaStream_t stream) {
  const size_t total = check_pool_shape("maxpool_backward_gpu", NC, H, W);
  if (total == 0) return;
  launch("maxpool_backward_kernel", maxpool_backward_kernel, grid_for(total, kBlock), kBlock, 0, stream, dy,
         argmax, dx, H, W, unsigned(H / 2), unsigned(W / 2), unsigned(total));
}

}  // namespace convnet
