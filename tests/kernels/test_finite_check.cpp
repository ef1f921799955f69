// finite_check_gpu (kernels/finite_check.cu) against finite_check_cpu: the divergence record of a
// training step.
//
// Tolerance: EXACT, the whole DeviceFault record compared field by field.
// Cases: no fault; one NaN or Inf at the first, a block-boundary, a grid-stride-boundary and the last
// position; several (the smallest index wins, whatever its kind); the loss alone and with gradients;
// n = 1, n not a multiple of the 256-thread block, the seed network's gradient arena; every case also
// with the grid capped to 3 blocks so every thread strides. Then: a later step never overwrites the
// first step's record, a second check in the same step merges into it, and a check is one launch.
// The same source builds kernel_tests_sim (simulator) and kernel_tests_gpu (real GPU; skips without one).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "kernel_test.h"
#include "kernels.h"
#include "launch.h"
#include "model.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

class FiniteCheckKernel : public KernelTest {};

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  std::string name;
  size_t n;
  std::vector<std::pair<size_t, float>> bad;  // (index, value) put into the gradients
  double loss;
};

DeviceStep step_at(int64_t step) { return DeviceStep{step, 0, 0}; }

// Runs the kernel on one step from `before`; returns the device's record.
DeviceFault run_gpu(const std::vector<float>& g, double loss, int64_t step, const DeviceFault& before) {
  DeviceArray<float> d_g(g);
  DeviceArray<double> d_loss(std::vector<double>{loss});
  DeviceArray<DeviceStep> d_step(std::vector<DeviceStep>{step_at(step)});
  DeviceArray<DeviceFault> d_fault(std::vector<DeviceFault>{before});
  finite_check_gpu(d_g.get(), g.size(), d_loss.get(), d_step.get(), d_fault.get(), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return d_fault.download()[0];
}

void expect_same(const DeviceFault& ref, const DeviceFault& got) {
  EXPECT_EQ(ref.step, got.step);
  EXPECT_EQ(ref.grad, got.grad) << "index " << (ref.grad >> 1) << " vs " << (got.grad >> 1);
  EXPECT_EQ(ref.loss, got.loss);
}

std::vector<float> gradients(const Case& c, uint64_t seed) {
  std::vector<float> g = random_vector<float>(c.n, seed, -3.0, 3.0);
  for (const auto& [i, v] : c.bad) g[i] = v;
  return g;
}

TEST_F(FiniteCheckKernel, MatchesCpuTwin) {
  const uint64_t seed = test_seed(41);
  SCOPED_TRACE(seed_msg(seed));
  const size_t arena = build_model("seed").arena_size;
  const double nan_d = std::numeric_limits<double>::quiet_NaN(), inf_d = std::numeric_limits<double>::infinity();
  const std::vector<Case> cases = {
      {"finite", arena, {}, 2.3},
      {"n=1 finite", 1, {}, 0.0},
      {"n=1 NaN", 1, {{0, kNaN}}, 1.0},
      {"NaN first", arena, {{0, kNaN}}, 2.3},
      {"Inf at a block edge", 1000, {{256, kInf}}, 2.3},
      {"-Inf before a block edge", 1000, {{255, -kInf}}, 2.3},
      {"NaN at the stride edge of 3 blocks", 1000, {{768, kNaN}}, 2.3},
      {"NaN last", arena, {{arena - 1, kNaN}}, 2.3},
      {"several: the smallest index wins", arena, {{arena - 5, kNaN}, {40000, kInf}, {777, kNaN}, {778, kInf}}, 2.3},
      {"several in one thread's stride", 1000, {{900, kNaN}, {132, kInf}}, 2.3},
      {"loss NaN, gradients finite", 999, {}, nan_d},
      {"loss Inf and gradients", arena, {{31, kNaN}, {5, kNaN}}, inf_d},
      {"loss -Inf", 7, {{6, kInf}}, -inf_d},
  };
  for (unsigned cap : {kDefaultGridCap, 3u}) {
    ScopedGridCap grid(cap);
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name + ", n=" + std::to_string(c.n) + ", grid cap " + std::to_string(cap));
      const std::vector<float> g = gradients(c, seed);
      DeviceFault ref = no_device_fault();
      finite_check_cpu(g.data(), g.size(), &c.loss, 17, &ref);
      expect_same(ref, run_gpu(g, c.loss, 17, no_device_fault()));
      // The expectations themselves, so that the twins cannot agree on something wrong.
      const bool any = !c.bad.empty() || !std::isfinite(c.loss);
      EXPECT_EQ(ref.step, any ? 17 : kNoFaultStep);
      if (!c.bad.empty()) {
        size_t first = c.bad[0].first;
        for (const auto& b : c.bad) first = std::min(first, b.first);
        EXPECT_EQ(ref.grad >> 1, first);
        EXPECT_EQ(ref.grad & 1u, std::isinf(g[first]) ? 1u : 0u);
      } else {
        EXPECT_EQ(ref.grad, kNoFaultGrad);
      }
      EXPECT_EQ(ref.loss, std::isnan(c.loss) ? kValueNaN : std::isinf(c.loss) ? kValueInf : kValueFinite);
    }
  }
}

TEST_F(FiniteCheckKernel, KeepsTheFirstFaultyStep) {
  std::vector<float> g(3000, 0.5f);
  g[2000] = kNaN;
  const DeviceFault first = run_gpu(g, 1.0, 4, no_device_fault());
  ASSERT_EQ(first.step, 4);
  ASSERT_EQ(first.grad, 2000u << 1);
  g[10] = kInf;  // a later step with a smaller index and a bad loss changes nothing
  const double nan_d = std::numeric_limits<double>::quiet_NaN();
  const DeviceFault later = run_gpu(g, nan_d, 5, first);
  expect_same(first, later);
  DeviceFault cpu = first;
  finite_check_cpu(g.data(), g.size(), &nan_d, 5, &cpu);
  expect_same(first, cpu);
  // Checked again in the same step (not an earlier step's record): the smallest index wins, on both.
  const DeviceFault merged = run_gpu(g, nan_d, 4, first);
  EXPECT_EQ(merged.step, 4);
  EXPECT_EQ(merged.grad, (10u << 1) | 1u);
  EXPECT_EQ(merged.loss, kValueNaN);
  cpu = first;
  finite_check_cpu(g.data(), g.size(), &nan_d, 4, &cpu);
  expect_same(merged, cpu);
}

TEST_F(FiniteCheckKernel, IsOneLaunch) {
  const std::vector<float> g(70000, 1.0f);
  DeviceArray<float> d_g(g);
  DeviceArray<double> d_loss(std::vector<double>{1.0});
  DeviceArray<DeviceStep> d_step(std::vector<DeviceStep>{step_at(0)});
  DeviceArray<DeviceFault> d_fault(std::vector<DeviceFault>{no_device_fault()});
  const uint64_t before = kernel_launch_count();
  finite_check_gpu(d_g.get(), g.size(), d_loss.get(), d_step.get(), d_fault.get(), nullptr);
  EXPECT_EQ(kernel_launch_count(), before + 1);
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(d_fault.download()[0].step, kNoFaultStep);
}

}  // namespace
