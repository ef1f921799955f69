// maxpool_forward_gpu / maxpool_backward_gpu (kernels/maxpool.cu) against maxpool_forward_cpu /
// maxpool_backward_cpu.
//
// Tolerance: EXACT for y, argmax and dx: pooling selects and copies, no arithmetic.
// Inputs: seeded uniform values (ties practically absent), and values rounded to {-1, 0, 1} so most
// windows hold ties: the GPU must pick the same first maximum in row-major window order.
// Shapes: the three MNIST pools at batch 128 (26 -> 13, 11 -> 5 with the floor dropping the last row
// and column, 3 -> 1), plus N*C = 1, odd and non-square planes, planes too small for any window,
// counts that are not multiples of the block, and grids capped to 2 blocks. Outputs are poisoned
// (NaN for floats, -1 for argmax) so unwritten elements fail.
#include <gtest/gtest.h>

#include <cstring>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "kernel_test.h"
#include "kernels.h"
#include "launch.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

// Skips, with the runtime's reason, when there is no device (kernel_tests_gpu without a GPU).
class MaxpoolKernel : public KernelTest {};

struct PoolShape {
  int NC, H, W;
  size_t x_count() const { return size_t(NC) * H * W; }
  size_t y_count() const { return size_t(NC) * (H / 2) * (W / 2); }
  std::string name() const {
    return "NC=" + std::to_string(NC) + " H=" + std::to_string(H) + " W=" + std::to_string(W);
  }
};

const PoolShape kMnistShapes[] = {{128 * 32, 26, 26}, {128 * 64, 11, 11}, {128 * 64, 3, 3}};
const PoolShape kAwkwardShapes[] = {{1, 2, 2}, {3, 5, 7}, {5, 9, 4}, {7, 2, 33}, {2, 1, 6}, {1, 1, 1}, {3, 6, 1}};

// Forward and backward on one shape. With `ties`, x holds only -1, 0 and 1.
void check_maxpool(const PoolShape& s, uint64_t seed, bool ties) {
  SCOPED_TRACE(s.name() + (ties ? " (ties)" : ""));
  std::vector<float> x = random_vector<float>(s.x_count(), seed, ties ? -1.5 : -1.0, ties ? 1.5 : 1.0, 0);
  if (ties)
    for (float& v : x) v = std::nearbyint(v);
  const std::vector<float> dy = random_vector<float>(s.y_count(), seed, -1.0, 1.0, 1);
  std::vector<float> y(s.y_count()), dx(s.x_count());
  std::vector<int32_t> argmax(s.y_count());
  maxpool_forward_cpu(x.data(), y.data(), argmax.data(), s.NC, s.H, s.W);
  maxpool_backward_cpu(dy.data(), argmax.data(), dx.data(), s.NC, s.H, s.W);

  DeviceArray<float> d_x(x), d_y(s.y_count()), d_dy(dy), d_dx(s.x_count());
  DeviceArray<int32_t> d_argmax(s.y_count());
  d_y.poison();
  d_argmax.poison();
  d_dx.poison();
  maxpool_forward_gpu(d_x.get(), d_y.get(), d_argmax.get(), s.NC, s.H, s.W, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_exact(y, d_y.download(), "maxpool_forward y");
  expect_exact(argmax, d_argmax.download(), "maxpool_forward argmax");
  d_argmax.upload(argmax);  // backward from the CPU's argmax, so a forward bug is not reported twice
  maxpool_backward_gpu(d_dy.get(), d_argmax.get(), d_dx.get(), s.NC, s.H, s.W, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_exact(dx, d_dx.download(), "maxpool_backward dx");
}

TEST_F(MaxpoolKernel, MatchesCpuOnMnistShapes) {
  const uint64_t seed = test_seed(31);
  CONVNET_SEED_TRACE(seed);
  for (const PoolShape& s : kMnistShapes) check_maxpool(s, seed, false);
}

TEST_F(MaxpoolKernel, MatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(32);
  CONVNET_SEED_TRACE(seed);
  for (const PoolShape& s : kAwkwardShapes) check_maxpool(s, seed, false);
}

// Most windows hold equal maxima: the first in row-major window order wins, on both sides.
TEST_F(MaxpoolKernel, TiesPickTheFirstMaximum) {
  const uint64_t seed = test_seed(33);
  CONVNET_SEED_TRACE(seed);
  check_maxpool({64, 11, 11}, seed, true);
  for (const PoolShape& s : kAwkwardShapes) check_maxpool(s, seed, true);
}

TEST_F(MaxpoolKernel, CappedGridStrides) {
  const uint64_t seed = test_seed(34);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(2);
  check_maxpool({9, 13, 11}, seed, false);
  check_maxpool({9, 13, 11}, seed, true);
}

// Nothing to do: no launch (an empty grid would be a launch error). A plane too small for any window
// still launches backward, which writes its zeros (checked in MatchesCpuOnAwkwardShapes).
TEST_F(MaxpoolKernel, EmptyTensorsLaunchNothing) {
  DeviceArray<float> d_a(1), d_b(1);
  DeviceArray<int32_t> d_i(1);
  const uint64_t before = kernel_launch_count();
  maxpool_forward_gpu(d_a.get(), d_b.get(), d_i.get(), 0, 26, 26, nullptr);
  maxpool_forward_gpu(d_a.get(), d_b.get(), d_i.get(), 4, 1, 26, nullptr);
  maxpool_backward_gpu(d_a.get(), d_i.get(), d_b.get(), 0, 26, 26, nullptr);
  maxpool_backward_gpu(d_a.get(), d_i.get(), d_b.get(), 4, 26, 0, nullptr);
  EXPECT_EQ(kernel_launch_count(), before);
  CUDA_CHECK(cudaDeviceSynchronize());
}

TEST_F(MaxpoolKernel, RejectsNegativeDimensions) {
  DeviceArray<float> d_a(1), d_b(1);
  DeviceArray<int32_t> d_i(1);
  EXPECT_THROW(maxpool_forward_gpu(d_a.get(), d_b.get(), d_i.get(), -1, 4, 4, nullptr), std::invalid_argument);
  EXPECT_THROW(maxpool_backward_gpu(d_a.get(), d_i.get(), d_b.get(), 2, -4, 4, nullptr), std::invalid_argument);
}

}  // namespace
