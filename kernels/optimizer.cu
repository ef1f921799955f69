// Optimiser updates over the whole flat parameter arena, one launch per step: Keras Adam and SGD.
//
// Layouts: p, g, m, v, vel (n) float, all in the arena layout of host/model.h (gradients and
// optimiser state share the parameters' offsets; the alignment padding has zero gradient and stays 0).
// CPU twins: adam_update_cpu and sgd_update_cpu (host/cpu_layers.cpp).
//   Adam (Keras' epsilon-hat form), t = step->step + 1 read ON THE DEVICE (DeviceStep, advanced by
//   step_advance_gpu), so the launch's arguments are the same every step:
//     lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)        in double, by every thread, then to float
//     m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2); p -= (m * lr_t) / (sqrt(v) + eps)
//   SGD: vel = momentum * vel - lr * g; p += vel (Nesterov: p += momentum * vel - lr * g).
// The float expressions are written with the _rn intrinsics in the CPU code's operation order. This
// stops nvcc from contracting a multiply and an add into one FMA (a different rounding from the
// CPU's), so a step matches the reference to the last bit rather than merely to a tolerance; sqrt and
// the division are IEEE-rounded in both worlds.
//
// Threading: one thread per element, grid-stride over n (grid capped by grid_for).
// Tolerance class: elementwise (tests/kernels/test_optimizer.cpp); lr_t's double pow/sqrt may differ
// from the host libm by an ulp of a double, which rounding to float almost always hides.
// Last measured time: not measured on a GPU yet.
#include "kernels.h"
#include "launch.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;

__global__ void adam_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                   float* __restrict__ v, size_t n, float lr, float beta1, float beta2, float eps,
                                   const DeviceStep* __restrict__ step) {
  const double t = static_cast<double>(step->step + 1);
  const double lr_t_d = static_cast<double>(lr) * sqrt(1.0 - pow(static_cast<double>(beta2), t)) /
                        (1.0 - pow(static_cast<double>(beta1), t));
  const float lr_t = static_cast<float>(lr_t_d);
  const float one_m_b1 = __fsub_rn(1.0f, beta1), one_m_b2 = __fsub_rn(1.0f, beta2);
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float gi = g[i];
    const float mi = __fadd_rn(m[i], __fmul_rn(__fsub_rn(gi, m[i]), one_m_b1));
    const float vi = __fadd_rn(v[i], __fmul_rn(__fsub_rn(__fmul_rn(gi, gi), v[i]), one_m_b2));
    m[i] = mi;
    v[i] = vi;
    p[i] = __fsub_rn(p[i], __fdiv_rn(__fmul_rn(mi, lr_t), __fadd_rn(__fsqrt_rn(vi), eps)));
  }
}

__global__ void sgd_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ vel,
                                  size_t n, float lr, float momentum, bool nesterov) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float lr_g = __fmul_rn(lr, g[i]);
    const float vi = __fsub_rn(__fmul_rn(momentum, vel[i]), lr_g);
    vel[i] = vi;
    p[i] = __fadd_rn(p[i], nesterov ? __fsub_rn(__fmul_rn(momentum, vi), lr_g) : vi);
  }
}

}  // namespace

void adam_update_gpu(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
                     float eps, const DeviceStep* step, cudaStream_t stream) {
  if (n == 0) return;
  launch("adam_update_kernel", adam_update_kernel, grid_for(n, kBlock), kBlock, 0, stream, p, g, m, v, n, lr, beta1,
         beta2, eps, step);
}

void sgd_update_gpu(float* p, const float* g, float* vel, size_t n, float lr, float momentum, bool nesterov,
                    cudaStream_t stream) {
  if (n == 0) return;
  launch("sgd_update_kernel", sgd_update_kernel, grid_for(n, kBlock), kBlock, 0, stream, p, g, vel, n, lr, momentum,
         nesterov);
}

}  // namespace convnet
