// adam_update_gpu / sgd_update_gpu (kernels/optimizer.cu) against adam_update_cpu / sgd_update_cpu.
//
// Tolerance: ELEMENTWISE (1e-6 abs + 1e-5 rel) on p, m, v and vel after every step. Each element is a
// short fixed-order float expression that the kernel writes in the CPU's operation order without FMA
// contraction, so they normally agree to the bit; the allowance covers Adam's lr_t, whose double
// pow/sqrt on the device may differ from the host libm by an ulp. Errors would compound over the
// steps, so several successive steps are compared, each with fresh gradients.
// Adam's t is read ON THE DEVICE (DeviceStep::step + 1): the device step is advanced between steps
// with step_advance_gpu only, and one run starts from a device step of 41, which must match the CPU
// at t = 42 (and differ from t = 1).
// Shapes: the seed network's parameter arena (build_model("seed").arena_size), n = 1, odd n, n not a
// multiple of the 256-thread block, grids capped to 2 blocks, and n = 0 (no launch).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "kernels.h"
#include "launch.h"
#include "model.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

// Skips, with the reason, when there is no device (kernel_tests_gpu without a GPU).
class OptimizerKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();
      GTEST_SKIP() << "no CUDA device";
    }
  }
};

constexpr int kSteps = 4;

size_t seed_arena() { return build_model("seed").arena_size; }

// Keras defaults (lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7), plus a larger lr so updates are visible.
struct AdamCase {
  size_t n;
  float lr, beta1, beta2, eps;
  int64_t start_step;  // device step before the first update: t = start_step + 1
};

void check_adam(const AdamCase& c, uint64_t seed) {
  SCOPED_TRACE("adam n=" + std::to_string(c.n) + " lr=" + std::to_string(c.lr) +
               " start_step=" + std::to_string(c.start_step));
  std::vector<float> p = random_vector<float>(c.n, seed, -0.5, 0.5), m(c.n, 0.0f), v(c.n, 0.0f);
  DeviceArray<float> dp(p), dg(c.n), dm(m), dv(v);
  DeviceArray<DeviceStep> step(std::vector<DeviceStep>{DeviceStep{c.start_step, 0, 0}});
  for (int s = 0; s < kSteps; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    const std::vector<float> g = random_vector<float>(c.n, seed, -1.0, 1.0, 10 + uint64_t(s));
    adam_update_cpu(p.data(), g.data(), m.data(), v.data(), c.n, c.lr, c.beta1, c.beta2, c.eps, c.start_step + s + 1);
    dg.upload(g);
    adam_update_gpu(dp.get(), dg.get(), dm.get(), dv.get(), c.n, c.lr, c.beta1, c.beta2, c.eps, step.get(), nullptr);
    step_advance_gpu(step.get(), 128, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (!expect_close(m, dm.download(), kElementwise, "adam m")) return;
    if (!expect_close(v, dv.download(), kElementwise, "adam v")) return;
    if (!expect_close(p, dp.download(), kElementwise, "adam p")) return;
  }
  EXPECT_EQ(step.download()[0].step, c.start_step + kSteps);
}

struct SgdCase {
  size_t n;
  float lr, momentum;
  bool nesterov;
};

void check_sgd(const SgdCase& c, uint64_t seed) {
  SCOPED_TRACE("sgd n=" + std::to_string(c.n) + " momentum=" + std::to_string(c.momentum) +
               (c.nesterov ? " nesterov" : ""));
  std::vector<float> p = random_vector<float>(c.n, seed, -0.5, 0.5), vel(c.n, 0.0f);
  DeviceArray<float> dp(p), dg(c.n), dvel(vel);
  for (int s = 0; s < kSteps; ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    const std::vector<float> g = random_vector<float>(c.n, seed, -1.0, 1.0, 20 + uint64_t(s));
    sgd_update_cpu(p.data(), g.data(), vel.data(), c.n, c.lr, c.momentum, c.nesterov);
    dg.upload(g);
    sgd_update_gpu(dp.get(), dg.get(), dvel.get(), c.n, c.lr, c.momentum, c.nesterov, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    if (!expect_close(vel, dvel.download(), kElementwise, "sgd velocity")) return;
    if (!expect_close(p, dp.download(), kElementwise, "sgd p")) return;
  }
}

TEST_F(OptimizerKernel, AdamMatchesCpuOverSeveralSteps) {
  const uint64_t seed = test_seed(51);
  CONVNET_SEED_TRACE(seed);
  const size_t arena = seed_arena();
  for (const AdamCase& c : {AdamCase{arena, 1e-3f, 0.9f, 0.999f, 1e-7f, 0}, AdamCase{1, 1e-2f, 0.9f, 0.999f, 1e-7f, 0},
                            AdamCase{1001, 5e-2f, 0.8f, 0.99f, 1e-4f, 0}, AdamCase{257, 1e-3f, 0.9f, 0.999f, 1e-7f, 0}})
    check_adam(c, seed);
}

// t comes from DeviceStep::step on the device: a run starting at step 41 matches the CPU at t = 42.
TEST_F(OptimizerKernel, AdamTakesTFromTheDeviceStep) {
  const uint64_t seed = test_seed(52);
  CONVNET_SEED_TRACE(seed);
  check_adam(AdamCase{4099, 1e-2f, 0.9f, 0.999f, 1e-7f, 41}, seed);

  // ...and not t = 1: the bias correction makes the first update differ.
  const size_t n = 64;
  const std::vector<float> p0 = random_vector<float>(n, seed), g = random_vector<float>(n, seed, -1.0, 1.0, 1);
  std::vector<float> p1 = p0, m(n, 0.0f), v(n, 0.0f);
  adam_update_cpu(p1.data(), g.data(), m.data(), v.data(), n, 1e-2f, 0.9f, 0.999f, 1e-7f, 1);
  DeviceArray<float> dp(p0), dg(g), dm(n), dv(n);
  CUDA_CHECK(cudaMemset(dm.get(), 0, n * sizeof(float)));
  CUDA_CHECK(cudaMemset(dv.get(), 0, n * sizeof(float)));
  DeviceArray<DeviceStep> step(std::vector<DeviceStep>{DeviceStep{41, 0, 0}});
  adam_update_gpu(dp.get(), dg.get(), dm.get(), dv.get(), n, 1e-2f, 0.9f, 0.999f, 1e-7f, step.get(), nullptr);
  EXPECT_FALSE(check_close(p1.data(), dp.download().data(), n, kElementwise.atol, kElementwise.rtol, "t=1"))
      << "the update at device step 41 equals the one at t = 1: t is not read from the device";
}

TEST_F(OptimizerKernel, SgdMatchesCpuOverSeveralSteps) {
  const uint64_t seed = test_seed(53);
  CONVNET_SEED_TRACE(seed);
  const size_t arena = seed_arena();
  for (const SgdCase& c : {SgdCase{arena, 0.01f, 0.0f, false}, SgdCase{arena, 0.01f, 0.9f, false},
                           SgdCase{arena, 0.01f, 0.9f, true}, SgdCase{1, 0.1f, 0.5f, true},
                           SgdCase{1001, 0.05f, 0.99f, false}, SgdCase{257, 0.05f, 0.9f, true}})
    check_sgd(c, seed);
}

TEST_F(OptimizerKernel, CappedGridStrides) {
  const uint64_t seed = test_seed(54);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(2);
  check_adam(AdamCase{10007, 1e-3f, 0.9f, 0.999f, 1e-7f, 3}, seed);
  check_sgd(SgdCase{10007, 0.01f, 0.9f, true}, seed);
  check_sgd(SgdCase{769, 0.01f, 0.0f, false}, seed);
}

TEST_F(OptimizerKernel, EmptyArenaLaunchesNothing) {
  DeviceArray<float> a(1);
  DeviceArray<DeviceStep> step(std::vector<DeviceStep>{DeviceStep{0, 0, 0}});
  const uint64_t before = kernel_launch_count();
  adam_update_gpu(a.get(), a.get(), a.get(), a.get(), 0, 1e-3f, 0.9f, 0.999f, 1e-7f, step.get(), nullptr);
  sgd_update_gpu(a.get(), a.get(), a.get(), 0, 0.01f, 0.9f, true, nullptr);
  EXPECT_EQ(kernel_launch_count(), before);
}

}  // namespace
