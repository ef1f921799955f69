// dropout_forward_gpu / dropout_backward_gpu (kernels/dropout.cu) against dropout_forward_cpu /
// dropout_backward_cpu.
//
// Tolerance: EXACT, compared bit for bit. The keep mask is the same hash on both sides (kernels/rng.h)
// and each kept element is one float multiply by the same float scale.
// Shapes: N=1, odd n, n not a multiple of the 256-thread block, the real dropout sizes of the MNIST
// ConvNet at batch 128 (after the conv stack and after the dense layer), a grid capped to 3 blocks so
// every thread strides, in place (y == x), and n = 0 (no launch). Outputs are poisoned with NaN first.
// The same source builds kernel_tests_sim (simulator) and kernel_tests_gpu (real GPU; skips without one).
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "dropout.h"
#include "kernel_test.h"
#include "launch.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

class DropoutKernel : public KernelTest {};

struct Case {
  size_t n;
  float rate;
  uint64_t step;
  uint32_t layer;
};

// The step counter lives in device memory, as in the trainer (kernels/device_state.h).
DeviceArray<int64_t> device_step(uint64_t step) { return DeviceArray<int64_t>(std::vector<int64_t>{int64_t(step)}); }

void check_case(const Case& c, uint64_t seed) {
  SCOPED_TRACE("n=" + std::to_string(c.n) + " rate=" + std::to_string(c.rate) + " step=" + std::to_string(c.step) +
               " layer=" + std::to_string(c.layer));
  const std::vector<float> x = random_vector<float>(c.n, seed, -2.0, 2.0);
  const std::vector<float> dy = random_vector<float>(c.n, seed, -2.0, 2.0, 1);
  std::vector<float> y_ref(c.n), dx_ref(c.n);
  dropout_forward_cpu(x.data(), y_ref.data(), c.n, c.rate, seed, c.step, c.layer);
  dropout_backward_cpu(dy.data(), dx_ref.data(), c.n, c.rate, seed, c.step, c.layer);

  DeviceArray<float> d_x(x), d_y(c.n), d_dy(dy), d_dx(c.n);
  DeviceArray<int64_t> d_step = device_step(c.step);
  d_y.poison();
  d_dx.poison();
  dropout_forward_gpu(d_x.get(), d_y.get(), c.n, c.rate, seed, d_step.get(), c.layer, nullptr);
  dropout_backward_gpu(d_dy.get(), d_dx.get(), c.n, c.rate, seed, d_step.get(), c.layer, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> y = d_y.download(), dx = d_dx.download();
  expect_exact(y_ref, y, "dropout forward y");
  expect_exact(dx_ref, dx, "dropout backward dx");
}

TEST_F(DropoutKernel, MatchesCpuBitForBit) {
  const uint64_t seed = test_seed(21);
  CONVNET_SEED_TRACE(seed);
  // 128 x 1600 after the conv stack (Keras: Flatten then Dropout 0.5); 128 x 128 after the dense layer.
  for (const Case& c : {Case{1, 0.5f, 0, 0}, Case{7, 0.25f, 3, 1}, Case{1000, 0.5f, 17, 0},
                        Case{255, 0.1f, 1, 2}, Case{257, 0.9f, 2, 0}, Case{128 * 1600, 0.5f, 123, 0},
                        Case{128 * 128, 0.5f, 123, 1}, Case{4099, 0.0f, 5, 0}})
    check_case(c, seed);
}

TEST_F(DropoutKernel, CappedGridStrides) {
  const uint64_t seed = test_seed(22);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(3);
  for (const Case& c : {Case{10007, 0.5f, 9, 0}, Case{769, 0.3f, 1, 1}}) check_case(c, seed);
}

// The mask depends on every coordinate: a different step, layer or seed drops other elements.
TEST_F(DropoutKernel, MaskChangesWithStepLayerAndSeed) {
  const size_t n = 4096;
  DeviceArray<float> d_x(std::vector<float>(n, 1.0f)), d_y(n);
  auto mask = [&](uint64_t seed, uint64_t step, uint32_t layer) {
    DeviceArray<int64_t> d_step = device_step(step);
    dropout_forward_gpu(d_x.get(), d_y.get(), n, 0.5f, seed, d_step.get(), layer, nullptr);
    std::vector<float> y = d_y.download();
    std::vector<bool> kept(n);
    for (size_t i = 0; i < n; ++i) kept[i] = y[i] != 0.0f;
    return kept;
  };
  const std::vector<bool> base = mask(1, 1, 0);
  EXPECT_NE(base, mask(1, 2, 0));
  EXPECT_NE(base, mask(1, 1, 1));
  EXPECT_NE(base, mask(2, 1, 0));
  EXPECT_EQ(base, mask(1, 1, 0));
}

TEST_F(DropoutKernel, InPlace) {
  const uint64_t seed = test_seed(23);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 3001;
  const std::vector<float> x = random_vector<float>(n, seed);
  std::vector<float> ref(n);
  dropout_forward_cpu(x.data(), ref.data(), n, 0.5f, seed, 4, 0);
  DeviceArray<float> d(x);
  DeviceArray<int64_t> d_step = device_step(4);
  dropout_forward_gpu(d.get(), d.get(), n, 0.5f, seed, d_step.get(), 0, nullptr);
  expect_exact(ref, d.download(), "in-place dropout");
}

TEST_F(DropoutKernel, EmptyLaunchesNothingAndBadRateIsRejected) {
  DeviceArray<float> d(1);
  DeviceArray<int64_t> d_step = device_step(1);
  const uint64_t before = kernel_launch_count();
  dropout_forward_gpu(d.get(), d.get(), 0, 0.5f, 1, d_step.get(), 0, nullptr);
  dropout_backward_gpu(d.get(), d.get(), 0, 0.5f, 1, d_step.get(), 0, nullptr);
  EXPECT_EQ(kernel_launch_count(), before);
  EXPECT_THROW(dropout_forward_gpu(d.get(), d.get(), 1, 1.0f, 1, d_step.get(), 0, nullptr), std::invalid_argument);
  EXPECT_THROW(dropout_backward_gpu(d.get(), d.get(), 1, -0.1f, 1, d_step.get(), 0, nullptr), std::invalid_argument);
}

}  // namespace
