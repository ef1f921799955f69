// The bias / ReLU kernels (kernels/bias_relu.cu) against their CPU twins in host/cpu_layers.cpp.
//
// Tolerances
//   bias_relu_forward/backward, relu_forward/backward, dense_bias_forward: EXACT. One float add and a
//     compare (or only a compare) per element, the same operations as the CPU loop.
//   dense_bias_backward: EXACT. One thread per column adds the N rows top to bottom in double and
//     rounds once: the arithmetic of dense_backward_cpu, operation for operation.
//   bias_backward: REDUCTION class (1e-4). It also accumulates in double but adds the partial sums in
//     a tree, not left to right, so the double result can differ in its last bits from the CPU's and
//     very rarely round to a neighbouring float. Its determinism is checked bit for bit separately.
// Shapes: the MNIST layers at batch 128 (conv1..3 outputs, dense 128 and 10), plus N=1, odd sizes,
// counts that are not multiples of the block, grids capped to 2 blocks, and empty tensors.
#include <gtest/gtest.h>

#include <cstring>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
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
class BiasReluKernel : public KernelTest {};

// (N, OC, P): the conv1, conv2, conv3 outputs at batch 128 (P = 26*26, 11*11, 3*3), then awkward ones.
struct BiasReluShape {
  int N, OC, P;
  size_t count() const { return size_t(N) * OC * P; }
  std::string name() const {
    return "N=" + std::to_string(N) + " OC=" + std::to_string(OC) + " P=" + std::to_string(P);
  }
};
const BiasReluShape kBiasReluShapes[] = {{128, 32, 676}, {128, 64, 121}, {128, 64, 9}, {1, 1, 1},
                                         {3, 5, 7},      {2, 3, 257},    {1, 7, 130}};

void sync() { CUDA_CHECK(cudaDeviceSynchronize()); }

void check_bias_relu(const BiasReluShape& s, uint64_t seed) {
  SCOPED_TRACE(s.name());
  const std::vector<float> pre = random_vector<float>(s.count(), seed, -1.0, 1.0, 0);
  const std::vector<float> bias = random_vector<float>(s.OC, seed, -0.5, 0.5, 1);
  const std::vector<float> dy = random_vector<float>(s.count(), seed, -1.0, 1.0, 2);
  std::vector<float> y(s.count()), dpre(s.count());
  bias_relu_forward_cpu(pre.data(), bias.data(), y.data(), s.N, s.OC, s.P);  // about half the y are 0
  bias_relu_backward_cpu(y.data(), dy.data(), dpre.data(), s.N, s.OC, s.P);

  DeviceArray<float> d_pre(pre), d_bias(bias), d_y(s.count()), d_dy(dy), d_dpre(s.count());
  d_y.poison();
  d_dpre.poison();
  bias_relu_forward_gpu(d_pre.get(), d_bias.get(), d_y.get(), s.N, s.OC, s.P, nullptr);
  sync();
  expect_exact(y, d_y.download(), "bias_relu_forward y");
  d_y.upload(y);  // backward from the CPU's y, so a forward bug is not reported twice
  bias_relu_backward_gpu(d_y.get(), d_dy.get(), d_dpre.get(), s.N, s.OC, s.P, nullptr);
  sync();
  expect_exact(dpre, d_dpre.download(), "bias_relu_backward dpre");
}

TEST_F(BiasReluKernel, BiasReluMatchesCpu) {
  const uint64_t seed = test_seed(21);
  CONVNET_SEED_TRACE(seed);
  for (const BiasReluShape& s : kBiasReluShapes) check_bias_relu(s, seed);
}

TEST_F(BiasReluKernel, BiasReluCappedGridStrides) {
  const uint64_t seed = test_seed(22);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(2);
  check_bias_relu({3, 5, 71}, seed);
}

// Returns the GPU's dbias for d (R, M).
std::vector<float> gpu_bias_backward(const std::vector<float>& d, int R, int M) {
  DeviceArray<float> d_d(d), d_db(R);
  d_db.poison();
  bias_backward_gpu(d_d.get(), d_db.get(), R, M, nullptr);
  sync();
  return d_db.download();
}

void check_bias_backward(int R, int M, uint64_t seed) {
  SCOPED_TRACE("R=" + std::to_string(R) + " M=" + std::to_string(M));
  const std::vector<float> d = random_vector<float>(size_t(R) * M, seed);
  std::vector<float> ref(R);
  bias_backward_cpu(d.data(), ref.data(), R, M);
  expect_close(ref, gpu_bias_backward(d, R, M), kReduction, "bias_backward dbias");
}

// (R, M) = (OC, N*P) of conv1..3 at batch 128.
TEST_F(BiasReluKernel, BiasBackwardMatchesCpuOnMnistShapes) {
  const uint64_t seed = test_seed(23);
  CONVNET_SEED_TRACE(seed);
  check_bias_backward(32, 128 * 676, seed);
  check_bias_backward(64, 128 * 121, seed);
  check_bias_backward(64, 128 * 9, seed);
}

// Rows shorter than the block, one element, not a multiple of 256, and M = 0 (every dbias is 0).
TEST_F(BiasReluKernel, BiasBackwardMatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(24);
  CONVNET_SEED_TRACE(seed);
  const std::pair<int, int> shapes[] = {{1, 1}, {3, 1000}, {7, 255}, {2, 257}, {5, 31}, {4, 0}};
  for (const auto& [R, M] : shapes) check_bias_backward(R, M, seed);
}

// Fewer blocks than rows: each block strides over rows. The result is the same bits as with a block
// per row, because each row's summation order depends only on M.
TEST_F(BiasReluKernel, BiasBackwardCappedGridIsBitIdentical) {
  const uint64_t seed = test_seed(25);
  CONVNET_SEED_TRACE(seed);
  const int R = 9, M = 1000;
  const std::vector<float> d = random_vector<float>(size_t(R) * M, seed);
  const std::vector<float> full = gpu_bias_backward(d, R, M);
  std::vector<float> capped;
  {
    ScopedGridCap cap(2);
    capped = gpu_bias_backward(d, R, M);
  }
  EXPECT_EQ(full, capped);
  EXPECT_EQ(full, gpu_bias_backward(d, R, M)) << "two runs differ";
  check_bias_backward(R, M, seed);
}

// dense_forward_cpu is y = gemm(x, w^T) then y += b; the GPU gets the same GEMM output and adds b.
void check_dense_bias(int N, int O, uint64_t seed) {
  SCOPED_TRACE("N=" + std::to_string(N) + " O=" + std::to_string(O));
  const int I = 3;
  const std::vector<float> x = random_vector<float>(size_t(N) * I, seed, -1.0, 1.0, 0);
  const std::vector<float> w = random_vector<float>(size_t(O) * I, seed, -1.0, 1.0, 1);
  const std::vector<float> b = random_vector<float>(O, seed, -1.0, 1.0, 2);
  const std::vector<float> dy = random_vector<float>(size_t(N) * O, seed, -1.0, 1.0, 3);
  std::vector<float> gemm(size_t(N) * O), y(size_t(N) * O), dw(size_t(O) * I), db(O);
  if (N > 0) gemm_cpu<float>(false, true, N, O, I, 1.0f, x.data(), w.data(), 0.0f, gemm.data());
  dense_forward_cpu(x.data(), w.data(), b.data(), y.data(), N, I, O);
  dense_backward_cpu(x.data(), w.data(), dy.data(), dw.data(), db.data(), static_cast<float*>(nullptr), N, I, O);

  DeviceArray<float> d_y(gemm), d_b(b), d_dy(dy), d_db(O);
  d_db.poison();
  dense_bias_forward_gpu(d_y.get(), d_b.get(), N, O, nullptr);
  dense_bias_backward_gpu(d_dy.get(), d_db.get(), N, O, nullptr);
  sync();
  expect_exact(y, d_y.download(), "dense_bias_forward y");
  expect_exact(db, d_db.download(), "dense_bias_backward db");
}

TEST_F(BiasReluKernel, DenseBiasMatchesCpu) {
  const uint64_t seed = test_seed(26);
  CONVNET_SEED_TRACE(seed);
  check_dense_bias(128, 128, seed);  // dense1 at batch 128
  check_dense_bias(128, 10, seed);   // the logits
  check_dense_bias(1, 1, seed);
  check_dense_bias(3, 300, seed);
  check_dense_bias(1000, 3, seed);
  check_dense_bias(0, 5, seed);      // no rows: db is all zeros, y is empty
}

TEST_F(BiasReluKernel, DenseBiasCappedGridStrides) {
  const uint64_t seed = test_seed(27);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(2);
  check_dense_bias(7, 700, seed);
}

void check_relu(size_t n, uint64_t seed) {
  SCOPED_TRACE("n=" + std::to_string(n));
  const std::vector<float> x = random_vector<float>(n, seed, -1.0, 1.0, 0);
  const std::vector<float> dy = random_vector<float>(n, seed, -1.0, 1.0, 1);
  std::vector<float> y = x, dx(n), dx_alias = dy;
  relu_forward_cpu(y.data(), n);
  relu_backward_cpu(y.data(), dy.data(), dx.data(), n);

  DeviceArray<float> d_x(x), d_y(y), d_dy(dy), d_dx(n);
  relu_forward_gpu(d_x.get(), n, nullptr);
  d_dx.poison();
  relu_backward_gpu(d_y.get(), d_dy.get(), d_dx.get(), n, nullptr);
  sync();
  expect_exact(y, d_x.download(), "relu_forward");
  expect_exact(dx, d_dx.download(), "relu_backward dx");
  relu_backward_gpu(d_y.get(), d_dy.get(), d_dy.get(), n, nullptr);  // dx aliasing dy, as allowed
  sync();
  expect_exact(dx, d_dy.download(), "relu_backward in place");
}

TEST_F(BiasReluKernel, ReluMatchesCpu) {
  const uint64_t seed = test_seed(28);
  CONVNET_SEED_TRACE(seed);
  for (size_t n : {size_t(128) * 128, size_t(1), size_t(1000003)}) check_relu(n, seed);
  ScopedGridCap cap(2);
  check_relu(3001, seed);
}

// As on the CPU, a NaN input stays NaN (so the trainer's divergence check sees it); -0 stays -0.
TEST_F(BiasReluKernel, ReluKeepsNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  DeviceArray<float> d_x(std::vector<float>{nan, -1.0f, -0.0f, 2.0f}), d_b(std::vector<float>{0.5f});
  DeviceArray<float> d_y(4);
  bias_relu_forward_gpu(d_x.get(), d_b.get(), d_y.get(), 1, 1, 4, nullptr);
  relu_forward_gpu(d_x.get(), 4, nullptr);
  sync();
  const std::vector<float> x = d_x.download(), y = d_y.download();
  EXPECT_TRUE(std::isnan(x[0]));
  EXPECT_EQ(x[1], 0.0f);
  EXPECT_TRUE(std::signbit(x[2]) && x[2] == 0.0f);
  EXPECT_EQ(x[3], 2.0f);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[2], 0.5f);
  EXPECT_EQ(y[3], 2.5f);
}

// Nothing to do: no launch (an empty grid would be a launch error). bias_backward with M = 0 and
// dense_bias_backward with N = 0 DO launch, to write their zeros (checked above).
TEST_F(BiasReluKernel, EmptyTensorsLaunchNothing) {
  DeviceArray<float> d_a(1), d_b(1), d_c(1);
  const uint64_t before = kernel_launch_count();
  bias_relu_forward_gpu(d_a.get(), d_b.get(), d_c.get(), 0, 4, 9, nullptr);
  bias_relu_forward_gpu(d_a.get(), d_b.get(), d_c.get(), 2, 4, 0, nullptr);
  bias_relu_backward_gpu(d_a.get(), d_b.get(), d_c.get(), 2, 0, 9, nullptr);
  bias_backward_gpu(d_a.get(), d_b.get(), 0, 100, nullptr);
  dense_bias_forward_gpu(d_a.get(), d_b.get(), 0, 10, nullptr);
  dense_bias_backward_gpu(d_a.get(), d_b.get(), 10, 0, nullptr);
  relu_forward_gpu(d_a.get(), 0, nullptr);
  relu_backward_gpu(d_a.get(), d_b.get(), d_c.get(), 0, nullptr);
  EXPECT_EQ(kernel_launch_count(), before);
  sync();
}

TEST_F(BiasReluKernel, RejectsNegativeDimensions) {
  DeviceArray<float> d_a(1), d_b(1), d_c(1);
  EXPECT_THROW(bias_relu_forward_gpu(d_a.get(), d_b.get(), d_c.get(), -1, 4, 9, nullptr), std::invalid_argument);
  EXPECT_THROW(bias_backward_gpu(d_a.get(), d_b.get(), 3, -2, nullptr), std::invalid_argument);
  EXPECT_THROW(dense_bias_backward_gpu(d_a.get(), d_b.get(), -1, 3, nullptr), std::invalid_argument);
}

}  // namespace
