// The fused backward kernels and the one-launch optimiser step (kernels/fused_backward.cu,
// fused_optimizer.cu) against compositions of their CPU twins.
//
// conv_epilogue_backward_gpu: col2im_cpu -> maxpool_backward_cpu -> bias_relu_backward_cpu ->
//   bias_backward_cpu. dpre EXACT (same bits: a selection and col2im's sum in its order); db reduction
//   class (double partials added in another order).
// conv_input_backward_gpu: the same up to the ReLU, then conv_backward_cpu's dw and db (float GEMM on
//   the CPU against double sums on the device): reduction class.
// adam_step_gpu / sgd_step_gpu: finite_check_cpu + adam_update_cpu / sgd_update_cpu + the step advance,
//   several steps: p, m, v, vel elementwise (see test_optimizer.cpp: lr_t's double pow may differ by an
//   ulp on a GPU), the DeviceFault record, step and cursor exact; and the three launches they replace
//   (finite_check_gpu, adam/sgd_update_gpu, step_advance_gpu) bit for bit.
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

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "fused_backward.h"
#include "kernel_test.h"
#include "kernels.h"
#include "launch.h"
#include "model.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

class FusedBackwardKernel : public KernelTest {};

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

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
    {"N=2 OC=300 3x3 no pool from dy: more channels than a block has threads", {2, 300, 3, 3, false}, 0},
    {"N=2 OC=3 1x4 no pool (one row) from dcol K=1", {2, 3, 1, 4, false}, 1},
    {"N=3 OC=2 5x1 no pool (one column) from dy", {3, 2, 5, 1, false}, 0},
    {"N=2 OC=3 5x2 pool -> 2x1 (the narrowest plane a pool takes) from dy", {2, 3, 5, 2, true}, 0},
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
  EXPECT_THROW(epilogue(grad_from_next_dcol(a.get(), 3), ConvBlockShape{1, 2, 8, 4, true}),
               std::invalid_argument);  // K=3 fits the 4 rows of the output, not its 2 columns
  EXPECT_THROW(epilogue(grad_from_next_dcol(a.get(), 3), ConvBlockShape{1, 2, 4, 8, true}),
               std::invalid_argument);  // ... nor 2 rows
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 2, 1, 4, true}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{0, 2, 4, 4, true}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 0, 4, 4, false}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 65536, 4, 4, false}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 2, 0, 4, false}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 2, 4, 0, false}), std::invalid_argument);
  EXPECT_THROW(epilogue(grad_from_dy(a.get()), ConvBlockShape{1, 2, 4, 1, true}), std::invalid_argument);
  EXPECT_THROW(input(8, 6), std::invalid_argument);  // K above 5
  EXPECT_THROW(input(8, 0), std::invalid_argument);
  EXPECT_THROW(conv_input_backward_gpu(a.get(), grad_from_dy(a.get()), a.get(), arg.get(), a.get(), a.get(), 6, 6, 3,
                                       ConvBlockShape{1, 2, 5, 4, false}, scratch.get(), nullptr),
               std::invalid_argument);  // OH != H - K + 1
  EXPECT_EQ(kernel_launch_count(), before);
}

// ---- the optimiser step -----------------------------------------------------------------------------

struct OptCase {
  std::string name;
  size_t n;
  bool adam;
  float lr, beta1, beta2, eps;  // Adam
  float momentum;               // SGD
  bool nesterov;
  int64_t start_step;
};
OptCase adam_case(std::string name, size_t n, float lr, int64_t start) {
  return {std::move(name), n, true, lr, 0.9f, 0.999f, 1e-7f, 0.0f, false, start};
}
OptCase sgd_case(std::string name, size_t n, float lr, float momentum, bool nesterov, int64_t start) {
  return {std::move(name), n, false, lr, 0.0f, 0.0f, 0.0f, momentum, nesterov, start};
}

// One step's gradients get these (index, value) pairs; the loss accumulator holds `loss`. With
// clear_record, the host resets the record to "no fault" before the step.
struct StepPlan {
  std::vector<std::pair<size_t, float>> bad;
  double loss;
  bool clear_record = false;
};

constexpr int kBatch = 128;
constexpr int32_t kCursor0 = 256;

// Host state of the CPU twin, and the state's device copies for one implementation.
struct OptState {
  std::vector<float> p, m, v;  // v unused by SGD (m is its velocity)
  DeviceStep step;
  DeviceFault fault;
};
struct DeviceOpt {
  DeviceArray<float> p, m, v;
  DeviceArray<DeviceStep> step;
  DeviceArray<DeviceFault> fault;
  explicit DeviceOpt(const OptState& s)
      : p(s.p), m(s.m), v(s.v), step(std::vector<DeviceStep>{s.step}), fault(std::vector<DeviceFault>{s.fault}) {}
  OptState download() const {
    return {p.download(), m.download(), v.download(), step.download()[0], fault.download()[0]};
  }
};

void cpu_step(const OptCase& c, const std::vector<float>& g, double loss, OptState& s) {
  finite_check_cpu(g.data(), c.n, &loss, s.step.step, &s.fault);
  if (c.adam)
    adam_update_cpu(s.p.data(), g.data(), s.m.data(), s.v.data(), c.n, c.lr, c.beta1, c.beta2, c.eps, s.step.step + 1);
  else
    sgd_update_cpu(s.p.data(), g.data(), s.m.data(), c.n, c.lr, c.momentum, c.nesterov);
  s.step.step += 1;
  s.step.cursor += kBatch;
}

void fused_step(const OptCase& c, const DeviceArray<float>& g, const DeviceArray<double>& loss, DeviceOpt& d,
                DeviceArray<unsigned char>& scratch) {
  if (c.adam)
    adam_step_gpu(d.p.get(), g.get(), d.m.get(), d.v.get(), c.n, c.lr, c.beta1, c.beta2, c.eps, loss.get(),
                  d.step.get(), d.fault.get(), kBatch, scratch.get(), nullptr);
  else
    sgd_step_gpu(d.p.get(), g.get(), d.m.get(), c.n, c.lr, c.momentum, c.nesterov, loss.get(), d.step.get(),
                 d.fault.get(), kBatch, scratch.get(), nullptr);
}

// Today's three launches, for a bit-for-bit comparison.
void three_launch_step(const OptCase& c, const DeviceArray<float>& g, const DeviceArray<double>& loss, DeviceOpt& d) {
  finite_check_gpu(g.get(), c.n, loss.get(), d.step.get(), d.fault.get(), nullptr);
  if (c.adam)
    adam_update_gpu(d.p.get(), g.get(), d.m.get(), d.v.get(), c.n, c.lr, c.beta1, c.beta2, c.eps, d.step.get(),
                    nullptr);
  else
    sgd_update_gpu(d.p.get(), g.get(), d.m.get(), c.n, c.lr, c.momentum, c.nesterov, nullptr);
  step_advance_gpu(d.step.get(), kBatch, nullptr);
}

void expect_same_record(const DeviceFault& ref, const DeviceFault& got, const std::string& what) {
  EXPECT_EQ(ref.step, got.step) << what;
  EXPECT_EQ(ref.grad, got.grad) << what << ": index " << (ref.grad >> 1) << " vs " << (got.grad >> 1);
  EXPECT_EQ(ref.loss, got.loss) << what;
}

// Within `tol` where both are numbers, NaN exactly where the reference has NaN.
void expect_close_or_both_nan(std::vector<float> ref, std::vector<float> got, Tol tol, const std::string& what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::isnan(ref[i]) != std::isnan(got[i])) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", reference " << ref[i];
      return;
    }
    if (std::isnan(ref[i])) ref[i] = got[i] = 0.0f;
  }
  expect_close(ref, got, tol, what);
}

void expect_same_bits(const std::vector<float>& ref, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(ref.size(), got.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i)
    if (std::memcmp(&ref[i], &got[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", three-launch path " << ref[i];
      return;
    }
}

// The fused step against the CPU twin (elementwise; record, step and cursor exact) and against the
// three launches it replaces (bit for bit), step after step; returns the final record.
DeviceFault check_optimizer(const OptCase& c, const std::vector<StepPlan>& plan, const DeviceFault& fault0,
                            uint64_t seed) {
  SCOPED_TRACE(c.name + " (n=" + std::to_string(c.n) + ")");
  const size_t len = std::max<size_t>(c.n, 1);  // device arrays of n = 0 hold one untouched element
  OptState cpu{random_vector<float>(len, seed, -0.5, 0.5), std::vector<float>(len, 0.0f), std::vector<float>(len, 0.0f),
               DeviceStep{c.start_step, kCursor0, 0}, fault0};
  DeviceOpt fused(cpu), three(cpu);
  DeviceArray<float> g(len);
  DeviceArray<double> loss(1);
  DeviceArray<unsigned char> scratch = fresh_scratch(optimizer_step_scratch_bytes());
  for (size_t s = 0; s < plan.size(); ++s) {
    SCOPED_TRACE("step " + std::to_string(s));
    std::vector<float> gh = random_vector<float>(len, seed, -1.0, 1.0, 10 + s);
    for (const auto& [i, v] : plan[s].bad) gh[i] = v;
    if (plan[s].clear_record) {
      cpu.fault = no_device_fault();
      fused.fault.upload({cpu.fault});
      three.fault.upload({cpu.fault});
    }
    cpu_step(c, gh, plan[s].loss, cpu);
    g.upload(gh);
    loss.upload({plan[s].loss});
    fused_step(c, g, loss, fused, scratch);
    three_launch_step(c, g, loss, three);
    CUDA_CHECK(cudaDeviceSynchronize());
    const OptState got = fused.download(), ref3 = three.download();
    expect_close_or_both_nan(cpu.p, got.p, kElementwise, "p");
    expect_close_or_both_nan(cpu.m, got.m, kElementwise, c.adam ? "m" : "velocity");
    if (c.adam) expect_close_or_both_nan(cpu.v, got.v, kElementwise, "v");
    EXPECT_EQ(got.step.step, cpu.step.step);
    EXPECT_EQ(got.step.cursor, cpu.step.cursor);
    expect_same_record(cpu.fault, got.fault, "record vs the CPU");
    expect_same_bits(ref3.p, got.p, "p");
    expect_same_bits(ref3.m, got.m, "m");
    expect_same_bits(ref3.v, got.v, "v");
    expect_same_record(ref3.fault, got.fault, "record vs the three launches");
    if (::testing::Test::HasFailure()) break;
  }
  return cpu.fault;
}

const std::vector<StepPlan> kClean = {{{}, 2.3}, {{}, 2.2}, {{}, 2.1}, {{}, 2.0}};

TEST_F(FusedBackwardKernel, AdamStepMatchesCpuOverSeveralSteps) {
  const uint64_t seed = test_seed(76);
  CONVNET_SEED_TRACE(seed);
  const size_t arena = build_model("seed").arena_size;
  for (const OptCase& c :
       {adam_case("seed arena", arena, 1e-3f, 0), adam_case("n=1", 1, 1e-2f, 0),
        adam_case("n=257, from device step 41", 257, 5e-2f, 41), adam_case("n=4099", 4099, 1e-3f, 3)})
    EXPECT_EQ(check_optimizer(c, kClean, no_device_fault(), seed).step, kNoFaultStep);
}

TEST_F(FusedBackwardKernel, SgdStepMatchesCpuOverSeveralSteps) {
  const uint64_t seed = test_seed(77);
  CONVNET_SEED_TRACE(seed);
  const size_t arena = build_model("seed").arena_size;
  for (const OptCase& c : {sgd_case("seed arena, momentum", arena, 0.01f, 0.9f, false, 0),
                           sgd_case("seed arena, Nesterov", arena, 0.01f, 0.9f, true, 5),
                           sgd_case("plain, n=1001", 1001, 0.05f, 0.0f, false, 0)})
    check_optimizer(c, kClean, no_device_fault(), seed);
}

// A NaN and an Inf gradient in one step: the smaller index is recorded with the step; a later step with
// a smaller bad index and an Inf loss changes nothing. Then a loss that goes Inf with finite gradients.
TEST_F(FusedBackwardKernel, OptimizerStepRecordsTheFirstFault) {
  const uint64_t seed = test_seed(78);
  CONVNET_SEED_TRACE(seed);
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<StepPlan> grads = {{{}, 2.3}, {{{900, kInf}, {700, kNaN}}, 2.1}, {{{3, kInf}}, inf}, {{}, 2.0}};
  const std::vector<StepPlan> loss = {{{}, inf}, {{{0, kNaN}}, 2.0}, {{}, 2.0}};
  for (unsigned cap : {kDefaultGridCap, 3u}) {
    ScopedGridCap grid(cap);
    SCOPED_TRACE("grid cap " + std::to_string(cap));
    const DeviceFault a =
        check_optimizer(adam_case("adam, NaN at 700", 1001, 1e-2f, 7), grads, no_device_fault(), seed);
    EXPECT_EQ(a.step, 8);
    EXPECT_EQ(a.grad, 700u << 1);
    EXPECT_EQ(a.loss, kValueFinite);
    const DeviceFault s = check_optimizer(sgd_case("sgd, Inf at 900", 1001, 0.01f, 0.9f, true, 0),
                                          {{{{900, kInf}, {999, kNaN}}, 2.0}}, no_device_fault(), seed);
    EXPECT_EQ(s.step, 0);
    EXPECT_EQ(s.grad, (900u << 1) | 1u);
    const DeviceFault l =
        check_optimizer(sgd_case("sgd, Inf loss", 300, 0.01f, 0.0f, false, 4), loss, no_device_fault(), seed);
    EXPECT_EQ(l.step, 4);
    EXPECT_EQ(l.grad, kNoFaultGrad);
    EXPECT_EQ(l.loss, kValueInf);
  }
}

// A record from before this run is kept; one from a later step (the step counter set back) is merged
// as finite_check does. n = 0 still records the loss and advances the step.
TEST_F(FusedBackwardKernel, OptimizerStepKeepsAnEarlierRecord) {
  const uint64_t seed = test_seed(79);
  CONVNET_SEED_TRACE(seed);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const DeviceFault earlier{2, 10u << 1, kValueFinite, 0};
  const DeviceFault kept =
      check_optimizer(adam_case("earlier record", 513, 1e-2f, 5), {{{{300, kNaN}}, nan}, {{}, 2.0}}, earlier, seed);
  expect_same_record(earlier, kept, "earlier record");
  const DeviceFault later{100, 5000u << 1, kValueFinite, 0};
  const DeviceFault merged =
      check_optimizer(adam_case("later record", 8000, 1e-2f, 5), {{{{7000, kNaN}}, 2.0}}, later, seed);
  EXPECT_EQ(merged.step, 5);
  EXPECT_EQ(merged.grad, 5000u << 1);
  const DeviceFault empty =
      check_optimizer(sgd_case("n=0", 0, 0.01f, 0.9f, false, 9), {{{}, nan}, {{}, 1.0}}, no_device_fault(), seed);
  EXPECT_EQ(empty.step, 9);
  EXPECT_EQ(empty.loss, kValueNaN);
}

// The fault slot of the scratch is back to "none" after a faulty step: once the record is cleared, a
// clean step records nothing.
TEST_F(FusedBackwardKernel, OptimizerStepLeavesNoStaleFault) {
  const uint64_t seed = test_seed(80);
  CONVNET_SEED_TRACE(seed);
  const std::vector<StepPlan> plan = {{{{700, kNaN}}, 2.0}, {{}, 2.0, true}, {{{40, kInf}}, 2.0, true}};
  const DeviceFault last =
      check_optimizer(adam_case("fault, clear, clean, clear, fault", 1001, 1e-2f, 0), plan, no_device_fault(), seed);
  EXPECT_EQ(last.step, 2);
  EXPECT_EQ(last.grad, (40u << 1) | 1u);
}

TEST_F(FusedBackwardKernel, OptimizerStepIsOneLaunch) {
  const size_t n = 70000;
  DeviceArray<float> p(n), g(n), m(n), v(n);
  for (auto* a : {&p, &g, &m, &v}) CUDA_CHECK(cudaMemset(a->get(), 0, n * sizeof(float)));
  DeviceArray<double> loss(std::vector<double>{1.0});
  DeviceArray<DeviceStep> step(std::vector<DeviceStep>{DeviceStep{0, 0, 0}});
  DeviceArray<DeviceFault> fault(std::vector<DeviceFault>{no_device_fault()});
  DeviceArray<unsigned char> scratch = fresh_scratch(optimizer_step_scratch_bytes());
  for (size_t count : {n, size_t(0)}) {
    uint64_t before = kernel_launch_count();
    adam_step_gpu(p.get(), g.get(), m.get(), v.get(), count, 1e-3f, 0.9f, 0.999f, 1e-7f, loss.get(), step.get(),
                  fault.get(), kBatch, scratch.get(), nullptr);
    EXPECT_EQ(kernel_launch_count(), before + 1);
    before = kernel_launch_count();
    sgd_step_gpu(p.get(), g.get(), m.get(), count, 0.01f, 0.9f, true, loss.get(), step.get(), fault.get(), kBatch,
                 scratch.get(), nullptr);
    EXPECT_EQ(kernel_launch_count(), before + 1);
  }
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(step.download()[0].step, 4);
  EXPECT_EQ(step.download()[0].cursor, 4 * kBatch);
}

}  // namespace
