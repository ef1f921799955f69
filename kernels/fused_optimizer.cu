// The optimiser step of a training step in ONE launch: what finite_check_gpu + adam_update_gpu (or
// sgd_update_gpu) + step_advance_gpu do in three (kernels/finite_check.cu, optimizer.cu, gather.cu).
// Launchers: adam_step_gpu, sgd_step_gpu (kernels/fused_backward.h).
//
// Layouts: p, g, m, v, vel (n) float, the flat arenas of host/model.h. loss: ONE double in device
// memory (the training DeviceMetrics::loss_sum). step: DeviceStep, fault: DeviceFault
// (kernels/device_state.h). scratch: optimizer_step_scratch_bytes() bytes, zero before the first launch.
// CPU twin: finite_check_cpu(g, n, loss, step->step, fault), then adam_update_cpu with
// t = step->step + 1 (or sgd_update_cpu), then step->step += 1, step->cursor += batch.
//
// Per element the update is the per-layer kernels' arithmetic: _rn intrinsics in the CPU's operation
// order (no FMA contraction), lr_t in double by every thread, so a step matches adam_update_cpu /
// sgd_update_cpu to the bit (up to an ulp of the device's double pow, which the float rounding of
// lr_t almost always hides) and today's adam_update_gpu / sgd_update_gpu exactly.
//
// Threading: one thread per element, grid-stride over n (grid_for; n == 0 still runs one block, which
// records the loss and advances the step). Every thread reads step->step first. A thread remembers
// its first non-finite gradient (its smallest index, the grid-stride order being increasing), a warp
// takes the minimum by shuffles and its lane 0 publishes it with atomicMax(~key) into the scratch slot
// (max of complements = min of keys, order-independent, so deterministic; the complement lets 0 mean
// "none", so the scratch only needs zeroing once). Then the block that finishes last
// (kernels/last_block.h) — every block has by then read the step and published — takes the slot with
// atomicExch (which also resets it), writes the record under finite_check's rule (an earlier step's
// record is kept) and advances step and cursor. Graph-replayable: no argument changes per step.
//
// Tolerance: elementwise (p, m, v, vel; see above), exact (the DeviceFault record, step, cursor).
// tests/kernels/test_fused_backward.cpp.
// Last measured time: not measured (no GPU).
#include "cuda_compat.h"
#include "fused_backward.h"
#include "last_block.h"
#include "launch.h"
#include "value_kind.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;

// Adam's per-step constants and per-element update (Keras epsilon-hat form, adam_update_cpu's order).
struct AdamUpdate {
  float *m, *v;
  float lr_t, one_m_b1, one_m_b2, eps;
  __device__ void operator()(float* __restrict__ p, size_t i, float gi) const {
    const float mi = __fadd_rn(m[i], __fmul_rn(__fsub_rn(gi, m[i]), one_m_b1));
    const float vi = __fadd_rn(v[i], __fmul_rn(__fsub_rn(__fmul_rn(gi, gi), v[i]), one_m_b2));
    m[i] = mi;
    v[i] = vi;
    p[i] = __fsub_rn(p[i], __fdiv_rn(__fmul_rn(mi, lr_t), __fadd_rn(__fsqrt_rn(vi), eps)));
  }
};

struct AdamArgs {
  float *m, *v;
  float lr, beta1, beta2, eps;
  // The update for the step that has `done` steps before it: t = done + 1, lr_t in double as the CPU.
  __device__ AdamUpdate at(long long done) const {
    const double t = static_cast<double>(done + 1);
    const double lr_t = static_cast<double>(lr) * sqrt(1.0 - pow(static_cast<double>(beta2), t)) /
                        (1.0 - pow(static_cast<double>(beta1), t));
    return AdamUpdate{m, v, static_cast<float>(lr_t), __fsub_rn(1.0f, beta1), __fsub_rn(1.0f, beta2), eps};
  }
};

// SGD with momentum (Nesterov optional), sgd_update_cpu's order. The same for every step.
struct SgdArgs {
  float* vel;
  float lr, momentum;
  bool nesterov;
  __device__ SgdArgs at(long long) const { return *this; }
  __device__ void operator()(float* __restrict__ p, size_t i, float gi) const {
    const float lr_g = __fmul_rn(lr, gi);
    const float vi = __fsub_rn(__fmul_rn(momentum, vel[i]), lr_g);
    vel[i] = vi;
    p[i] = __fadd_rn(p[i], nesterov ? __fsub_rn(__fmul_rn(momentum, vi), lr_g) : vi);
  }
};

// The warp's smallest key into *slot as atomicMax(~key); every lane of the warp must call it.
__device__ void publish_first_bad(unsigned long long key, unsigned long long* slot) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const unsigned long long other = __shfl_down_sync(0xffffffffu, key, offset);
    key = other < key ? other : key;
  }
  if (threadIdx.x % 32 == 0 && key != kNoFaultGrad) {
    atomicMax(slot, ~key);
    __threadfence();
  }
}

// The last block's thread 0: finite_check_cpu's record for this step, then the step advance.
__device__ void finish_step(unsigned long long first_bad, const double* loss, long long now, DeviceStep* step,
                            DeviceFault* fault, int batch) {
  if (fault->step >= now) {  // else an earlier step's record is kept
    if (first_bad != kNoFaultGrad) {
      if (first_bad < fault->grad) fault->grad = first_bad;
      if (now < fault->step) fault->step = now;
    }
    const int kind = double_kind(*loss);
    if (kind != kValueFinite) {
      fault->loss = kind;
      if (now < fault->step) fault->step = now;
    }
  }
  step->step = now + 1;
  step->cursor += batch;
}

template <class Args>
__global__ void __launch_bounds__(kBlock)
    optimizer_step_kernel(float* __restrict__ p, const float* __restrict__ g, size_t n, Args args, const double* loss,
                          DeviceStep* step, DeviceFault* fault, int batch, ScratchHeader* scratch) {
  const long long now = step->step;  // read by every block before the last one advances it
  const auto update = args.at(now);
  unsigned long long first_bad = kNoFaultGrad;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float gi = g[i];
    const int kind = float_kind(gi);
    if (kind != kValueFinite && first_bad == kNoFaultGrad)
      first_bad = (static_cast<unsigned long long>(i) << 1) | (kind == kValueInf ? 1ull : 0ull);
    update(p, i, gi);
  }
  publish_first_bad(first_bad, &scratch->slot);
  if (!block_finished_last(&scratch->ticket) || threadIdx.x != 0) return;
  finish_step(~atomicExch(&scratch->slot, 0ull), loss, now, step, fault, batch);
}

template <class Args>
void launch_step(const char* name, float* p, const float* g, size_t n, const Args& args, const double* loss,
                 DeviceStep* step, DeviceFault* fault, int batch, void* scratch, cudaStream_t stream) {
  launch(name, optimizer_step_kernel<Args>, grid_for(n, kBlock), kBlock, 0, stream, p, g, n, args, loss, step, fault,
         batch, static_cast<ScratchHeader*>(scratch));
}

}  // namespace

size_t optimizer_step_scratch_bytes() { return kScratchHeaderBytes; }

void adam_step_gpu(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
                   float eps, const double* loss, DeviceStep* step, DeviceFault* fault, int batch, void* scratch,
                   cudaStream_t stream) {
  launch_step("optimizer_step_kernel<adam>", p, g, n, AdamArgs{m, v, lr, beta1, beta2, eps}, loss, step, fault, batch,
              scratch, stream);
}

void sgd_step_gpu(float* p, const float* g, float* vel, size_t n, float lr, float momentum, bool nesterov,
                  const double* loss, DeviceStep* step, DeviceFault* fault, int batch, void* scratch,
                  cudaStream_t stream) {
  launch_step("optimizer_step_kernel<sgd>", p, g, n, SgdArgs{vel, lr, momentum, nesterov}, loss, step, fault, batch,
              scratch, stream);
}

}  // namespace convnet
