// Fused softmax + categorical cross-entropy, forward and backward, with the batch's loss and accuracy
// accumulated in device memory.
//
// Layouts: logits (N, C) float, labels (N) u8 in [0, C), dlogits (N, C) and probs (N, C) float, each
// optional (null: not written). metrics: one DeviceMetrics in device memory; this adds the batch's
// loss SUM, its correct count and N to it (the host reads it back once per epoch).
// CPU twin: softmax_xent_cpu (host/cpu_layers.cpp), mirrored operation by operation: first arg-max with
// `>`, max-subtracted log-sum-exp in double, loss_i = lse - z[label], p = exp(z - lse) in double,
// dlogits = (p - onehot) / N rounded to float once (the gradient of the batch MEAN loss).
//
// Threading: ONE block of kThreads threads. Thread t handles samples t, t + kThreads, ... and keeps
// its loss (double) and correct count in registers, summed in its fixed sample order; a shared-memory
// tree then adds the partials in a fixed order and thread 0 adds the totals to *metrics. Launches on
// one stream run in order, so the accumulation is deterministic run to run (no float atomics). One
// block is plenty: a batch is 128 x 10 values, and an evaluation batch a few thousand.
// Labels are validated when the data set is loaded (host/idx.cpp); an out-of-range label here is a
// broken invariant and traps instead of reading outside the row.
//
// Tolerance class: dlogits/probs elementwise (device exp/log differ from the host libm in the last
// double ulps, far below float rounding); loss sum 1e-4 relative (summed in a different order than the
// CPU's sequential loop, in double); correct and count exact.
// Last measured time: not measured on a GPU yet.
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "launch.h"
#include "xent.h"

namespace convnet {
namespace {

constexpr int kThreads = 256;  // a power of two: the tree reduction halves it

__global__ void softmax_xent_kernel(const float* __restrict__ logits, const uint8_t* __restrict__ labels,
                                    float* __restrict__ dlogits, float* __restrict__ probs, int N, int C,
                                    DeviceMetrics* __restrict__ metrics) {
  __shared__ double loss_part[kThreads];
  __shared__ long long correct_part[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  double loss = 0.0;
  long long correct = 0;
  for (int n = t; n < N; n += kThreads) {
    const size_t row = static_cast<size_t>(n) * C;
    xent_sample(logits + row, labels[n], dlogits ? dlogits + row : nullptr, probs ? probs + row : nullptr, N, C,
                &loss, &correct);
  }
  loss_part[t] = loss;
  correct_part[t] = correct;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {  // fixed pairing: deterministic
    if (t < half) {
      loss_part[t] += loss_part[t + half];
      correct_part[t] += correct_part[t + half];
    }
    __syncthreads();
  }
  if (t == 0) {
    metrics->loss_sum += loss_part[0];
    metrics->correct += correct_part[0];
    metrics->count += N;
  }
}

}  // namespace

void softmax_xent_gpu(const float* logits, const uint8_t* labels, float* dlogits, float* probs, int N, int C,
                      DeviceMetrics* metrics, cudaStream_t stream) {
  if (N < 0 || C < 1)
    throw std::invalid_argument("softmax_xent_gpu: need N >= 0 and C >= 1, got N=" + std::to_string(N) +
                                " C=" + std::to_string(C));
  if (N == 0) return;
  launch("softmax_xent_kernel", softmax_xent_kernel, 1, kThreads, 0, stream, logits, labels, dlogits, probs, N, C,
         metrics);
}

}  // namespace convnet
