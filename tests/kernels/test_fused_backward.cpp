// The fused backward kernels (kernels/fused_backward.cu) against compositions of their CPU twins.
//
// conv_epilogue_backward_gpu: col2im_cpu -> maxpool_backward_cpu -> bias_relu_backward_cpu ->
//   bias_backward_cpu. dpre EXACT (same bits: a selection and col2im's sum in its order); db reduction
//   class (double partials added in another order).
// conv_input_backward_gpu: the same up to the ReLU, then conv_backward_cpu's dw and db (float GEMM on
//   the CPU against double sums on the device): reduction class.
// Forward state: random pre-activations and biases through bias_relu_forward_cpu and
// maxpool_forward_cpu, so y, argmax and the ReLU mask are what a forward pass keeps (about half the
// activations are 0). Shapes: the seed network's blocks at batch 128 (conv3 3x3 pool -> 1x1 from dh
// F=64, conv2 11x11 pool -> 5x5 from conv3's dcol K=3, conv1 26x26 pool -> 13x13 from conv2's dcol),
// the keras preset's conv2 block from dh F=1600, and awkward ones: N=1, odd and non-square sizes (the
// pool's floor drops a row/column), no pool, gradients from dy and from a dcol of every kernel size,
// counts not multiples of the 256-thread block, grids capped to 3 blocks. Outputs are NaN-poisoned,
// so are the scratch slots (only the header starts at zero). Also: two runs are bit-identical (the
// scratch is left reusable), each launcher call is one launch, bad shapes are refused.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "fused_backward.h"
#include "kernel_test.h"
#include "launch.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

class FusedBackwardKernel : public KernelTest {};

// ---- conv blocks ---------------------------------------------------------------------------------

// A conv block (OC, OH, OW, pool) of batch N, its gradient from dy (next_K == 0) or a next dcol; for
// the input layer also the input size H x W and kernel K (OH = H - K + 1).
struct BlockCase {
  std::string name;
  ConvBlockShape s;
  int next_K;
  int H = 0, W = 0, K = 0;
  int YH() const { return s.pool ? s.OH / 2 : s.OH; }
  int YW() const { return s.pool ? s.OW / 2 : s.OW; }
  int P() const { return s.OH * s.OW; }
  size_t pre_count() const { return size_t(s.N) * s.OC * P(); }
  size_t y_count() const { return size_t(s.N) * s.OC * YH() * YW(); }
  size_t src_count() const {
    if (next_K == 0) return y_count();
    return size_t(s.OC) * next_K * next_K * s.N * (YH() - next_K + 1) * (YW() - next_K + 1);
  }
};

// What the forward pass kept (on the CPU), and the incoming gradient.
struct BlockState {
  std::vector<float> a;         // ReLU output before the pool (N, OC, OH, OW): bias_relu_backward_cpu's mask
  std::vector<float> y;         // block output (N, OC, YH, YW)
  std::vector<int32_t> argmax;  // (N, OC, YH, YW) when pooled
  std::vector<float> src;       // dy or the next layer's dcol
};

BlockState make_block(const BlockCase& c, uint64_t seed) {
  const ConvBlockShape& s = c.s;
  BlockState b;
  const std::vector<float> pre = random_vector<float>(c.pre_count(), seed, -1.0, 1.0, 1);
  const std::vector<float> bias = random_vector<float>(size_t(s.OC), seed, -0.3, 0.3, 2);
  b.a.resize(c.pre_count());
  bias_relu_forward_cpu(pre.data(), bias.data(), b.a.data(), s.N, s.OC, c.P());
  if (s.pool) {
    b.y.resize(c.y_count());
    b.argmax.resize(c.y_count());
    maxpool_forward_cpu(b.a.data(), b.y.data(), b.argmax.data(), s.N * s.OC, s.OH, s.OW);
  } else {
    b.y = b.a;
  }
  b.src = random_vector<float>(c.src_count(), seed, -1.0, 1.0, 3);
  return b;
}

// The CPU composition up to the gradient of the ReLU output a (N, OC, OH, OW): [col2im] -> [max-pool backward].
std::vector<float> cpu_da(const BlockCase& c, const BlockState& b) {
  const ConvBlockShape& s = c.s;
  std::vector<float> dy = b.src;
  if (c.next_K != 0) {
    dy.resize(c.y_count());
    col2im_cpu(b.src.data(), dy.data(), s.N, s.OC, c.YH(), c.YW(), c.next_K);
  }
  if (!s.pool) return dy;
  std::vector<float> da(c.pre_count());
  maxpool_backward_cpu(dy.data(), b.argmax.data(), da.data(), s.N * s.OC, s.OH, s.OW);
  return da;
}

// ... then ReLU backward: dpre (OC, N*P).
std::vector<float> cpu_dpre(const BlockCase& c, const BlockState& b) {
  const std::vector<float> da = cpu_da(c, b);
  std::vector<float> dpre(c.pre_count());
  bias_relu_backward_cpu(b.a.data(), da.data(), dpre.data(), c.s.N, c.s.OC, c.P());
  return dpre;
}

// Device copies of a block's forward state and gradient source.
struct DeviceBlock {
  DeviceArray<float> y, src;
  DeviceArray<int32_t> argmax;
  explicit DeviceBlock(const BlockState& b)
      : y(b.y), src(b.src), argmax(b.argmax.empty() ? std::vector<int32_t>{-1} : b.argmax) {}
  BlockOutputGrad grad(const BlockCase& c) const {
    return c.next_K == 0 ? grad_from_dy(src.get()) : grad_from_next_dcol(src.get(), c.next_K);
  }
};

// A scratch region whose partial-sum slots hold NaN bytes and whose header is zero, as the backend
// leaves it before the first launch.
DeviceArray<unsigned char> fresh_scratch(size_t bytes) {
  DeviceArray<unsigned char> s(bytes);
  s.poison();
  CUDA_CHECK(cudaMemset(s.get(), 0, kScratchHeaderBytes));
  return s;
}

struct EpilogueOut {
  std::vector<float> dpre, db;
};

EpilogueOut run_epilogue(const BlockCase& c, const DeviceBlock& d, DeviceArray<unsigned char>& scratch) {
  DeviceArray<float> dpre(c.pre_count()), db(size_t(c.s.OC));
  dpre.poison();
  db.poison();
  conv_epilogue_backward_gpu(d.grad(c), d.y.get(), d.argmax.get(), dpre.get(), db.get(), c.s, scratch.get(), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return {dpre.download(), db.download()};
}

// Exact dpre, reduction-class db, against the CPU; and a second run on the same scratch gives the same bits.
void check_epilogue(const BlockCase& c, uint64_t seed) {
  SCOPED_TRACE(c.name);
  const BlockState b = make_block(c, seed);
  const std::vector<float> dpre = cpu_dpre(c, b);
  std::vector<float> db(size_t(c.s.OC));
  bias_backward_cpu(dpre.data(), db.data(), c.s.OC, c.s.N * c.P());
  size_t nonzero = 0;
  for (float v : dpre) nonzero += v != 0.0f;
  EXPECT_GT(nonzero, 0u) << "the case exercises nothing";

  const DeviceBlock d(b);
  DeviceArray<unsigned char> scratch = fresh_scratch(conv_epilogue_backward_scratch_bytes(c.s.OC));
  const EpilogueOut got = run_epilogue(c, d, scratch);
  expect_exact(dpre, got.dpre, "dpre");
  expect_close(db, got.db, kReduction, "db");
  const EpilogueOut again = run_epilogue(c, d, scratch);
  expect_exact(got.dpre, again.dpre, "dpre, second run");
  expect_exact(got.db, again.db, "db, second run");
}

struct InputOut {
  std::vector<float> dw, db;
};

InputOut run_input(const BlockCase& c, const DeviceArray<float>& x, const DeviceBlock& d,
                   DeviceArray<unsigned char>& scratch) {
  DeviceArray<float> dw(size_t(c.s.OC) * c.K * c.K), db(size_t(c.s.OC));
  dw.poison();
  db.poison();
  conv_input_backward_gpu(x.get(), d.grad(c), d.y.get(), d.argmax.get(), dw.get(), db.get(), c.H, c.W, c.K, c.s,
                          scratch.get(), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  return {dw.download(), db.download()};
}

// dw and db against conv_backward_cpu fed with the composition's dReLU input; a second run is the same.
void check_input(const BlockCase& c, uint64_t seed) {
  SCOPED_TRACE(c.name);
  const ConvBlockShape& s = c.s;
  const BlockState b = make_block(c, seed);
  const std::vector<float> x = random_vector<float>(size_t(s.N) * c.H * c.W, seed, 0.0, 1.0, 4);  // pixels / 255
  const std::vector<float> w = random_vector<float>(size_t(s.OC) * c.K * c.K, seed, -0.5, 0.5, 5);
  std::vector<float> col(size_t(c.K) * c.K * s.N * c.P()), dpre(c.pre_count()), dw(w.size()), db(size_t(s.OC));
  im2col_cpu(x.data(), col.data(), s.N, 1, c.H, c.W, c.K);
  const std::vector<float> da = cpu_da(c, b);  // conv_backward_cpu applies the ReLU mask itself
  conv_backward_cpu(col.data(), w.data(), b.a.data(), da.data(), dpre.data(), static_cast<float*>(nullptr), dw.data(),
                    db.data(), static_cast<float*>(nullptr), s.N, 1, c.H, c.W, c.K, s.OC);
  size_t nonzero = 0;
  for (float v : dpre) nonzero += v != 0.0f;
  EXPECT_GT(nonzero, 0u) << "the case exercises nothing";

  const DeviceBlock d(b);
  const DeviceArray<float> d_x(x);
  DeviceArray<unsigned char> scratch = fresh_scratch(conv_input_backward_scratch_bytes(s.OC, c.K));
  const InputOut got = run_input(c, d_x, d, scratch);
  expect_close(dw, got.dw, kReduction, "dw");
  expect_close(db, got.db, kReduction, "db");
  const InputOut again = run_input(c, d_x, d, scratch);
  expect_exact(got.dw, again.dw, "dw, second run");
  expect_exact(got.db, again.db, "db, second run");
}

const BlockCase kSeedBlocks[] = {
    {"seed conv3: 3x3 pool -> 1x1 from dh F=64", {128, 64, 3, 3, true}, 0},
    {"seed conv2: 11x11 pool -> 5x5 from conv3's dcol K=3", {128, 64, 11, 11, true}, 3},
    {"keras conv2: 11x11 pool -> 5x5 from dh F=1600", {128, 64, 11, 11, true}, 0},
};
const BlockCase kAwkwardBlocks[] = {
    {"N=1 OC=3 7x5 pool from dcol K=2", {1, 3, 7, 5, true}, 2},
    {"N=3 OC=5 4x4 no pool from dy", {3, 5, 4, 4, false}, 0},
    {"N=2 OC=7 6x5 no pool from dcol K=3", {2, 7, 6, 5, false}, 3},
    {"N=5 OC=9 9x9 pool (floor drops a row and column) from dcol K=4", {5, 9, 9, 9, true}, 4},
    {"N=3 OC=2 2x3 pool -> 1x1 from dcol K=1", {3, 2, 2, 3, true}, 1},
    {"N=7 OC=1 13x11 pool from dy (NP=1001)", {7, 1, 13, 11, true}, 0},
    {"N=50 OC=1 33x31 pool from dy: more columns than 128 chunks of 256", {50, 1, 33, 31, true}, 0},
};
const BlockCase kSeedInput = {
    "seed conv1: 28x28 K=3, 26x26 pool -> 13x13 from conv2's dcol K=3", {128, 32, 26, 26, true}, 3, 28, 28, 3};
const BlockCase kAwkwardInputs[] = {
    {"N=1 9x9 K=2 OC=5 pool from dcol K=2", {1, 5, 8, 8, true}, 2, 9, 9, 2},
    {"N=3 7x10 K=5 OC=4 no pool from dy", {3, 4, 3, 6, false}, 0, 7, 10, 5},
    {"N=2 12x12 K=4 OC=3 9x9 pool from dcol K=3", {2, 3, 9, 9, true}, 3, 12, 12, 4},
    {"N=4 5x6 K=1 OC=6 pool from dy", {4, 6, 5, 6, true}, 0, 5, 6, 1},
    {"N=5 11x13 K=3 OC=7 9x11 pool from dcol K=2", {5, 7, 9, 11, true}, 2, 11, 13, 3},
};

TEST_F(FusedBackwardKernel, EpilogueMatchesCpuOnMnistShapes) {
  const uint64_t seed = test_seed(71);
  CONVNET_SEED_TRACE(seed);
  for (const BlockCase& c : kSeedBlocks) check_epilogue(c, seed);
}

TEST_F(FusedBackwardKernel, EpilogueMatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(72);
  CONVNET_SEED_TRACE(seed);
  for (const BlockCase& c : kAwkwardBlocks) check_epilogue(c, seed);
}

TEST_F(FusedBackwardKernel, InputMatchesCpuOnMnistShape) {
  const uint64_t seed = test_seed(73);
  CONVNET_SEED_TRACE(seed);
  check_input(kSeedInput, seed);
}

TEST_F(FusedBackwardKernel, InputMatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(74);
  CONVNET_SEED_TRACE(seed);
  for (const BlockCase& c : kAwkwardInputs) check_input(c, seed);
}

// Three blocks at most per row: every thread strides, most rows are one chunk.
TEST_F(FusedBackwardKernel, CappedGridStrides) {
  const uint64_t seed = test_seed(75);
  CONVNET_SEED_TRACE(seed);
  ScopedGridCap cap(3);
  for (const BlockCase& c : kAwkwardBlocks) check_epilogue(c, seed);
  check_epilogue({"seed conv2 at N=8", {8, 64, 11, 11, true}, 3}, seed);
  for (const BlockCase& c : kAwkwardInputs) check_input(c, seed);
  check_input({"seed conv1 at N=6", {6, 32, 26, 26, true}, 3, 28, 28, 3}, seed);
}

TEST_F(FusedBackwardKernel, ConvLaunchersAreOneLaunchEach) {
  const BlockCase c = kAwkwardInputs[4];
  const BlockState b = make_block(c, 1);
  const DeviceBlock d(b);
  DeviceArray<float> x(size_t(c.s.N) * c.H * c.W), dpre(c.pre_count()), dw(size_t(c.s.OC) * c.K * c.K),
      db(size_t(c.s.OC));
  x.poison();  // never read where dpre is 0; the count is what is tested here
  DeviceArray<unsigned char> scratch = fresh_scratch(conv_input_backward_scratch_bytes(c.s.OC, c.K));
  uint64_t before = kernel_launch_count();
  conv_epilogue_backward_gpu(d.grad(c), d.y.get(), d.argmax.get(), dpre.get(), db.get(), c.s, scratch.get(), nullptr);
  EXPECT_EQ(kernel_launch_count(), before + 1);
  before = kernel_launch_count();
  conv_input_backward_gpu(x.get(), d.grad(c), d.y.get(), d.argmax.get(), dw.get(), db.get(), c.H, c.W, c.K, c.s,
                          scratch.get(), nullptr);
  EXPECT_EQ(kernel_launch_count(), before + 1);
  CUDA_CHECK(cudaDeviceSynchronize());
}

TEST_F(FusedBackwardKernel, ConvLaunchersRefuseBadShapes) {
  DeviceArray<float> a(64);
  DeviceArray<int32_t> arg(64);
  DeviceArray<unsigned char> scratch = fresh_scratch(conv_input_backward_scratch_bytes(4, 5));
  const ConvBlockShape s{1, 2, 4, 4, true};
  auto epilogue = [&](const BlockOutputGrad& g, const ConvBlockShape& shape) {
    conv_epilogue_backward_gpu(g, a.get(), arg.get(), a.get(), a.get(), shape, scratch.get(), nullptr);
  };
  auto input = [&](int H, int K) {
    conv_input_backward_gpu(a.get(), grad_from_dy(a.get()), a.get(), arg.get(), a.get(), a.get(), H, H, K,
                            ConvBlockShape{1, 2, H - K + 1, H - K + 1, false}, scratch.get(), nullptr);
  };
  const uint64_t before = kernel_launch_count();
  EXPECT_THROW(epilogue(BlockOutputGrad{}, s), std::invalid_argument);                     // no source
  EXPECT_THROW(epilogue(BlockOutputGrad{a.get(), a.get(), 2}, s), std::invalid_argument);  // two sources
  EXPECT_THROW(epilogue(grad_from_next_dcol(a.get(), 3), s), std::invalid_argument);       // K=3 > 2x2 output
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 2, 1, 4, true}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{0, 2, 4, 4, true}), std::invalid_argument);
  EXPECT_THROW(input(8, 6), std::invalid_argument);  // K above 5
  EXPECT_THROW(input(8, 0), std::invalid_argument);
  EXPECT_THROW(conv_input_backward_gpu(a.get(), grad_from_dy(a.get()), a.get(), arg.get(), a.get(), a.get(), 6, 6, 3,
                                       ConvBlockShape{1, 2, 5, 4, false}, scratch.get(), nullptr),
               std::invalid_argument);  // OH != H - K + 1
  EXPECT_EQ(kernel_launch_count(), before);
}

}  // namespace
