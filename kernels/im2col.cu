// im2col and its gather-form adjoint col2im: the data movement around the convolution GEMM.
//
// Layouts (row-major), valid padding, stride 1, OH = H - K + 1, OW = W - K + 1, P = OH * OW:
//   x, dx  (N, C, H, W)
//   col    (C*K*K, N*P)   row r = (c*K + ki)*K + kj, column j = n*P + oh*OW + ow
//   im2col:  col[r, j] = x[n, c, oh + ki, ow + kj]
//   col2im:  dx[n, c, h, w] = sum over (ki, kj) with (h - ki, w - kj) inside the output of
//            dcol[(c, ki, kj), (n, h - ki, w - kj)]   -- every dx element written, none accumulated
// CPU twins: im2col_cpu, col2im_cpu (host/cpu_layers.cpp).
//
// Threading: one thread per OUTPUT element (col for im2col, dx for col2im) in a grid-stride loop
// over its flat row-major index, so consecutive threads write consecutive addresses and read
// consecutive addresses of one input row (ow, resp. w, runs fastest on both sides). col2im is a
// gather: each dx element reads its own <= K*K terms, so there are no atomics and the result is the
// same on every run. Index math is 32-bit unsigned: the launchers check that every tensor has fewer
// than 2^31 elements (the int32 limit the rest of the interface has too), so i + stride cannot wrap.
//
// Tolerance: exact. im2col copies. col2im adds its terms in the CPU's order (ki, then kj) in double
// and rounds to float once, as col2im_cpu does, so the results are bit-identical.
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

// x (N, C, H, W) -> col (C*K*K, N*P); one thread per col element.
__global__ void im2col_kernel(const float* __restrict__ x, float* __restrict__ col, unsigned C, unsigned H,
                              unsigned W, unsigned K, unsigned OW, unsigned P, unsigned NP, unsigned total) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
    const unsigned r = i / NP, j = i - r * NP;  // col row (c, ki, kj) and column (n, oh, ow)
    const unsigned kj = r % K, ki = (r / K) % K, c = r / (K * K);
    const unsigned n = j / P, p = j - n * P, oh = p / OW, ow = p - oh * OW;
    col[i] = x[((n * C + c) * H + oh + ki) * W + ow + kj];
  }
}

// dcol (C*K*K, N*P) -> dx (N, C, H, W); one thread per dx element, gathering its <= K*K terms.
__global__ void col2im_kernel(const float* __restrict__ dcol, float* __restrict__ dx, unsigned C, unsigned H,
                              unsigned W, unsigned K, unsigned OH, unsigned OW, unsigned NP, unsigned total) {
  const unsigned P = OH * OW;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
    const unsigned w = i % W, h = (i / W) % H, nc = i / (W * H), c = nc % C, n = nc / C;
    // Same order and precision as col2im_cpu (ki outer, kj inner, double): bit-identical sums.
    double sum = 0.0;
    for (unsigned ki = 0; ki < K; ++ki)
      for (unsigned kj = 0; kj < K; ++kj) {
        if (h < ki || w < kj || h - ki >= OH || w - kj >= OW) continue;  // (oh, ow) outside the output
        sum += dcol[((c * K + ki) * K + kj) * NP + n * P + (h - ki) * OW + (w - kj)];
      }
    dx[i] = static_cast<float>(sum);
  }
}

// Validates the shape as col2im_cpu/im2col_cpu do, plus the 32-bit index limit of the kernels.
// Returns the number of col elements.
size_t check_conv_shape(const char* who, int N, int C, int H, int W, int K) {
  if (N < 0 || C < 0 || K < 1 || H < K || W < K)
    throw std::invalid_argument(std::string(who) + ": conv shape N=" + std::to_string(N) + " C=" +
                                std::to_string(C) + " H=" + std::to_string(H) + " W=" + std::to_string(W) +
                                " K=" + std::to_string(K) + " (need N, C >= 0, K >= 1, H >= K, W >= K)");
  const size_t x_count = size_t(N) * C * H * W;
  const size_t col_count = size_t(C) * K * K * N * (H - K + 1) * (W - K + 1);
  if (x_count > size_t(INT_MAX) || col_count > size_t(INT_MAX))
    throw std::length_error(std::string(who) + ": x has " + std::to_string(x_count) + " and col " +
                            std::to_string(col_count) + " elements; the kernel indexes with 32 bits (at most " +
                            std::to_string(INT_MAX) + ")");
  return col_count;
}

}  // namespace

void im2col_gpu(const float* x, float* col, int N, int C, int H, int W, int K, cudaStream_t stream) {
  const size_t total = check_conv_shape("im2col_gpu", N, C, H, W, K);
  if (total == 0) return;  // a zero-block grid is a launch error
  const unsigned OH = H - K + 1, OW = W - K + 1, P = OH * OW;
  launch("im2col_kernel", im2col_kernel, grid_for(total, kBlock), kBlock, 0, stream, x, col, C, H, W, K, OW, P,
         unsigned(N) * P, unsigned(total));
}

void col2im_gpu(const float* dcol, float* dx, int N, int C, int H, int W, int K, cudaStream_t stream) {
  check_conv_shape("col2im_gpu", N, C, H, W, K);
  const size_t total = size_t(N) * C * H * W;
  if (total == 0) return;
  const unsigned OH = H - K + 1, OW = W - K + 1;
  launch("col2im_kernel", col2im_kernel, grid_for(total, kBlock), kBlock, 0, stream, dcol, dx, C, H, W, K, OH, OW,
         unsigned(N) * OH * OW, unsigned(total));
}

}  // namespace convnet
