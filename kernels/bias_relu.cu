// Bias, ReLU and bias-gradient kernels of the convolution and dense layers.
//
// Layouts (row-major), P = OH * OW:
//   conv  pre, dpre (OC, N*P)  "CNHW", what the one-GEMM-per-batch convolution writes
//         y, dy     (N, OC, P)  "NCHW"
//         bias      (OC)
//   dense y, dy     (N, O), b, db (O)
//   relu  x, y, dy, dx: n values, any layout
// CPU twins (host/cpu_layers.cpp): bias_relu_forward_cpu, bias_relu_backward_cpu, bias_backward_cpu,
// relu_forward_cpu, relu_backward_cpu, and the bias parts of dense_forward_cpu / dense_backward_cpu.
//
// Threading
//   bias_relu_forward/backward, dense_bias_forward, relu_*: one thread per OUTPUT element in a
//     grid-stride loop over its flat index. bias_relu is a transpose between (OC, N, P) and (N, OC, P);
//     threads follow the output's order, so writes coalesce and reads come in runs of P.
//   bias_backward: one 256-thread block per row of d (grid-stride over rows). Each thread sums a fixed
//     strided slice of the row in double, then a fixed shared-memory tree (256 -> 32) and a warp
//     shuffle stage (32 -> 1). The order depends only on the shape: deterministic, no atomics.
//   dense_bias_backward: one thread per column, summing the N rows top to bottom in double, the
//     CPU's order (N is the batch: short); reads coalesce across the threads of a row.
// ReLU is written `v < 0 ? 0 : v` as on the CPU, so a NaN stays NaN (the trainer's NaN check sees it).
// Index math is 32-bit unsigned except for relu_* (size_t n): the launchers check counts < 2^31.
//
// Tolerance: exact for everything but bias_backward (one float add and/or a compare per element;
// dense_bias_backward adds in the CPU's order and precision). bias_backward: reduction class (1e-4),
// its double partial sums are added in a tree order instead of the CPU's left-to-right order.
// Last measured time: not measured on a GPU yet.
#include <climits>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "cuda_compat.h"
#include "kernels.h"
#include "launch.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;
constexpr unsigned kReduceBlock = 256;  // bias_backward: a power of two >= 64

__device__ __forceinline__ float relu(float v) { return v < 0.0f ? 0.0f : v; }

// pre (OC, N*P), bias (OC) -> y (N, OC, P); one thread per y element.
__global__ void bias_relu_forward_kernel(const float* __restrict__ pre, const float* __restrict__ bias,
                                         float* __restrict__ y, unsigned OC, unsigned P, unsigned NP,
                                         unsigned total) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
    const unsigned p = i % P, t = i / P, oc = t % OC, n = t / OC;  // y index (n, oc, p)
    y[i] = relu(pre[oc * NP + n * P + p] + bias[oc]);
  }
}

// y, dy (N, OC, P) -> dpre (OC, N*P); one thread per dpre element.
__global__ void bias_relu_backward_kernel(const float* __restrict__ y, const float* __restrict__ dy,
                                          float* __restrict__ dpre, unsigned OC, unsigned P, unsigned NP,
                                          unsigned total) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
    const unsigned oc = i / NP, j = i - oc * NP, n = j / P, p = j - n * P;  // dpre index (oc, n, p)
    const unsigned k = (n * OC + oc) * P + p;
    dpre[i] = y[k] > 0.0f ? dy[k] : 0.0f;
  }
}

// d (R, M) -> dbias (R); one kReduceBlock-thread block per row.
__global__ void __launch_bounds__(kReduceBlock)
    bias_backward_kernel(const float* __restrict__ d, float* __restrict__ dbias, unsigned R, unsigned M) {
  __shared__ double partial[kReduceBlock];
  const unsigned t = threadIdx.x;
  // Every thread runs every row iteration, so the barriers below are reached by the whole block.
  for (unsigned r = blockIdx.x; r < R; r += gridDim.x) {
    const float* row = d + size_t(r) * M;
    double sum = 0.0;
    for (unsigned m = t; m < M; m += kReduceBlock) sum += row[m];
    partial[t] = sum;
    __syncthreads();
    for (unsigned s = kReduceBlock / 2; s >= 32; s /= 2) {
      if (t < s) partial[t] += partial[t + s];
      __syncthreads();
    }
    // Warp 0 finishes from partial[0..31]. No barrier is needed before the next row overwrites
    // partial[]: warp 0 reads only the slots it writes itself, and the last reads of the other slots
    // (the s = 32 step) happened before the last barrier.
    if (t < 32) {
      sum = partial[t];
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
      if (t == 0) dbias[r] = static_cast<float>(sum);
    }
  }
}

// y (N, O) += b (O); one thread per y element.
__global__ void dense_bias_forward_kernel(float* __restrict__ y, const float* __restrict__ b, unsigned O,
                                          unsigned total) {
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x)
    y[i] += b[i % O];
}

// dy (N, O) -> db (O); one thread per column.
__global__ void dense_bias_backward_kernel(const float* __restrict__ dy, float* __restrict__ db, unsigned N,
                                           unsigned O) {
  for (unsigned o = blockIdx.x * blockDim.x + threadIdx.x; o < O; o += blockDim.x * gridDim.x) {
    double sum = 0.0;  // rows in order, in double: dense_backward_cpu's arithmetic exactly
    for (unsigned n = 0; n < N; ++n) sum += dy[size_t(n) * O + o];
    db[o] = static_cast<float>(sum);
  }
}

// x (n) in place.
__global__ void relu_forward_kernel(float* __restrict__ x, size_t n) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(blockDim.x) * gridDim.x)
    x[i] = relu(x[i]);
}

// y, dy -> dx (n). dx may alias dy (no __restrict__ on them): each thread reads dy[i] before it
// writes dx[i].
__global__ void relu_backward_kernel(const float* __restrict__ y, const float* dy, float* dx, size_t n) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += size_t(blockDim.x) * gridDim.x)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// Product of the dimensions; throws when one is negative or the product needs more than 31 bits
// (the kernels index with 32-bit unsigned arithmetic and add a stride below 2^31).
size_t count32(const char* who, std::initializer_list<int> dims) {
  std::string shape;
  bool empty = false;
  for (int d : dims) {
    shape += (shape.empty() ? "" : " x ") + std::to_string(d);
    empty = empty || d == 0;
  }
  for (int d : dims)
    if (d < 0) throw std::invalid_argument(std::string(who) + ": negative dimension in shape " + shape);
  if (empty) return 0;
  size_t count = 1;
  for (int d : dims) {
    count *= size_t(d);  // <= INT_MAX * INT_MAX after each step: no wrap in 64 bits
    if (count > size_t(INT_MAX))
      throw std::length_error(std::string(who) + ": shape " + shape + " has more than " +
                              std::to_string(INT_MAX) + " elements; the kernel indexes with 32 bits");
  }
  return count;
}

}  // namespace

void bias_relu_forward_gpu(const float* pre, const float* bias, float* y, int N, int OC, int P,
                           cudaStream_t stream) {
  const size_t total = count32("bias_relu_forward_gpu", {N, OC, P});
  if (total == 0) return;  // a zero-block grid is a launch error
  launch("bias_relu_forward_kernel", bias_relu_forward_kernel, grid_for(total, kBlock), kBlock, 0, stream, pre,
         bias, y, OC, P, unsigned(N) * P, unsigned(total));
}

void bias_relu_backward_gpu(const float* y, const float* dy, float* dpre, int N, int OC, int P,
                            cudaStream_t stream) {
  const size_t total = count32("bias_relu_backward_gpu", {N, OC, P});
  if (total == 0) return;
  launch("bias_relu_backward_kernel", bias_relu_backward_kernel, grid_for(total, kBlock), kBlock, 0, stream, y,
         dy, dpre, OC, P, unsigned(N) * P, unsigned(total));
}

void bias_backward_gpu(const float* d, float* dbias, int R, int M, cudaStream_t stream) {
  count32("bias_backward_gpu", {R, M});
  if (R == 0) return;  // M == 0 still launches: every dbias is written (as 0)
  launch("bias_backward_kernel", bias_backward_kernel, grid_for(size_t(R), 1), kReduceBlock, 0, stream, d, dbias,
         R, M);
}

void dense_bias_forward_gpu(float* y, const float* b, int N, int O, cudaStream_t stream) {
  const size_t total = count32("dense_bias_forward_gpu", {N, O});
  if (total == 0) return;
  launch("dense_bias_forward_kernel", dense_bias_forward_kernel, grid_for(total, kBlock), kBlock, 0, stream, y,
         b, O, unsigned(total));
}

void dense_bias_backward_gpu(const float* dy, float* db, int N, int O, cudaStream_t stream) {
  count32("dense_bias_backward_gpu", {N, O});
  if (O == 0) return;  // N == 0 still launches: every db is written (as 0)
  launch("dense_bias_backward_kernel", dense_bias_backward_kernel, grid_for(size_t(O), kBlock), kBlock, 0, stream,
         dy, db, N, O);
}

void relu_forward_gpu(float* x, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  launch("relu_forward_kernel", relu_forward_kernel, grid_for(n, kBlock), kBlock, 0, stream, x, n);
}

void relu_backward_gpu(const float* y, const float* dy, float* dx, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  launch("relu_backward_kernel", relu_backward_kernel, grid_for(n, kBlock), kBlock, 0, stream, y, dy, dx, n);
}

}  // namespace convnet
