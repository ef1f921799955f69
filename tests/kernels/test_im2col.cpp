// im2col_gpu and col2im_gpu (kernels/im2col.cu) against their CPU twins im2col_cpu / col2im_cpu.
//
// Tolerance: EXACT for both. im2col copies. col2im adds its <= K*K terms in the CPU's order (ki, then kj)
// in double and rounds to float once, exactly as col2im_cpu does, so the results are bit-identical; a
// change of summation order or precision in either one shows up here as a mismatch.
// Shapes: the three MNIST convolutions at batch 128, plus N=1, odd and non-square sizes, K=1 and K=H,
// counts that are not multiples of the 256-thread block, a grid capped to 2 blocks (every thread
// strides), and empty tensors (no launch). Outputs are poisoned with NaN so unwritten elements fail.
#include <gtest/gtest.h>

#include <cstring>
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

struct ConvShape {
  int N, C, H, W, K;
  size_t x_count() const { return size_t(N) * C * H * W; }
  size_t col_count() const { return size_t(C) * K * K * N * (H - K + 1) * (W - K + 1); }
  std::string name() const {
    return "N=" + std::to_string(N) + " C=" + std::to_string(C) + " H=" + std::to_string(H) +
           " W=" + std::to_string(W) + " K=" + std::to_string(K);
  }
};

// conv1, conv2, conv3 of the Keras MNIST ConvNet at batch 128, then awkward ones.
const ConvShape kMnistShapes[] = {{128, 1, 28, 28, 3}, {128, 32, 13, 13, 3}, {128, 64, 5, 5, 3}};
const ConvShape kAwkwardShapes[] = {
    {1, 1, 3, 3, 3},   // one output pixel
    {1, 3, 7, 5, 2},   // non-square, even K
    {3, 2, 9, 11, 4},  // odd sizes, counts no multiple of 256
    {2, 5, 6, 6, 1},   // K=1: col is a transpose of x
    {5, 1, 4, 17, 3},  // a wide row
};

// Skips, with the runtime's reason, when there is no device (kernel_tests_gpu without a GPU).
class Im2colKernel : public KernelTest {};

// im2col on the GPU vs the CPU for one shape; seed drives the input.
void check_im2col(const ConvShape& s, uint64_t seed) {
  SCOPED_TRACE(s.name());
  const std::vector<float> x = random_vector<float>(s.x_count(), seed);
  std::vector<float> ref(s.col_count());
  im2col_cpu(x.data(), ref.data(), s.N, s.C, s.H, s.W, s.K);

  DeviceArray<float> d_x(x), d_col(s.col_count());
  d_col.poison();
  im2col_gpu(d_x.get(), d_col.get(), s.N, s.C, s.H, s.W, s.K, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_exact(ref, d_col.download(), "im2col col");
}

void check_col2im(const ConvShape& s, uint64_t seed) {
  SCOPED_TRACE(s.name());
  const std::vector<float> dcol = random_vector<float>(s.col_count(), seed, -1.0, 1.0, 1);
  std::vector<float> ref(s.x_count());
  col2im_cpu(dcol.data(), ref.data(), s.N, s.C, s.H, s.W, s.K);

  DeviceArray<float> d_dcol(dcol), d_dx(s.x_count());
  d_dx.poison();
  col2im_gpu(d_dcol.get(), d_dx.get(), s.N, s.C, s.H, s.W, s.K, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_exact(ref, d_dx.download(), "col2im dx");
}

TEST_F(Im2colKernel, MatchesCpuOnMnistShapes) {
  const uint64_t seed = test_seed(11);
  CONVNET_SEED_TRACE(seed);
  for (const ConvShape& s : kMnistShapes) check_im2col(s, seed);
}

TEST_F(Im2colKernel, MatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(12);
  CONVNET_SEED_TRACE(seed);
  for (const ConvShape& s : kAwkwardShapes) check_im2col(s, seed);
}

TEST_F(Im2colKernel, Col2imMatchesCpuExactlyOnMnistShapes) {
  const uint64_t seed = test_seed(13);
  CONVNET_SEED_TRACE(seed);
  for (const ConvShape& s : kMnistShapes) check_col2im(s, seed);
}

TEST_F(Im2colKernel, Col2imMatchesCpuExactlyOnAwkwardShapes) {
  const uint64_t seed = test_seed(14);
  CONVNET_SEED_TRACE(seed);
  for (const ConvShape& s : kAwkwardShapes) check_col2im(s, seed);
}

// Two blocks of 256 threads for thousands of elements: every thread runs many grid-stride iterations.
TEST_F(Im2colKernel, CappedGridStrides) {
  const uint64_t seed = test_seed(15);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(2);
  for (const ConvShape& s : {ConvShape{3, 2, 9, 11, 4}, ConvShape{4, 8, 13, 13, 3}}) {
    check_im2col(s, seed);
    check_col2im(s, seed);
  }
}

// Nothing to do: no launch (an empty grid would be a launch error), and no error.
TEST_F(Im2colKernel, EmptyBatchLaunchesNothing) {
  DeviceArray<float> d_a(1), d_b(1);
  const uint64_t before = kernel_launch_count();
  im2col_gpu(d_a.get(), d_b.get(), 0, 3, 5, 5, 3, nullptr);
  col2im_gpu(d_a.get(), d_b.get(), 0, 3, 5, 5, 3, nullptr);
  im2col_gpu(d_a.get(), d_b.get(), 2, 0, 5, 5, 3, nullptr);
  col2im_gpu(d_a.get(), d_b.get(), 2, 0, 5, 5, 3, nullptr);
  EXPECT_EQ(kernel_launch_count(), before);
  CUDA_CHECK(cudaDeviceSynchronize());
}

// A kernel larger than the image, K < 1, or a negative N or C is rejected before anything is launched,
// as on the CPU.
TEST_F(Im2colKernel, RejectsBadShapes) {
  DeviceArray<float> d_a(1), d_b(1);
  EXPECT_THROW(im2col_gpu(d_a.get(), d_b.get(), 1, 1, 2, 5, 3, nullptr), std::invalid_argument);
  EXPECT_THROW(col2im_gpu(d_a.get(), d_b.get(), 1, 1, 5, 2, 3, nullptr), std::invalid_argument);
  EXPECT_THROW(im2col_gpu(d_a.get(), d_b.get(), 1, 1, 5, 5, 0, nullptr), std::invalid_argument);
  EXPECT_THROW(im2col_gpu(d_a.get(), d_b.get(), -1, 1, 5, 5, 3, nullptr), std::invalid_argument);
  EXPECT_THROW(col2im_gpu(d_a.get(), d_b.get(), 1, -1, 5, 5, 3, nullptr), std::invalid_argument);
}

}  // namespace
