// The fused forward kernels and the fused classifier head (kernels/fused_forward.cu) against the
// compositions of CPU reference layers they replace.
//
//   conv_input_forward_gpu    vs gather_batch_cpu -> conv_forward_cpu -> maxpool_forward_cpu -> im2col_cpu
//   conv_epilogue_forward_gpu vs bias_relu_forward_cpu -> maxpool_forward_cpu -> im2col_cpu
//   head_train_gpu            vs dropout_forward_cpu -> dense_forward_cpu -> softmax_xent_cpu
//                                -> dense_backward_cpu -> dropout_backward_cpu
//   head_eval_gpu             vs dense_forward_cpu -> softmax_xent_cpu
//
// Tolerances
//   conv_input: x and labels EXACT (one correctly rounded u8 / 255). y and next_col ELEMENTWISE: the
//     kernel sums the K*K products in a fixed fmaf chain, the CPU's BLAS GEMM in its own order. argmax
//     EXACT except in windows whose two candidates lie within that rounding of each other (they are
//     counted and must stay below 0.1% of the windows, so a wrong tie-break rule, which would differ
//     in every all-zero ReLU window, still fails). A second family of inputs removes rounding
//     altogether (binary images, weights on a 2^-10 grid: every sum is exact in any order), and there
//     y, argmax and next_col must match BIT FOR BIT although ties are everywhere.
//   conv_epilogue: EXACT, bit for bit (one float add and a compare per element), also with ties.
//   head: REDUCTION class (1e-4), with the absolute part scaled by the largest magnitude of the
//     tensor: the gradients are O(1/n), and an absolute 1e-4 would hide a missing factor of 2.
//     Loss sum 1e-4 relative; correct and count exact.
// Shapes: the seed net at batch 128 (conv1 28 -> 26 -> 13 with next_col K=3; conv2 epilogue 11 -> 5
// with next_col for conv3; conv3 3 -> 1, F=64) and the keras preset (conv2 epilogue 11 -> 5, F=1600),
// plus n=1, odd planes (the pool's floor drops a row and column), no pool, no next_col, counts that
// are not multiples of the block, capped grids (blocks stride over samples; the head gets 1 or 3
// blocks), n = 1024. Outputs are NaN-poisoned (argmax -1) before every launch; the head's scratch is
// poisoned except for its ScratchHeader. Every launcher call must be exactly one launch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "fused_forward.h"
#include "kernel_test.h"
#include "launch.h"
#include "scratch_header.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

class FusedForwardKernel : public KernelTest {};

constexpr int kSide = 28, kPixels = kSide * kSide, kCount = 300;

// Calls f (one launcher call) and expects exactly one kernel launch from it.
template <typename F>
void expect_one_launch(F&& f, const char* what) {
  const uint64_t before = kernel_launch_count();
  f();
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_EQ(kernel_launch_count(), before + 1) << what << " must be exactly one launch";
}

// expect_close with the absolute tolerance scaled by the reference's largest magnitude.
void expect_close_scaled(const std::vector<float>& ref, const std::vector<float>& got, Tol tol,
                         const std::string& what, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  double scale = 0.0;
  for (float v : ref) scale = std::max(scale, double(std::fabs(v)));
  expect_close(ref, got, tol.atol * std::max(scale, 1e-30), tol.rtol, what, file, line);
}

// ---- first layer ----------------------------------------------------------------------------------------

// A resident image set, its labels and an epoch order, on the host and the device.
struct DataSet {
  std::vector<uint8_t> images, labels;
  std::vector<int32_t> order;
};
// binary: every pixel 0 or 255 (x is 0 or 1 exactly).
DataSet make_data(uint64_t seed, bool binary) {
  DataSet d;
  d.images.resize(size_t(kCount) * kPixels);
  for (size_t i = 0; i < d.images.size(); ++i) {
    const double u = uniform_double(seed, 0, i);
    d.images[i] = binary ? (u < 0.4 ? 255 : 0) : uint8_t(u * 256.0);
  }
  d.labels = random_labels(kCount, 10, seed, 1);
  d.order = distinct_values<int32_t>(kCount, seed, 1.0, 0.0, 2);
  return d;
}
struct DeviceData {
  explicit DeviceData(const DataSet& d) : images(d.images), labels(d.labels), order(d.order), step(1) {}
  void set_cursor(int32_t cursor) { step.upload({DeviceStep{0, cursor, 0}}); }
  DeviceArray<uint8_t> images, labels;
  DeviceArray<int32_t> order;
  DeviceArray<DeviceStep> step;
};

struct ConvInputCase {
  int n, OC, K;
  bool pool;
  int next_K;  // 0: no next_col
  int32_t cursor;
  std::string name() const {
    return "n=" + std::to_string(n) + " OC=" + std::to_string(OC) + " K=" + std::to_string(K) +
           (pool ? " pool" : " no pool") + " next_K=" + std::to_string(next_K) + " cursor=" + std::to_string(cursor);
  }
  int OH() const { return kSide - K + 1; }
  int YH() const { return pool ? OH() / 2 : OH(); }
  size_t y_count() const { return size_t(n) * OC * YH() * YH(); }
  size_t col_count() const {
    const size_t P = size_t(YH() - next_K + 1) * (YH() - next_K + 1);
    return next_K == 0 ? 0 : size_t(OC) * next_K * next_K * n * P;
  }
};

// Outputs of the first layer (CPU or GPU); conv is the CPU's pre-pool conv output.
struct ConvOutputs {
  std::vector<float> x, y, col, conv;
  std::vector<uint8_t> labels;
  std::vector<int32_t> argmax;
};

ConvOutputs conv_input_reference(const DataSet& d, const ConvInputCase& c, const std::vector<float>& w,
                                 const std::vector<float>& b) {
  const int OH = c.OH(), P = OH * OH;
  ConvOutputs r;
  r.x.resize(size_t(c.n) * kPixels);
  r.labels.resize(size_t(c.n));
  gather_batch_cpu(d.images.data(), d.labels.data(), d.order.data(), c.cursor, c.n, r.x.data(), r.labels.data());
  std::vector<float> col1(size_t(c.K) * c.K * c.n * P), pre(size_t(c.OC) * c.n * P);
  r.conv.resize(size_t(c.n) * c.OC * P);
  conv_forward_cpu(r.x.data(), w.data(), b.data(), col1.data(), pre.data(), r.conv.data(), c.n, 1, kSide, kSide, c.K,
                   c.OC);
  r.y = r.conv;
  if (c.pool) {
    r.y.resize(c.y_count());
    r.argmax.resize(c.y_count());
    maxpool_forward_cpu(r.conv.data(), r.y.data(), r.argmax.data(), c.n * c.OC, OH, OH);
  }
  r.col.resize(c.col_count());
  if (c.next_K > 0) im2col_cpu(r.y.data(), r.col.data(), c.n, c.OC, c.YH(), c.YH(), c.next_K);
  return r;
}

ConvOutputs conv_input_run(DeviceData& dev, const ConvInputCase& c, const std::vector<float>& w,
                           const std::vector<float>& b) {
  DeviceArray<float> d_w(w), d_b(b), x(size_t(c.n) * kPixels), y(c.y_count()), col(std::max<size_t>(c.col_count(), 1));
  DeviceArray<uint8_t> labels(size_t(c.n));
  DeviceArray<int32_t> argmax(c.y_count());
  for (auto* a : {&x, &y, &col}) a->poison();
  labels.poison();
  argmax.poison();
  dev.set_cursor(c.cursor);
  expect_one_launch(
      [&] {
        conv_input_forward_gpu(dev.images.get(), dev.labels.get(), dev.order.get(), &dev.step.get()->cursor, c.n,
                               d_w.get(), d_b.get(), c.OC, c.K, c.pool, x.get(), labels.get(), y.get(),
                               c.pool ? argmax.get() : nullptr, c.next_K > 0 ? col.get() : nullptr, c.next_K, nullptr);
      },
      "conv_input_forward_gpu");
  ConvOutputs r{x.download(), y.download(), col.download(), {}, labels.download(), argmax.download()};
  if (c.next_K == 0) r.col.clear();
  if (!c.pool) r.argmax.clear();
  return r;
}

// argmax equal to the CPU's, or naming a window element whose conv output is within the elementwise
// tolerance of the CPU's choice (a tie within rounding). Returns the number of such tie exceptions.
size_t expect_argmax_up_to_rounding(const ConvInputCase& c, const ConvOutputs& ref, const std::vector<int32_t>& got) {
  const size_t OH = size_t(c.OH()), YH = size_t(c.YH());
  size_t ties = 0, bad = 0;
  for (size_t o = 0; o < ref.argmax.size() && bad < 5; ++o) {
    if (got[o] == ref.argmax[o]) continue;
    const size_t plane = o / (YH * YH), yh = o / YH % YH, yw = o % YH;
    const size_t tl = (plane * OH + 2 * yh) * OH + 2 * yw;
    const size_t g = size_t(uint32_t(got[o]));
    const bool in_window = g == tl || g == tl + 1 || g == tl + OH || g == tl + OH + 1;
    const double a = ref.conv[size_t(ref.argmax[o])], v = in_window ? ref.conv[g] : NAN;
    if (in_window && std::fabs(v - a) <= kElementwise.atol + kElementwise.rtol * std::fabs(a)) {
      ++ties;
      continue;
    }
    ++bad;
    ADD_FAILURE() << "argmax[" << o << "]: cpu " << ref.argmax[o] << " (" << a << "), gpu " << got[o];
  }
  return ties;
}

// exact: inputs without rounding (binary images, dyadic weights): everything bit for bit.
void check_conv_input(const DataSet& d, DeviceData& dev, const ConvInputCase& c, uint64_t seed, bool exact) {
  SCOPED_TRACE(c.name() + (exact ? " (exact inputs)" : ""));
  std::vector<float> w = random_vector<float>(size_t(c.OC) * c.K * c.K, seed, -0.5, 0.5, 3);
  std::vector<float> b = random_vector<float>(size_t(c.OC), seed, -0.3, 0.3, 4);
  if (exact)
    for (auto* v : {&w, &b})
      for (float& e : *v) e = std::nearbyint(e * 1024.0f) / 1024.0f;  // sums of <= 784 of them are exact
  const ConvOutputs ref = conv_input_reference(d, c, w, b), got = conv_input_run(dev, c, w, b);
  expect_exact(ref.x, got.x, "x");
  EXPECT_EQ(ref.labels, got.labels) << "batch labels";
  if (exact) {
    expect_exact(ref.y, got.y, "y");
    expect_exact(ref.argmax, got.argmax, "argmax");
    expect_exact(ref.col, got.col, "next_col");
    return;
  }
  expect_close(ref.y, got.y, kElementwise, "y");
  expect_close(ref.col, got.col, kElementwise, "next_col");
  if (!c.pool) return;
  const size_t ties = expect_argmax_up_to_rounding(c, ref, got.argmax);
  EXPECT_LE(ties, ref.argmax.size() / 1000) << "argmax differs in " << ties << " windows, all near-ties";
}

const ConvInputCase kSeedConv1{128, 32, 3, true, 3, 40};
const ConvInputCase kAwkwardConv1[] = {
    {1, 32, 3, true, 3, 0},     // one sample
    {3, 5, 4, true, 2, 297},    // 25x25 -> 12x12 (the floor drops a row and column), batch ends the order
    {2, 3, 5, false, 4, 7},     // no pool, 24x24, next K=4
    {4, 7, 3, true, 0, 100},    // no next_col
    {5, 1, 6, false, 0, 11},    // one channel, no pool, no next_col, 23x23
    {2, 2, 27, true, 0, 12},    // a 2x2 conv output pooled to 1x1
    {2, 4, 1, true, 2, 9},      // the smallest kernel, K=1: 28x28 -> 14x14, next K=2
    {3, 3, 28, false, 0, 20},   // the largest, K=28: a 1x1 conv output
};

TEST_F(FusedForwardKernel, ConvInputMatchesCpuOnSeedShape) {
  const uint64_t seed = test_seed(71);
  CONVNET_SEED_TRACE(seed);
  const DataSet d = make_data(seed, false);
  DeviceData dev(d);
  check_conv_input(d, dev, kSeedConv1, seed, false);
}

TEST_F(FusedForwardKernel, ConvInputMatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(72);
  CONVNET_SEED_TRACE(seed);
  const DataSet d = make_data(seed, false);
  DeviceData dev(d);
  for (const ConvInputCase& c : kAwkwardConv1) check_conv_input(d, dev, c, seed + 1, false);
  ScopedGridCap cap(3);  // 3 blocks: each strides over several samples
  check_conv_input(d, dev, {10, 6, 3, true, 3, 50}, seed + 2, false);
}

// Binary images and dyadic weights: no rounding anywhere, ties in most windows; bit-exact.
TEST_F(FusedForwardKernel, ConvInputIsBitExactWithoutRounding) {
  const uint64_t seed = test_seed(73);
  CONVNET_SEED_TRACE(seed);
  const DataSet d = make_data(seed, true);
  DeviceData dev(d);
  check_conv_input(d, dev, kSeedConv1, seed, true);
  for (const ConvInputCase& c : kAwkwardConv1) check_conv_input(d, dev, c, seed + 1, true);
  ScopedGridCap cap(2);
  check_conv_input(d, dev, {7, 4, 3, true, 3, 3}, seed + 2, true);
}

// ---- epilogue of an im2col + GEMM convolution --------------------------------------------------------

struct EpilogueCase {
  int N, OC, OH, OW;
  bool pool;
  int next_K;  // 0: no next_col
  std::string name() const {
    return "N=" + std::to_string(N) + " OC=" + std::to_string(OC) + " " + std::to_string(OH) + "x" +
           std::to_string(OW) + (pool ? " pool" : " no pool") + " next_K=" + std::to_string(next_K);
  }
  int YH() const { return pool ? OH / 2 : OH; }
  int YW() const { return pool ? OW / 2 : OW; }
  size_t y_count() const { return size_t(N) * OC * YH() * YW(); }
  size_t col_count() const {
    return next_K == 0 ? 0 : size_t(OC) * next_K * next_K * N * (YH() - next_K + 1) * (YW() - next_K + 1);
  }
};

// ties: pre and bias integers, so many windows hold equal values.
void check_epilogue(const EpilogueCase& c, uint64_t seed, bool ties) {
  SCOPED_TRACE(c.name() + (ties ? " (ties)" : ""));
  const size_t P = size_t(c.OH) * c.OW;
  std::vector<float> pre = random_vector<float>(size_t(c.OC) * c.N * P, seed, -1.0, 1.0, 5);
  std::vector<float> bias = random_vector<float>(size_t(c.OC), seed, -0.2, 0.2, 6);
  if (ties) {
    for (float& v : pre) v = std::nearbyint(v * 2.0f);
    for (float& v : bias) v = std::nearbyint(v * 5.0f);
  }
  std::vector<float> conv(size_t(c.N) * c.OC * P), col(c.col_count());
  std::vector<int32_t> argmax;
  bias_relu_forward_cpu(pre.data(), bias.data(), conv.data(), c.N, c.OC, int(P));
  std::vector<float> y = conv;
  if (c.pool) {
    y.resize(c.y_count());
    argmax.resize(c.y_count());
    maxpool_forward_cpu(conv.data(), y.data(), argmax.data(), c.N * c.OC, c.OH, c.OW);
  }
  if (c.next_K > 0) im2col_cpu(y.data(), col.data(), c.N, c.OC, c.YH(), c.YW(), c.next_K);

  DeviceArray<float> d_pre(pre), d_bias(bias), d_y(c.y_count()), d_col(std::max<size_t>(c.col_count(), 1));
  DeviceArray<int32_t> d_argmax(c.y_count());
  d_y.poison(), d_col.poison(), d_argmax.poison();
  expect_one_launch(
      [&] {
        conv_epilogue_forward_gpu(d_pre.get(), d_bias.get(), c.N, c.OC, c.OH, c.OW, c.pool, d_y.get(),
                                  c.pool ? d_argmax.get() : nullptr, c.next_K > 0 ? d_col.get() : nullptr, c.next_K,
                                  nullptr);
      },
      "conv_epilogue_forward_gpu");
  expect_exact(y, d_y.download(), "y");
  if (c.pool) expect_exact(argmax, d_argmax.download(), "argmax");
  if (c.next_K > 0) expect_exact(col, d_col.download(), "next_col");
}

const EpilogueCase kMnistEpilogues[] = {
    {128, 64, 11, 11, true, 3},  // seed conv2: 11 -> 5, im2col for conv3
    {128, 64, 3, 3, true, 0},    // seed conv3: 3 -> 1, flat 64 for the head
    {128, 64, 11, 11, true, 0},  // keras conv2: 11 -> 5, flat 1600 for the head
    {128, 96, 3, 3, true, 0},    // seed96 conv3
};
const EpilogueCase kAwkwardEpilogues[] = {
    {1, 64, 11, 11, true, 3}, {3, 5, 7, 9, true, 2}, {2, 3, 5, 6, false, 3},
    {5, 7, 4, 4, false, 0},   {1, 1, 2, 3, true, 0}, {2, 3, 9, 9, true, 4},
    // the smallest planes a conv can leave: 1x1, a single row, a single column; rows != columns for next_K
    {3, 2, 1, 1, false, 0},   {2, 3, 1, 4, false, 0}, {2, 2, 5, 1, false, 0}, {2, 3, 4, 7, false, 3},
    // next_K = 1, the smallest next kernel
    {2, 3, 4, 5, true, 1},
};

TEST_F(FusedForwardKernel, ConvEpilogueIsBitExactOnMnistShapes) {
  const uint64_t seed = test_seed(74);
  CONVNET_SEED_TRACE(seed);
  for (const EpilogueCase& c : kMnistEpilogues) check_epilogue(c, seed, false);
  check_epilogue(kMnistEpilogues[0], seed + 1, true);
}

TEST_F(FusedForwardKernel, ConvEpilogueIsBitExactOnAwkwardShapes) {
  const uint64_t seed = test_seed(75);
  CONVNET_SEED_TRACE(seed);
  for (const EpilogueCase& c : kAwkwardEpilogues) {
    check_epilogue(c, seed, false);
    check_epilogue(c, seed + 1, true);
  }
  ScopedGridCap cap(2);
  check_epilogue({7, 5, 11, 11, true, 3}, seed + 2, false);
  check_epilogue({4, 3, 6, 5, false, 2}, seed + 3, true);
}

TEST_F(FusedForwardKernel, ConvLaunchersRejectBadShapes) {
  DeviceArray<float> f(4096);
  DeviceArray<int32_t> a(4096);
  DeviceArray<uint8_t> u(kPixels);
  DeviceArray<int32_t> order(1);
  EXPECT_THROW(conv_epilogue_forward_gpu(f.get(), f.get(), 1, 1, 1, 1, true, f.get(), a.get(), nullptr, 0, nullptr),
               std::invalid_argument);  // pool of a 1x1 plane is empty
  EXPECT_THROW(conv_epilogue_forward_gpu(f.get(), f.get(), 1, 1, 4, 4, true, f.get(), nullptr, nullptr, 0, nullptr),
               std::invalid_argument);  // pool without argmax
  EXPECT_THROW(conv_epilogue_forward_gpu(f.get(), f.get(), 1, 1, 4, 4, true, f.get(), a.get(), f.get(), 3, nullptr),
               std::invalid_argument);  // next K=3 does not fit 2x2
  // Each bound alone (a bound dropped from a check, or two checks joined by && instead of ||, fails here).
  auto epilogue = [&](int N, int OC, int OH, int OW, bool pool, int next_K) {
    conv_epilogue_forward_gpu(f.get(), f.get(), N, OC, OH, OW, pool, f.get(), a.get(), next_K ? f.get() : nullptr,
                              next_K, nullptr);
  };
  EXPECT_THROW(epilogue(-1, 1, 4, 4, false, 0), std::invalid_argument);
  EXPECT_THROW(epilogue(1, 0, 4, 4, false, 0), std::invalid_argument);
  EXPECT_THROW(epilogue(1, 1, 0, 4, false, 0), std::invalid_argument);
  EXPECT_THROW(epilogue(1, 1, 4, 0, false, 0), std::invalid_argument);
  EXPECT_THROW(epilogue(1, 1, -1, 4, false, 0), std::invalid_argument);  // not "too many elements"
  EXPECT_THROW(epilogue(1, 1, 4, -1, false, 0), std::invalid_argument);
  EXPECT_THROW(epilogue(1, 1, 1, 4, true, 0), std::invalid_argument);  // pooled rows: 0, columns: 2
  EXPECT_THROW(epilogue(1, 1, 4, 1, true, 0), std::invalid_argument);  // pooled rows: 2, columns: 0
  EXPECT_THROW(epilogue(1, 1, 8, 4, true, 3), std::invalid_argument);  // next K=3 fits 4 rows, not 2 columns
  EXPECT_THROW(epilogue(1, 1, 4, 8, true, 3), std::invalid_argument);  // ... nor 2 rows
  EXPECT_THROW(epilogue(1, 1, 4, 4, false, -1), std::invalid_argument);
  auto input = [&](int n, int OC, int K) {
    conv_input_forward_gpu(u.get(), u.get(), order.get(), order.get(), n, f.get(), f.get(), OC, K, false, f.get(),
                           u.get(), f.get(), nullptr, nullptr, 0, nullptr);
  };
  EXPECT_THROW(input(1, 1, 29), std::invalid_argument);  // K larger than the image
  EXPECT_THROW(input(1, 1, 0), std::invalid_argument);
  EXPECT_THROW(input(1, 0, 3), std::invalid_argument);
  EXPECT_THROW(input(-1, 1, 3), std::invalid_argument);
  const uint64_t before = kernel_launch_count();
  conv_epilogue_forward_gpu(f.get(), f.get(), 0, 1, 4, 4, true, f.get(), a.get(), f.get(), 2, nullptr);
  conv_input_forward_gpu(u.get(), u.get(), order.get(), order.get(), 0, f.get(), f.get(), 1, 3, true, f.get(),
                         u.get(), f.get(), a.get(), nullptr, 0, nullptr);
  EXPECT_EQ(kernel_launch_count(), before) << "an empty batch launches nothing";
}

// ---- classifier head ------------------------------------------------------------------------------------

struct HeadCase {
  int n, F;
  float rate;  // 0: no dropout layer
  std::string name() const {
    return "n=" + std::to_string(n) + " F=" + std::to_string(F) + " rate=" + std::to_string(rate);
  }
};

constexpr uint64_t kDropoutSeed = 0xD80F;
constexpr int64_t kStep = 7;
constexpr uint32_t kLayer = 6;

struct HeadData {
  std::vector<float> h, w, b;
  std::vector<uint8_t> labels;
};
HeadData make_head(const HeadCase& c, uint64_t seed) {
  const double a = 2.0 / std::sqrt(double(c.F));  // logits O(1) for any F
  HeadData d{random_vector<float>(size_t(c.n) * c.F, seed, -1.0, 2.0, 7),
             random_vector<float>(size_t(kHeadClasses) * c.F, seed, -a, a, 8),
             random_vector<float>(kHeadClasses, seed, -0.5, 0.5, 9), random_labels(size_t(c.n), kHeadClasses, seed, 10)};
  for (float& v : d.h) v = std::max(v, 0.0f);  // the conv stack's output is post-ReLU: many zeros
  return d;
}

struct HeadResult {
  std::vector<float> dw, db, dh, probs;
  DeviceMetrics metrics{};
};

HeadResult head_reference(const HeadCase& c, const HeadData& d) {
  const size_t nF = size_t(c.n) * c.F, nC = size_t(c.n) * kHeadClasses;
  std::vector<float> hd(nF), logits(nC), dlogits(nC), dhd(nF);
  HeadResult r{std::vector<float>(size_t(kHeadClasses) * c.F), std::vector<float>(kHeadClasses),
               std::vector<float>(nF), std::vector<float>(nC), {}};
  dropout_forward_cpu(d.h.data(), hd.data(), nF, c.rate, kDropoutSeed, kStep, kLayer);
  dense_forward_cpu(hd.data(), d.w.data(), d.b.data(), logits.data(), c.n, c.F, kHeadClasses);
  const XentResult x = softmax_xent_cpu(logits.data(), d.labels.data(), dlogits.data(), r.probs.data(), c.n, kHeadClasses);
  dense_backward_cpu(hd.data(), d.w.data(), dlogits.data(), r.dw.data(), r.db.data(), dhd.data(), c.n, c.F,
                     kHeadClasses);
  dropout_backward_cpu(dhd.data(), r.dh.data(), nF, c.rate, kDropoutSeed, kStep, kLayer);
  r.metrics = DeviceMetrics{x.loss_sum, x.correct, c.n};
  return r;
}

// The head's inputs on the device, and a scratch that is poisoned except for its ScratchHeader.
struct DeviceHead {
  DeviceHead(const HeadCase& c, const HeadData& d)
      : h(d.h), w(d.w), b(d.b), labels(d.labels), step(std::vector<DeviceStep>{DeviceStep{kStep, 0, 0}}),
        scratch(head_scratch_bytes(c.n, c.F)) {
    scratch.poison();
    CUDA_CHECK(cudaMemset(scratch.get(), 0, kScratchHeaderBytes));
  }
  unsigned counter() const {
    ScratchHeader v{};
    CUDA_CHECK(cudaMemcpy(&v, scratch.get(), sizeof v, cudaMemcpyDeviceToHost));
    return v.ticket;
  }
  DeviceArray<float> h, w, b;
  DeviceArray<uint8_t> labels;
  DeviceArray<DeviceStep> step;
  DeviceArray<unsigned char> scratch;
};

HeadResult head_train_run(const HeadCase& c, DeviceHead& dev, DeviceMetrics start = DeviceMetrics{0.0, 0, 0}) {
  const size_t nF = size_t(c.n) * c.F;
  DeviceArray<float> dw(size_t(kHeadClasses) * c.F), db(kHeadClasses), dh(nF);
  DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{start});
  dw.poison(), db.poison(), dh.poison();
  expect_one_launch(
      [&] {
        head_train_gpu(dev.h.get(), c.F, c.rate, kDropoutSeed, dev.step.get(), kLayer, dev.w.get(), dev.b.get(),
                       dev.labels.get(), c.n, metrics.get(), dw.get(), db.get(), dh.get(), dev.scratch.get(), nullptr);
      },
      "head_train_gpu");
  EXPECT_EQ(dev.counter(), 0u) << "the last block must leave the arrival counter at zero";
  return HeadResult{dw.download(), db.download(), dh.download(), {}, metrics.download()[0]};
}

void expect_metrics(const DeviceMetrics& ref, const DeviceMetrics& got) {
  EXPECT_NEAR(got.loss_sum, ref.loss_sum, 1e-4 * std::fabs(ref.loss_sum)) << "loss sum";
  EXPECT_EQ(got.correct, ref.correct) << "correct count";
  EXPECT_EQ(got.count, ref.count) << "sample count";
}

void check_head_train(const HeadCase& c, uint64_t seed) {
  SCOPED_TRACE(c.name());
  const HeadData d = make_head(c, seed);
  const HeadResult ref = head_reference(c, d);
  DeviceHead dev(c, d);
  const HeadResult got = head_train_run(c, dev);
  expect_close_scaled(ref.dw, got.dw, kReduction, "dw");
  expect_close_scaled(ref.db, got.db, kReduction, "db");
  expect_close_scaled(ref.dh, got.dh, kReduction, "dh");
  expect_metrics(ref.metrics, got.metrics);
}

TEST_F(FusedForwardKernel, HeadTrainMatchesCpuOnMnistShapes) {
  const uint64_t seed = test_seed(76);
  CONVNET_SEED_TRACE(seed);
  check_head_train({128, 64, 0.6f}, seed);    // seed net: conv3 1x1x64, dropout 0.6
  check_head_train({128, 1600, 0.5f}, seed);  // keras preset: 5x5x64, dropout 0.5
  check_head_train({128, 64, 0.0f}, seed);    // no dropout layer
}

TEST_F(FusedForwardKernel, HeadTrainMatchesCpuOnAwkwardShapes) {
  const uint64_t seed = test_seed(77);
  CONVNET_SEED_TRACE(seed);
  for (const HeadCase& c : {HeadCase{1, 64, 0.6f}, HeadCase{1, 1, 0.0f}, HeadCase{37, 5, 0.3f},
                            HeadCase{9, 300, 0.5f}, HeadCase{1024, 64, 0.6f}, HeadCase{3, 2500, 0.0f}})
    check_head_train(c, seed);
  for (unsigned cap : {1u, 3u}) {  // one block (it is its own last block); three blocks of 13 samples
    SCOPED_TRACE("grid cap " + std::to_string(cap));
    ScopedGridCap scoped(cap);
    check_head_train({37, 70, 0.5f}, seed + 1);
  }
}

// Fixed-order reductions: two runs are bit-identical (dw, db, dh and the double loss sum), and the
// metrics are ADDED to what the accumulator held.
TEST_F(FusedForwardKernel, HeadTrainIsBitIdenticalRunToRunAndAccumulates) {
  const uint64_t seed = test_seed(78);
  CONVNET_SEED_TRACE(seed);
  const HeadCase c{300, 200, 0.6f};
  const HeadData d = make_head(c, seed);
  DeviceHead dev(c, d);
  const HeadResult a = head_train_run(c, dev), b = head_train_run(c, dev);
  expect_exact(a.dw, b.dw, "dw, second run");
  expect_exact(a.db, b.db, "db, second run");
  expect_exact(a.dh, b.dh, "dh, second run");
  EXPECT_EQ(std::memcmp(&a.metrics.loss_sum, &b.metrics.loss_sum, sizeof(double)), 0);
  const DeviceMetrics start{10.5, 3, 1000};
  const HeadResult more = head_train_run(c, dev, start);
  EXPECT_EQ(more.metrics.loss_sum, start.loss_sum + a.metrics.loss_sum);
  EXPECT_EQ(more.metrics.correct, start.correct + a.metrics.correct);
  EXPECT_EQ(more.metrics.count, start.count + c.n);
}

void check_head_eval(const HeadCase& c, uint64_t seed) {
  SCOPED_TRACE(c.name());
  const HeadData d = make_head(c, seed);
  const HeadResult ref = head_reference({c.n, c.F, 0.0f}, d);  // inference: no dropout
  DeviceHead dev(c, d);
  DeviceArray<float> probs(size_t(c.n) * kHeadClasses);
  for (bool with_probs : {true, false}) {
    SCOPED_TRACE(with_probs ? "with probs" : "probs null");
    DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{DeviceMetrics{0.0, 0, 0}});
    probs.poison();
    expect_one_launch(
        [&] {
          head_eval_gpu(dev.h.get(), c.F, dev.w.get(), dev.b.get(), dev.labels.get(), c.n,
                        with_probs ? probs.get() : nullptr, metrics.get(), dev.scratch.get(), nullptr);
        },
        "head_eval_gpu");
    EXPECT_EQ(dev.counter(), 0u);
    if (with_probs) expect_close(ref.probs, probs.download(), kReduction, "probs");
    expect_metrics(ref.metrics, metrics.download()[0]);
  }
}

TEST_F(FusedForwardKernel, HeadEvalMatchesCpu) {
  const uint64_t seed = test_seed(79);
  CONVNET_SEED_TRACE(seed);
  for (const HeadCase& c : {HeadCase{128, 64, 0}, HeadCase{128, 1600, 0}, HeadCase{1, 64, 0}, HeadCase{1000, 64, 0},
                            HeadCase{13, 3, 0}})
    check_head_eval(c, seed);
  ScopedGridCap cap(2);
  check_head_eval({37, 70, 0}, seed + 1);
}

// Evaluation, training, evaluation, training on one scratch (the backend carves one): all keep working.
TEST_F(FusedForwardKernel, HeadTrainAndEvalShareOneScratch) {
  const uint64_t seed = test_seed(80);
  CONVNET_SEED_TRACE(seed);
  const HeadCase c{64, 64, 0.6f};
  const HeadData d = make_head(c, seed);
  DeviceHead dev(c, d);
  const DeviceMetrics eval_ref = head_reference({c.n, c.F, 0.0f}, d).metrics;
  auto evaluate = [&] {
    DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{DeviceMetrics{0.0, 0, 0}});
    head_eval_gpu(dev.h.get(), c.F, dev.w.get(), dev.b.get(), dev.labels.get(), c.n, nullptr, metrics.get(),
                  dev.scratch.get(), nullptr);
    expect_metrics(eval_ref, metrics.download()[0]);
  };
  evaluate();
  const HeadResult ref = head_reference(c, d), got = head_train_run(c, dev);
  expect_close_scaled(ref.dw, got.dw, kReduction, "dw");
  evaluate();
  const HeadResult again = head_train_run(c, dev);
  expect_exact(got.dw, again.dw, "dw after an evaluation in between");
}

TEST_F(FusedForwardKernel, HeadRejectsBadArguments) {
  const HeadCase c{4, 8, 0.5f};
  const HeadData d = make_head(c, 1);
  DeviceHead dev(c, d);
  DeviceArray<float> f(64);
  DeviceArray<DeviceMetrics> m(1);
  auto train = [&](int n, int F, float rate, const DeviceStep* step, void* scratch) {
    head_train_gpu(dev.h.get(), F, rate, 1, step, 0, dev.w.get(), dev.b.get(), dev.labels.get(), n, m.get(), f.get(),
                   f.get(), f.get(), scratch, nullptr);
  };
  const uint64_t before = kernel_launch_count();
  EXPECT_THROW(train(0, 8, 0.5f, dev.step.get(), dev.scratch.get()), std::invalid_argument);
  EXPECT_THROW(train(4, 0, 0.5f, dev.step.get(), dev.scratch.get()), std::invalid_argument);
  EXPECT_THROW(train(4, 8, 1.0f, dev.step.get(), dev.scratch.get()), std::invalid_argument);
  EXPECT_THROW(train(4, 8, 0.5f, nullptr, dev.scratch.get()), std::invalid_argument);
  EXPECT_THROW(train(4, 8, 0.5f, dev.step.get(), dev.scratch.get() + 4), std::invalid_argument);  // misaligned
  EXPECT_THROW(head_eval_gpu(dev.h.get(), 8, dev.w.get(), dev.b.get(), dev.labels.get(), 4, nullptr, m.get(), nullptr,
                             nullptr),
               std::invalid_argument);
  EXPECT_THROW(head_scratch_bytes(0, 8), std::invalid_argument);
  EXPECT_EQ(kernel_launch_count(), before);
  // Without dropout the head needs no device step: accepted, and it runs (into zeroed buffers of the
  // real sizes, so compute-sanitizer's initcheck has nothing to report: dw (10, F), db (10), dh (n, F)).
  DeviceArray<float> dw{std::vector<float>(kHeadClasses * 8)}, db{std::vector<float>(kHeadClasses)},
      dh{std::vector<float>(4 * 8)};
  DeviceArray<DeviceMetrics> zeroed{std::vector<DeviceMetrics>(1)};
  EXPECT_NO_THROW(head_train_gpu(dev.h.get(), 8, 0.0f, 1, nullptr, 0, dev.w.get(), dev.b.get(), dev.labels.get(), 4,
                                 zeroed.get(), dw.get(), db.get(), dh.get(), dev.scratch.get(), nullptr));
  CUDA_CHECK(cudaDeviceSynchronize());
  EXPECT_GT(kernel_launch_count(), before);
  EXPECT_LT(head_scratch_bytes(128, 64), head_scratch_bytes(1024, 64));
  EXPECT_LT(head_scratch_bytes(128, 64), head_scratch_bytes(128, 1600));
}

}  // namespace
