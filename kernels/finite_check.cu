// Divergence check of a training step: is the loss or any gradient NaN or Inf? Recorded on the device,
// so the step never waits for the host (the host reads the record where it synchronises anyway).
//
// Layouts: g (n) float, the whole gradient arena (host/model.h layout; the alignment padding is zero).
// loss: ONE double in device memory, the training DeviceMetrics::loss_sum that softmax_xent_gpu has
// just added this batch's loss to. step: DeviceStep (steps done before this one). fault: ONE
// DeviceFault (kernels/device_state.h).
// CPU twin: finite_check_cpu (host/cpu_layers.cpp), same record for the same inputs.
//
// What is recorded: nothing when fault->step is an EARLIER step (the first faulty step is kept, so
// the host learns where the run went wrong, not where it ended up). Otherwise, when a gradient is
// not finite, fault->grad = min over this launch of (i << 1) | inf for its flat index i, and when the
// loss is not finite, fault->loss says NaN or Inf; either way fault->step = step->step. NaN and Inf
// are told apart from the bits (kernels/value_kind.h), so no fast-math flag can fold the test away.
//
// Threading: one thread per element, grid-stride over n (grid capped by grid_for). A thread stops at
// its first non-finite element (its smallest index); a shared-memory min tree gives the block's
// smallest and its thread 0 does one 64-bit atomicMin. min is order-independent, so the record does
// not depend on block order: deterministic. Thread 0 of block 0 also checks the loss. The earlier-step
// test is uniform across the launch: blocks of this launch only ever write this step, which does not
// make fault->step smaller than it, so every thread takes the same branch before the barrier.
// Cost: one launch per step reading 4 bytes per parameter (225 KB for the seed network).
//
// Tolerance class: exact (tests/kernels/test_finite_check.cpp).
// Last measured time: not measured on a GPU yet.
#include "kernels.h"
#include "launch.h"
#include "value_kind.h"

namespace convnet {
namespace {

constexpr int kThreads = 256;  // a power of two: the tree halves it

__global__ void finite_check_kernel(const float* __restrict__ g, size_t n, const double* __restrict__ loss,
                                    const DeviceStep* __restrict__ step, DeviceFault* __restrict__ fault) {
  __shared__ unsigned long long first[kThreads];
  const long long now = step->step;
  if (fault->step < now) return;  // an earlier step's fault is recorded: keep it (uniform, see above)
  const int t = static_cast<int>(threadIdx.x);
  unsigned long long mine = kNoFaultGrad;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + t; i < n; i += stride) {
    const int kind = float_kind(g[i]);
    if (kind != kValueFinite) {
      mine = (static_cast<unsigned long long>(i) << 1) | (kind == kValueInf ? 1ull : 0ull);
      break;
    }
  }
  first[t] = mine;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (t < half && first[t + half] < first[t]) first[t] = first[t + half];
    __syncthreads();
  }
  if (t != 0) return;
  if (first[0] != kNoFaultGrad) {
    atomicMin(&fault->grad, first[0]);
    atomicMin(&fault->step, now);
  }
  if (blockIdx.x == 0) {
    const int kind = double_kind(*loss);
    if (kind != kValueFinite) {
      fault->loss = kind;  // the only writer of loss in this launch
      atomicMin(&fault->step, now);
    }
  }
}

}  // namespace

void finite_check_gpu(const float* g, size_t n, const double* loss, const DeviceStep* step, DeviceFault* fault,
                      cudaStream_t stream) {
  launch("finite_check_kernel", finite_check_kernel, grid_for(n, kThreads), kThreads, 0, stream, g, n, loss, step,
         fault);
}

}  // namespace convnet
