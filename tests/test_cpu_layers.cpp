// Tests of the CPU reference layers (host/cpu_layers.h) other than the gradient checks
// (test_gradcheck.cpp):
//   - the batch gather and its normalisation, by hand;
//   - tiny cases whose expected numbers are written here, worked by hand or in Python (never
//     produced by the code under test);
//   - im2col+GEMM convolution against a direct nested-loop convolution written in this file, on
//     awkward shapes and the real MNIST shapes;
//   - dropout statistics, exact scaling and mask reproducibility;
//   - the float instantiation (what the trainer runs) against the double one on the real shapes;
//   - the argument checks, each bound broken alone, and the divergence check's record across steps.
// Outputs are poisoned with NaN before each call, so an element the code forgets to write fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "idx.h"
#include "rng.h"
#include "test_util.h"

namespace convnet {
namespace {

using test::convert;
using test::expect_close;
using test::kExact;
using test::kReduction;
using test::poisoned;
using test::random_vector;
using Vec = std::vector<double>;
using VecF = std::vector<float>;

// Double results computed in a different order than the code under test (direct loops versus
// BLAS): they agree to a few ulps of the sum of |terms|, far inside this.
constexpr test::Tol kDoubleOrder{1e-12, 1e-10};

// ---- gather + normalise ------------------------------------------------------------------------

TEST(CpuLayers, GatherBatchHandPicksRowsFromTheCursorAndDividesBy255) {
  // Three 784-pixel images, every pixel of image k equal to 10 * (k + 1) except pixel 0, which is
  // 255 - k, and the last pixel, which is k. order = {2, 0, 1, 2}; cursor 1 takes order[1..2] = {0, 1}.
  std::vector<uint8_t> images(3 * kImagePixels);
  for (int k = 0; k < 3; ++k) {
    uint8_t* img = images.data() + k * kImagePixels;
    std::fill(img, img + kImagePixels, static_cast<uint8_t>(10 * (k + 1)));
    img[0] = static_cast<uint8_t>(255 - k);
    img[kImagePixels - 1] = static_cast<uint8_t>(k);
  }
  const std::vector<uint8_t> labels = {7, 8, 9};
  const std::vector<int32_t> order = {2, 0, 1, 2};
  VecF x = poisoned<float>(2 * kImagePixels + 1);  // one more: a write past the batch stays NaN
  std::vector<uint8_t> batch_labels = {99, 99, 99};
  gather_batch_cpu(images.data(), labels.data(), order.data(), 1, 2, x.data(), batch_labels.data());
  for (int b = 0; b < 2; ++b) {
    const int k = order[1 + b];
    SCOPED_TRACE("batch row " + std::to_string(b) + " = image " + std::to_string(k));
    EXPECT_EQ(x[b * kImagePixels], (255 - k) / 255.0f);
    EXPECT_EQ(x[b * kImagePixels + 1], 10 * (k + 1) / 255.0f);
    EXPECT_EQ(x[b * kImagePixels + 400], 10 * (k + 1) / 255.0f);
    EXPECT_EQ(x[(b + 1) * kImagePixels - 1], k / 255.0f);
  }
  EXPECT_TRUE(std::isnan(x[2 * kImagePixels])) << "wrote past the batch";
  EXPECT_EQ(batch_labels, (std::vector<uint8_t>{7, 8, 99}));
}

// ---- GEMM --------------------------------------------------------------------------------------

TEST(CpuLayers, GemmAllTransposesMatchLoop) {
  const uint64_t seed = test::test_seed(11);
  CONVNET_SEED_TRACE(seed);
  const int M = 5, N = 7, K = 3;
  const Vec A = random_vector<double>(M * K, seed, -1, 1, 0), B = random_vector<double>(K * N, seed, -1, 1, 1);
  const Vec C0 = random_vector<double>(M * N, seed, -1, 1, 2);
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE("trans_a " + std::to_string(ta) + " trans_b " + std::to_string(tb));
      // op(A)(i,k) and op(B)(k,j) read from the stored layouts the header documents.
      auto a = [&](int i, int k) { return ta ? A[size_t(k) * M + i] : A[size_t(i) * K + k]; };
      auto b = [&](int k, int j) { return tb ? B[size_t(j) * K + k] : B[size_t(k) * N + j]; };
      Vec ref(M * N);
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
          double s = 0;
          for (int k = 0; k < K; ++k) s += a(i, k) * b(k, j);
          ref[size_t(i) * N + j] = 0.5 * s - 2.0 * C0[size_t(i) * N + j];
        }
      Vec got = C0;
      gemm_cpu<double>(ta, tb, M, N, K, 0.5, A.data(), B.data(), -2.0, got.data());
      expect_close(ref, got, kDoubleOrder, "gemm alpha/beta");
      // beta = 0 must overwrite, not scale, whatever C held (NaN * 0 would be NaN).
      for (double& r : ref) r = 0;
      for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j)
          for (int k = 0; k < K; ++k) ref[size_t(i) * N + j] += a(i, k) * b(k, j);
      got = poisoned<double>(M * N);
      gemm_cpu<double>(ta, tb, M, N, K, 1.0, A.data(), B.data(), 0.0, got.data());
      expect_close(ref, got, kDoubleOrder, "gemm beta 0 over NaN");
    }
}

// ---- im2col / col2im ---------------------------------------------------------------------------

TEST(CpuLayers, Im2colHand1x1x3x3K2) {
  // x = 1 2 3 / 4 5 6 / 7 8 9; 2x2 output; row r = ki*2 + kj lists x[oh+ki][ow+kj] over (oh, ow).
  const Vec x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Vec expect = {1, 2, 4, 5,   // (ki, kj) = (0, 0)
                      2, 3, 5, 6,   // (0, 1)
                      4, 5, 7, 8,   // (1, 0)
                      5, 6, 8, 9};  // (1, 1)
  Vec col = poisoned<double>(16);
  im2col_cpu(x.data(), col.data(), 1, 1, 3, 3, 2);
  expect_close(expect, col, kExact, "im2col");
}

TEST(CpuLayers, Im2colHandTwoImagesTwoChannels) {
  // N=2, C=2, 2x2 input, K=1: col is (C, N*P) = the channel planes of both images side by side.
  const Vec x = {1, 2, 3, 4, 5, 6, 7, 8,   // image 0: channel 0, channel 1
                 9, 10, 11, 12, 13, 14, 15, 16};
  const Vec expect = {1, 2, 3, 4, 9, 10, 11, 12,     // channel 0: n=0 then n=1
                      5, 6, 7, 8, 13, 14, 15, 16};   // channel 1
  Vec col = poisoned<double>(16);
  im2col_cpu(x.data(), col.data(), 2, 2, 2, 2, 1);
  expect_close(expect, col, kExact, "im2col N=2 C=2");
}

TEST(CpuLayers, Col2imHandOnes) {
  // dcol of ones: dx counts the 2x2 windows covering each pixel of the 3x3 input.
  const Vec dcol(16, 1.0);
  const Vec expect = {1, 2, 1, 2, 4, 2, 1, 2, 1};
  Vec dx = poisoned<double>(9);
  col2im_cpu(dcol.data(), dx.data(), 1, 1, 3, 3, 2);
  expect_close(expect, dx, kExact, "col2im");
}

TEST(CpuLayers, Col2imIsAdjointOfIm2col) {
  // <im2col(x), d> == <x, col2im(d)> for all x, d: col2im is the transpose of the copy.
  const uint64_t seed = test::test_seed(12);
  CONVNET_SEED_TRACE(seed);
  const int N = 2, C = 3, H = 7, W = 4, K = 3;
  const size_t xs = size_t(N) * C * H * W, cs = size_t(C) * K * K * N * (H - K + 1) * (W - K + 1);
  const Vec x = random_vector<double>(xs, seed, -1, 1, 0), d = random_vector<double>(cs, seed, -1, 1, 1);
  Vec col = poisoned<double>(cs), dx = poisoned<double>(xs);
  im2col_cpu(x.data(), col.data(), N, C, H, W, K);
  col2im_cpu(d.data(), dx.data(), N, C, H, W, K);
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < cs; ++i) lhs += col[i] * d[i];
  for (size_t i = 0; i < xs; ++i) rhs += x[i] * dx[i];
  EXPECT_NEAR(lhs, rhs, 1e-12 * cs);
}

// ---- bias + ReLU -------------------------------------------------------------------------------

TEST(CpuLayers, BiasReluHandLayoutAndNaN) {
  // N=2, OC=2, P=2. pre (OC, N*P) rows: oc0 = [1 -3 | 2 -4], oc1 = [-1 5 | NaN 0]; bias [0.5, 1].
  // y (N, OC, P): n0 = [1.5 0 | 0 6], n1 = [2.5 0 | NaN 1]. A NaN input stays NaN.
  const double nan = NAN;
  const Vec pre = {1, -3, 2, -4, -1, 5, nan, 0}, bias = {0.5, 1};
  Vec y = poisoned<double>(8);
  bias_relu_forward_cpu(pre.data(), bias.data(), y.data(), 2, 2, 2);
  const Vec expect = {1.5, 0, 0, 6, 2.5, 0, nan, 1};
  for (size_t i = 0; i < 8; ++i)
    if (std::isnan(expect[i]))
      EXPECT_TRUE(std::isnan(y[i])) << i;
    else
      EXPECT_EQ(expect[i], y[i]) << i;
  // Backward passes dy where y > 0, transposed back to (OC, N*P).
  const Vec y2 = {1.5, 0, 0, 6, 2.5, 0, 0, 1}, dy = {10, 20, 30, 40, 50, 60, 70, 80};
  Vec dpre = poisoned<double>(8);
  bias_relu_backward_cpu(y2.data(), dy.data(), dpre.data(), 2, 2, 2);
  expect_close(Vec{10, 0, 50, 0, 0, 40, 0, 80}, dpre, kExact, "bias_relu_backward");
  Vec db = poisoned<double>(2);
  bias_backward_cpu(dpre.data(), db.data(), 2, 4);
  expect_close(Vec{60, 120}, db, kExact, "bias_backward");
}

// ---- max-pool ----------------------------------------------------------------------------------

TEST(CpuLayers, MaxPoolHandOddSizesAndTies) {
  // Two 3x5 planes -> 1x2 each (floor drops row 2 and column 4, which hold the largest values).
  // Plane 0: window 0 = [1 3 / 3 2] ties at 3: the first in row-major order, flat index 1, wins;
  //          window 1 = [3 0 / 1 3] ties at 3: index 2 wins.
  // Plane 1: all -5 (the max is negative, so no implicit 0 may creep in): indices 15+0 and 15+2.
  const Vec x = {1, 3, 3, 0, 9,  3, 2, 1, 3, 9,  9, 9, 9, 9, 9,
                 -5, -5, -5, -5, -5,  -5, -5, -5, -5, -5,  -5, -5, -5, -5, -5};
  Vec y = poisoned<double>(4);
  std::vector<int32_t> argmax = poisoned<int32_t>(4);
  maxpool_forward_cpu(x.data(), y.data(), argmax.data(), 2, 3, 5);
  expect_close(Vec{3, 3, -5, -5}, y, kExact, "maxpool y");
  expect_close(std::vector<int32_t>{1, 2, 15, 17}, argmax, kExact, "maxpool argmax");
  const Vec dy = {10, 20, 30, 40};
  Vec dx = poisoned<double>(30);
  maxpool_backward_cpu(dy.data(), argmax.data(), dx.data(), 2, 3, 5);
  Vec expect(30, 0.0);
  expect[1] = 10, expect[2] = 20, expect[15] = 30, expect[17] = 40;
  expect_close(expect, dx, kExact, "maxpool dx");
}

// ---- softmax cross-entropy ---------------------------------------------------------------------

TEST(CpuLayers, SoftmaxXentHand2x3) {
  // Worked in Python (math.exp/log in double):
  //   row 0: z = [1 2 3], label 2: lse = 3.40760596444438, loss 0.40760596444438,
  //          p = [0.0900305731703805, 0.244728471054798, 0.665240955774822], arg-max 2: correct.
  //   row 1: z = [2 2 -1], label 1: lse = 2.7177359186667, loss 0.7177359186667,
  //          p = [0.487855551160368, 0.487855551160368, 0.0242888976792632], first arg-max 0: wrong.
  //   dlogits = (p - onehot) / 2.
  const Vec logits = {1, 2, 3, 2, 2, -1};
  const std::vector<uint8_t> labels = {2, 1};
  const Vec expect_p = {0.090030573170380476, 0.2447284710547977,  0.66524095577482201,
                        0.48785555116036844,  0.48785555116036844, 0.024288897679263208};
  const Vec expect_d = {0.045015286585190238, 0.12236423552739885,  -0.167379522112589,
                        0.24392777558018422,  -0.25607222441981581, 0.012144448839631604};
  Vec d = poisoned<double>(6), p = poisoned<double>(6);
  const XentResult r = softmax_xent_cpu(logits.data(), labels.data(), d.data(), p.data(), 2, 3);
  EXPECT_NEAR(r.loss_sum, 1.1253418831110826, 1e-14);
  EXPECT_EQ(r.correct, 1);
  expect_close(expect_p, p, 1e-15, 1e-13, "probs");
  expect_close(expect_d, d, 1e-15, 1e-13, "dlogits");
  // float: the same numbers to float precision, and probs may be null.
  VecF df = poisoned<float>(6);
  const XentResult rf = softmax_xent_cpu(convert<float>(logits).data(), labels.data(), df.data(),
                                         static_cast<float*>(nullptr), 2, 3);
  EXPECT_NEAR(rf.loss_sum, 1.1253418831110826, 1e-6);
  EXPECT_EQ(rf.correct, 1);
  expect_close(expect_d, df, 1e-7, 1e-6, "dlogits float");
}

TEST(CpuLayers, SoftmaxXentCountsCorrectRowsAndTakesOneClass) {
  // Three rows, two right: an inverted comparison would count 1. First arg-max of [0 5 5] is 1.
  const VecF logits = {4, 1, 0,  0, 5, 5,  0, 0, 3};
  const std::vector<uint8_t> labels = {0, 2, 2};
  VecF d = poisoned<float>(9);
  EXPECT_EQ(softmax_xent_cpu(logits.data(), labels.data(), d.data(), static_cast<float*>(nullptr), 3, 3).correct,
            2);
  // C = 1: the one class has probability 1, loss 0, gradient 0, and is always right.
  const VecF one = {3.5f, -2.0f};
  const std::vector<uint8_t> zeros = {0, 0};
  VecF d1 = poisoned<float>(2), p1 = poisoned<float>(2);
  const XentResult r = softmax_xent_cpu(one.data(), zeros.data(), d1.data(), p1.data(), 2, 1);
  EXPECT_EQ(r.loss_sum, 0.0);
  EXPECT_EQ(r.correct, 2);
  expect_close(VecF{0.0f, 0.0f}, d1, kExact, "dlogits C=1");
  expect_close(VecF{1.0f, 1.0f}, p1, kExact, "probs C=1");
}

TEST(CpuLayers, SoftmaxXentLargeLogitsStayFinite) {
  // exp(1000) overflows; the max-subtracted log-sum-exp does not. Row 0 is [1000, 0]: loss for
  // label 1 is 1000 exactly (to double precision), p = [1, exp(-1000) = 0].
  const VecF logits = {1000.0f, 0.0f, -1000.0f, -1000.0f};
  const std::vector<uint8_t> labels = {1, 0};
  VecF d = poisoned<float>(4);
  const XentResult r = softmax_xent_cpu(logits.data(), labels.data(), d.data(), static_cast<float*>(nullptr),
                                        2, 2);
  EXPECT_NEAR(r.loss_sum, 1000.0 + std::log(2.0), 1e-9);
  EXPECT_EQ(r.correct, 1);  // row 1 ties: first arg-max 0 equals its label
  expect_close(VecF{0.5f, -0.5f, -0.25f, 0.25f}, d, kExact, "dlogits");
}

// ---- optimisers --------------------------------------------------------------------------------
// Expected values worked in Python with the hyper-parameters rounded to float first (the API takes
// float), e.g. beta1 = float(0.9) = 0.89999997615814209.

TEST(CpuLayers, AdamHandSteps) {
  // Element 0, t = 1, from m = v = 0: lr_t = 1e-3 * sqrt(1e-3) / 0.1; m = 0.05; v = 0.00025;
  //   p = 1 - lr_t * 0.05 / (sqrt(0.00025) + 1e-7) = 0.999000006 (about 1 - lr: Adam's first step).
  // Element 1, t = 3 with lr 0.01 (a second call), from m = 0.1, v = 0.04, g = -0.25.
  Vec p = {1.0}, g = {0.5}, m = {0.0}, v = {0.0};
  adam_update_cpu(p.data(), g.data(), m.data(), v.data(), 1, 0.001f, 0.9f, 0.999f, 1e-7f, 1);
  EXPECT_NEAR(m[0], 0.050000011920928955, 1e-15);
  EXPECT_NEAR(v[0], 0.00024999678134918213, 1e-17);
  EXPECT_NEAR(p[0], 0.99900000627705898, 1e-14);
  Vec p3 = {-2.0}, g3 = {-0.25}, m3 = {0.1}, v3 = {0.04};
  adam_update_cpu(p3.data(), g3.data(), m3.data(), v3.data(), 1, 0.01f, 0.9f, 0.999f, 1e-7f, 3);
  EXPECT_NEAR(m3[0], 0.06499999165534974, 1e-15);
  EXPECT_NEAR(v3[0], 0.04002249971032143, 1e-15);
  EXPECT_NEAR(p3[0], -2.0006563450833652, 1e-14);
  // float: same step to float precision.
  VecF pf = {1.0f}, gf = {0.5f}, mf = {0.0f}, vf = {0.0f};
  adam_update_cpu(pf.data(), gf.data(), mf.data(), vf.data(), 1, 0.001f, 0.9f, 0.999f, 1e-7f, 1);
  EXPECT_NEAR(pf[0], 0.99900000627705898, 1e-6);
  EXPECT_THROW(adam_update_cpu(pf.data(), gf.data(), mf.data(), vf.data(), 1, 0.001f, 0.9f, 0.999f, 1e-7f, 0),
               std::logic_error);
}

TEST(CpuLayers, SgdMomentumNesterovPlainHand) {
  // p = 1, g = 0.5, vel = 0.2, lr = 0.1, momentum 0.9 (hand, exact decimals):
  //   vel = 0.9*0.2 - 0.1*0.5 = 0.13; momentum: p = 1.13; Nesterov: p = 1 + 0.9*0.13 - 0.05 = 1.067.
  //   momentum 0: vel = -0.05, p = 0.95.
  // The constants below are the same with lr and momentum rounded to float (Python).
  for (int nesterov = 0; nesterov < 2; ++nesterov) {
    Vec p = {1.0}, g = {0.5}, vel = {0.2};
    sgd_update_cpu(p.data(), g.data(), vel.data(), 1, 0.1f, 0.9f, nesterov);
    EXPECT_NEAR(vel[0], 0.12999999448657037, 1e-15);
    EXPECT_NEAR(p[0], nesterov ? 1.0669999911934138 : 1.1299999944865704, 1e-15) << "nesterov " << nesterov;
    EXPECT_NEAR(p[0], nesterov ? 1.067 : 1.13, 1e-7);
  }
  Vec p = {1.0}, g = {0.5}, vel = {0.2};
  sgd_update_cpu(p.data(), g.data(), vel.data(), 1, 0.1f, 0.0f, false);
  EXPECT_NEAR(vel[0], -0.05000000074505806, 1e-15);
  EXPECT_NEAR(p[0], 0.94999999925494194, 1e-15);
}

// ---- convolution against a direct nested loop --------------------------------------------------

struct ConvShape {
  int N, C, H, W, K, OC;
  int OH() const { return H - K + 1; }
  int OW() const { return W - K + 1; }
  std::string str() const {
    return "N C H W K OC = " + std::to_string(N) + " " + std::to_string(C) + " " + std::to_string(H) + " " +
           std::to_string(W) + " " + std::to_string(K) + " " + std::to_string(OC);
  }
};

// y[n,oc,oh,ow] = relu(b[oc] + sum_{c,ki,kj} w[oc,c,ki,kj] x[n,c,oh+ki,ow+kj]), NCHW.
Vec direct_conv_forward(const ConvShape& s, const Vec& x, const Vec& w, const Vec& b) {
  const int OH = s.OH(), OW = s.OW();
  Vec y(size_t(s.N) * s.OC * OH * OW);
  for (int n = 0; n < s.N; ++n)
    for (int oc = 0; oc < s.OC; ++oc)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          double acc = b[oc];
          for (int c = 0; c < s.C; ++c)
            for (int ki = 0; ki < s.K; ++ki)
              for (int kj = 0; kj < s.K; ++kj)
                acc += w[((size_t(oc) * s.C + c) * s.K + ki) * s.K + kj] *
                       x[((size_t(n) * s.C + c) * s.H + oh + ki) * s.W + ow + kj];
          y[((size_t(n) * s.OC + oc) * OH + oh) * OW + ow] = acc > 0 ? acc : 0;
        }
  return y;
}

// Scatter form of the backward (the code under test gathers): every output's gradient is pushed
// to the weights and inputs it read.
void direct_conv_backward(const ConvShape& s, const Vec& x, const Vec& w, const Vec& y, const Vec& dy, Vec& dw,
                          Vec& db, Vec& dx) {
  const int OH = s.OH(), OW = s.OW();
  dw.assign(w.size(), 0.0);
  db.assign(size_t(s.OC), 0.0);
  dx.assign(x.size(), 0.0);
  for (int n = 0; n < s.N; ++n)
    for (int oc = 0; oc < s.OC; ++oc)
      for (int oh = 0; oh < OH; ++oh)
        for (int ow = 0; ow < OW; ++ow) {
          const size_t o = ((size_t(n) * s.OC + oc) * OH + oh) * OW + ow;
          const double g = y[o] > 0 ? dy[o] : 0.0;
          db[oc] += g;
          for (int c = 0; c < s.C; ++c)
            for (int ki = 0; ki < s.K; ++ki)
              for (int kj = 0; kj < s.K; ++kj) {
                const size_t wi = ((size_t(oc) * s.C + c) * s.K + ki) * s.K + kj;
                const size_t xi = ((size_t(n) * s.C + c) * s.H + oh + ki) * s.W + ow + kj;
                dw[wi] += g * x[xi];
                dx[xi] += g * w[wi];
              }
        }
}

// Runs conv forward and backward of type T on inputs given in double (exactly representable in T)
// and compares with the direct loops at the given tolerance.
template <typename T>
void check_conv_against_direct(const ConvShape& s, uint64_t seed, test::Tol tol) {
  const size_t xs = size_t(s.N) * s.C * s.H * s.W, ws = size_t(s.OC) * s.C * s.K * s.K;
  const size_t NP = size_t(s.N) * s.OH() * s.OW(), ys = size_t(s.OC) * NP, cs = ws / s.OC * NP;
  // Inputs generated in float so both precisions see identical values.
  const Vec x = convert<double>(random_vector<float>(xs, seed, -1, 1, 0));
  const Vec w = convert<double>(random_vector<float>(ws, seed, -1, 1, 1));
  const Vec b = convert<double>(random_vector<float>(size_t(s.OC), seed, -0.5, 0.5, 2));
  const Vec dy = convert<double>(random_vector<float>(ys, seed, -1, 1, 3));
  const Vec y_ref = direct_conv_forward(s, x, w, b);
  Vec dw_ref, db_ref, dx_ref;
  direct_conv_backward(s, x, w, y_ref, dy, dw_ref, db_ref, dx_ref);

  std::vector<T> col = poisoned<T>(cs), pre = poisoned<T>(ys), y = poisoned<T>(ys);
  const std::vector<T> xt = convert<T>(x), wt = convert<T>(w), bt = convert<T>(b), dyt = convert<T>(dy);
  conv_forward_cpu(xt.data(), wt.data(), bt.data(), col.data(), pre.data(), y.data(), s.N, s.C, s.H, s.W, s.K,
                   s.OC);
  expect_close(y_ref, y, tol, "conv y");
  // Backward from the reference y (rounded to T; rounding keeps the sign), so the ReLU mask is
  // the reference's even where a float pre-activation lands on the other side of 0.
  const std::vector<T> yt = convert<T>(y_ref);
  std::vector<T> dpre = poisoned<T>(ys), dcol = poisoned<T>(cs), dw = poisoned<T>(ws), db = poisoned<T>(s.OC),
                 dx = poisoned<T>(xs);
  conv_backward_cpu(col.data(), wt.data(), yt.data(), dyt.data(), dpre.data(), dcol.data(), dw.data(), db.data(),
                    dx.data(), s.N, s.C, s.H, s.W, s.K, s.OC);
  expect_close(dw_ref, dw, tol, "conv dw");
  expect_close(db_ref, db, tol, "conv db");
  expect_close(dx_ref, dx, tol, "conv dx");
  // dx null (first layer): dw and db still right, and dcol is neither needed nor touched.
  std::vector<T> dw2 = poisoned<T>(ws), db2 = poisoned<T>(s.OC), dcol2 = poisoned<T>(cs);
  conv_backward_cpu(col.data(), wt.data(), yt.data(), dyt.data(), dpre.data(), dcol2.data(), dw2.data(),
                    db2.data(), static_cast<T*>(nullptr), s.N, s.C, s.H, s.W, s.K, s.OC);
  expect_close(dw_ref, dw2, tol, "conv dw (dx null)");
  expect_close(db_ref, db2, tol, "conv db (dx null)");
  size_t touched = 0;
  for (T v : dcol2) touched += std::isnan(v) ? 0 : 1;
  EXPECT_EQ(touched, 0u) << "dcol written although dx is null";
}

const ConvShape kConvShapes[] = {
    {1, 1, 3, 3, 2, 1},    // smallest
    {1, 3, 7, 5, 3, 4},    // N=1, C=3, odd and non-square
    {2, 3, 6, 9, 1, 5},    // K=1
    {3, 2, 5, 5, 5, 3},    // K = H: one output pixel
    {8, 1, 28, 28, 3, 32},   // MNIST conv1
    {8, 32, 13, 13, 3, 64},  // MNIST conv2
    {8, 64, 5, 5, 3, 64},    // MNIST conv3
};

TEST(CpuLayers, ConvDoubleMatchesDirectLoops) {
  const uint64_t seed = test::test_seed(21);
  CONVNET_SEED_TRACE(seed);
  for (const ConvShape& s : kConvShapes) {
    SCOPED_TRACE(s.str());
    check_conv_against_direct<double>(s, seed, kDoubleOrder);
  }
}

TEST(CpuLayers, ConvFloatMatchesDirectLoops) {
  const uint64_t seed = test::test_seed(22);
  CONVNET_SEED_TRACE(seed);
  for (const ConvShape& s : kConvShapes) {
    SCOPED_TRACE(s.str());
    check_conv_against_direct<float>(s, seed, kReduction);  // float sums of up to 5408 terms
  }
}

// ---- dense -------------------------------------------------------------------------------------

TEST(CpuLayers, DenseMatchesLoops) {
  const uint64_t seed = test::test_seed(31);
  CONVNET_SEED_TRACE(seed);
  const int N = 3, I = 7, O = 5;
  const Vec x = random_vector<double>(N * I, seed, -1, 1, 0), w = random_vector<double>(O * I, seed, -1, 1, 1);
  const Vec b = random_vector<double>(O, seed, -1, 1, 2), dy = random_vector<double>(N * O, seed, -1, 1, 3);
  Vec y_ref(N * O), dw_ref(O * I, 0.0), db_ref(O, 0.0), dx_ref(N * I, 0.0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      double acc = b[o];
      for (int i = 0; i < I; ++i) {
        acc += x[n * I + i] * w[o * I + i];
        dw_ref[o * I + i] += dy[n * O + o] * x[n * I + i];
        dx_ref[n * I + i] += dy[n * O + o] * w[o * I + i];
      }
      y_ref[n * O + o] = acc;
      db_ref[o] += dy[n * O + o];
    }
  Vec y = poisoned<double>(N * O), dw = poisoned<double>(O * I), db = poisoned<double>(O),
      dx = poisoned<double>(N * I);
  dense_forward_cpu(x.data(), w.data(), b.data(), y.data(), N, I, O);
  dense_backward_cpu(x.data(), w.data(), dy.data(), dw.data(), db.data(), dx.data(), N, I, O);
  expect_close(y_ref, y, kDoubleOrder, "dense y");
  expect_close(dw_ref, dw, kDoubleOrder, "dense dw");
  expect_close(db_ref, db, kDoubleOrder, "dense db");
  expect_close(dx_ref, dx, kDoubleOrder, "dense dx");
}

// ---- dropout -----------------------------------------------------------------------------------

TEST(CpuLayers, DropoutKeptFractionWithin4Sigma) {
  const uint64_t seed = test::test_seed(41);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 1 << 20;
  const VecF ones(n, 1.0f);
  VecF y(n);
  for (float rate : {0.5f, 0.6f}) {
    dropout_forward_cpu(ones.data(), y.data(), n, rate, seed, 1, 0);
    size_t kept = 0;
    for (float v : y) kept += v != 0.0f;
    const double p = 1.0 - rate, sigma = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(double(kept), n * p, 4 * sigma) << "rate " << rate;
  }
}

TEST(CpuLayers, DropoutKeptValuesScaledExactly) {
  const uint64_t seed = test::test_seed(42);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 10007;  // not a multiple of anything
  for (float rate : {0.5f, 0.6f}) {
    SCOPED_TRACE("rate " + std::to_string(rate));
    const VecF x = random_vector<float>(n, seed, 0.5, 2);  // never 0, so y == 0 means dropped
    VecF y = poisoned<float>(n);
    dropout_forward_cpu(x.data(), y.data(), n, rate, seed, 3, 1);
    const float scale = 1.0f / (1.0f - rate);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      const bool keep = dropout_keep(seed, 3, 1, i, rate);
      bad += keep ? !(y[i] == x[i] * scale) : !(y[i] == 0.0f);
    }
    EXPECT_EQ(bad, 0u);
    const Vec xd = convert<double>(x);
    Vec yd = poisoned<double>(n);
    dropout_forward_cpu(xd.data(), yd.data(), n, rate, seed, 3, 1);
    const double scaled = 1.0 / (1.0 - double(rate));
    bad = 0;
    for (size_t i = 0; i < n; ++i) bad += yd[i] != (y[i] == 0.0f ? 0.0 : xd[i] * scaled);
    EXPECT_EQ(bad, 0u) << "double instantiation";
  }
}

TEST(CpuLayers, DropoutRateZeroIsIdentity) {
  const VecF x = random_vector<float>(100, 43);
  VecF y = poisoned<float>(100), dx = poisoned<float>(100);
  dropout_forward_cpu(x.data(), y.data(), 100, 0.0f, 1, 2, 3);
  dropout_backward_cpu(x.data(), dx.data(), 100, 0.0f, 1, 2, 3);
  expect_close(x, y, kExact, "rate 0 forward");
  expect_close(x, dx, kExact, "rate 0 backward");
  EXPECT_THROW(dropout_forward_cpu(x.data(), y.data(), 100, 1.0f, 1, 2, 3), std::logic_error);
}

// Dropout mask as 0/1 bytes, read off a forward pass over ones.
std::vector<uint8_t> dropout_mask(size_t n, float rate, uint64_t seed, uint64_t step, uint32_t layer) {
  const VecF ones(n, 1.0f);
  VecF y(n);
  dropout_forward_cpu(ones.data(), y.data(), n, rate, seed, step, layer);
  std::vector<uint8_t> m(n);
  for (size_t i = 0; i < n; ++i) m[i] = y[i] != 0.0f;
  return m;
}

size_t count_differences(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  size_t d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += a[i] != b[i];
  return d;
}

TEST(CpuLayers, DropoutMaskReproducibleAndIndependent) {
  const uint64_t seed = test::test_seed(44);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 20000;
  const float rate = 0.6f;
  const auto base = dropout_mask(n, rate, seed, 5, 1);
  EXPECT_EQ(count_differences(base, dropout_mask(n, rate, seed, 5, 1)), 0u) << "same (seed, step, layer)";
  // Independent masks differ in a fraction 2 p (1 - p) = 0.48 of positions; demand at least 0.4.
  const size_t min_diff = size_t(0.4 * n);
  EXPECT_GT(count_differences(base, dropout_mask(n, rate, seed, 6, 1)), min_diff) << "other step";
  EXPECT_GT(count_differences(base, dropout_mask(n, rate, seed, 5, 2)), min_diff) << "other layer";
  EXPECT_GT(count_differences(base, dropout_mask(n, rate, seed + 1, 5, 1)), min_diff) << "other seed";
}

TEST(CpuLayers, DropoutBackwardMaskEqualsForward) {
  const uint64_t seed = test::test_seed(45);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 5003;
  const float rate = 0.6f;
  const VecF x = random_vector<float>(n, seed, 0.5, 2, 0), dy = random_vector<float>(n, seed, 0.5, 2, 1);
  VecF y = poisoned<float>(n), dx = poisoned<float>(n);
  dropout_forward_cpu(x.data(), y.data(), n, rate, seed, 9, 2);
  dropout_backward_cpu(dy.data(), dx.data(), n, rate, seed, 9, 2);
  const float scale = 1.0f / (1.0f - rate);
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) bad += (y[i] != 0.0f) ? !(dx[i] == dy[i] * scale) : !(dx[i] == 0.0f);
  EXPECT_EQ(bad, 0u);
}

// ---- float versus double on the real network ---------------------------------------------------

// Round through float: the value both precisions are given, so they start from identical inputs
// (and make identical ReLU, max-pool and arg-max decisions) and only their arithmetic differs.
Vec rf(const Vec& v) { return convert<double>(convert<float>(v)); }

// One MNIST training step's layers at batch 8, each layer run in float and in double on the same
// (float-representable) inputs, and compared at the reductions/GEMM tolerance. Upstream gradients
// are fresh O(1) random values, so the 1e-4 absolute floor does not hide relative errors.
TEST(CpuLayers, FloatMatchesDoubleOnMnistShapes) {
  const uint64_t seed = test::test_seed(51);
  CONVNET_SEED_TRACE(seed);
  const int N = 8;
  uint64_t stream = 0;
  auto rnd = [&](size_t n, double lo, double hi) { return rf(random_vector<double>(n, seed, lo, hi, stream++)); };
  const ConvShape convs[] = {{N, 1, 28, 28, 3, 32}, {N, 32, 13, 13, 3, 64}, {N, 64, 5, 5, 3, 64}};
  Vec act = rnd(size_t(N) * 28 * 28, 0, 1);  // the input image batch
  for (int l = 0; l < 3; ++l) {
    const ConvShape& s = convs[l];
    SCOPED_TRACE("conv layer " + std::to_string(l + 1) + ": " + s.str());
    const size_t ws = size_t(s.OC) * s.C * s.K * s.K, P = size_t(s.OH()) * s.OW(), ys = s.OC * N * P;
    const size_t cs = ws / s.OC * N * P, xs = act.size();
    const double a = std::sqrt(6.0 / (s.C * s.K * s.K));  // He-uniform: activations stay O(1)
    const Vec w = rnd(ws, -a, a), b = rnd(s.OC, -0.1, 0.1), dy = rnd(ys, -1, 1);
    Vec col(cs), pre(ys), y(ys), dpre(ys), dcol(cs), dw(ws), db(s.OC), dx(xs);
    conv_forward_cpu(act.data(), w.data(), b.data(), col.data(), pre.data(), y.data(), N, s.C, s.H, s.W, s.K,
                     s.OC);
    const VecF xf = convert<float>(act), wf = convert<float>(w), bf = convert<float>(b), dyf = convert<float>(dy);
    VecF colf = poisoned<float>(cs), pref = poisoned<float>(ys), yf = poisoned<float>(ys);
    conv_forward_cpu(xf.data(), wf.data(), bf.data(), colf.data(), pref.data(), yf.data(), N, s.C, s.H, s.W,
                     s.K, s.OC);
    expect_close(y, yf, kReduction, "conv y");
    const Vec yr = rf(y);  // both backwards see the same ReLU mask
    conv_backward_cpu(col.data(), w.data(), yr.data(), dy.data(), dpre.data(), dcol.data(), dw.data(), db.data(),
                      l == 0 ? nullptr : dx.data(), N, s.C, s.H, s.W, s.K, s.OC);
    const VecF yrf = convert<float>(yr);
    VecF dpref = poisoned<float>(ys), dcolf = poisoned<float>(cs), dwf = poisoned<float>(ws),
         dbf = poisoned<float>(s.OC), dxf = poisoned<float>(xs);
    conv_backward_cpu(colf.data(), wf.data(), yrf.data(), dyf.data(), dpref.data(), dcolf.data(), dwf.data(),
                      dbf.data(), l == 0 ? nullptr : dxf.data(), N, s.C, s.H, s.W, s.K, s.OC);
    expect_close(dw, dwf, kReduction, "conv dw");
    expect_close(db, dbf, kReduction, "conv db");
    if (l > 0) expect_close(dx, dxf, kReduction, "conv dx");

    // Max-pool of this layer's output (odd sizes 13, 5, 1 after layers 1, 2 and 3's floors).
    const int NC = N * s.OC, H = s.OH(), PH = H / 2;
    const size_t ps = size_t(NC) * PH * PH;
    Vec py(ps), pdy = rnd(ps, -1, 1), pdx(ys);
    std::vector<int32_t> am(ps);
    maxpool_forward_cpu(yr.data(), py.data(), am.data(), NC, H, H);
    maxpool_backward_cpu(pdy.data(), am.data(), pdx.data(), NC, H, H);
    VecF pyf = poisoned<float>(ps), pdxf = poisoned<float>(ys);
    std::vector<int32_t> amf = poisoned<int32_t>(ps);
    maxpool_forward_cpu(yrf.data(), pyf.data(), amf.data(), NC, H, H);
    maxpool_backward_cpu(convert<float>(pdy).data(), amf.data(), pdxf.data(), NC, H, H);
    expect_close(py, pyf, kExact, "pool y");
    expect_close(am, amf, kExact, "pool argmax");
    expect_close(pdx, pdxf, kExact, "pool dx");
    act = py;
  }
  // act is (N, 64, 1, 1) = the flattened (N, 64). Dropout 0.6, dense 64 -> 10, softmax-CE.
  const int F = 64, O = 10;
  const size_t nf = size_t(N) * F;
  Vec drop(nf), ddrop = rnd(nf, -1, 1), dact(nf);
  dropout_forward_cpu(act.data(), drop.data(), nf, 0.6f, seed, 4, 0);
  dropout_backward_cpu(ddrop.data(), dact.data(), nf, 0.6f, seed, 4, 0);
  VecF dropf = poisoned<float>(nf), dactf = poisoned<float>(nf);
  dropout_forward_cpu(convert<float>(act).data(), dropf.data(), nf, 0.6f, seed, 4, 0);
  dropout_backward_cpu(convert<float>(ddrop).data(), dactf.data(), nf, 0.6f, seed, 4, 0);
  // x * float(2.5) versus x * double(2.5): one rounding apart.
  expect_close(drop, dropf, test::kElementwise, "dropout y");
  expect_close(dact, dactf, test::kElementwise, "dropout dx");

  const Vec xd = rf(drop), wd = rnd(size_t(O) * F, -0.3, 0.3), bd = rnd(O, -0.1, 0.1);
  const std::vector<uint8_t> labels = test::random_labels(N, O, seed, stream++);
  Vec logits(size_t(N) * O), dlogits(logits.size()), probs(logits.size());
  dense_forward_cpu(xd.data(), wd.data(), bd.data(), logits.data(), N, F, O);
  const VecF xdf = convert<float>(xd), wdf = convert<float>(wd);
  VecF logitsf = poisoned<float>(logits.size());
  dense_forward_cpu(xdf.data(), wdf.data(), convert<float>(bd).data(), logitsf.data(), N, F, O);
  expect_close(logits, logitsf, kReduction, "dense y");

  const Vec lr = rf(logits);
  const XentResult r = softmax_xent_cpu(lr.data(), labels.data(), dlogits.data(), probs.data(), N, O);
  VecF dlogitsf = poisoned<float>(logits.size()), probsf = poisoned<float>(logits.size());
  const XentResult r_f =
      softmax_xent_cpu(convert<float>(lr).data(), labels.data(), dlogitsf.data(), probsf.data(), N, O);
  EXPECT_NEAR(r.loss_sum, r_f.loss_sum, 1e-4 * std::fabs(r.loss_sum));
  EXPECT_EQ(r.correct, r_f.correct);
  expect_close(dlogits, dlogitsf, test::kElementwise, "xent dlogits");
  expect_close(probs, probsf, test::kElementwise, "xent probs");

  const Vec ddense = rnd(logits.size(), -1, 1);
  Vec dwd(wd.size()), dbd(O), dxd(nf);
  dense_backward_cpu(xd.data(), wd.data(), ddense.data(), dwd.data(), dbd.data(), dxd.data(), N, F, O);
  VecF dwdf = poisoned<float>(wd.size()), dbdf = poisoned<float>(O), dxdf = poisoned<float>(nf);
  dense_backward_cpu(xdf.data(), wdf.data(), convert<float>(ddense).data(), dwdf.data(), dbdf.data(), dxdf.data(),
                     N, F, O);
  expect_close(dwd, dwdf, kReduction, "dense dw");
  expect_close(dbd, dbdf, kReduction, "dense db");
  expect_close(dxd, dxdf, kReduction, "dense dx");

  // Optimiser steps on the dense weights with these gradients: Adam (t = 1 and t = 2), then SGD.
  const Vec g = rf(dwd);
  Vec p = wd, m(wd.size(), 0.0), v(wd.size(), 0.0), vel = rnd(wd.size(), -0.01, 0.01);
  VecF pf = convert<float>(p), gf = convert<float>(g), mf(wd.size(), 0.0f), vf(wd.size(), 0.0f),
       velf = convert<float>(vel);
  for (int64_t t = 1; t <= 2; ++t) {
    adam_update_cpu(p.data(), g.data(), m.data(), v.data(), p.size(), 0.001f, 0.9f, 0.999f, 1e-7f, t);
    adam_update_cpu(pf.data(), gf.data(), mf.data(), vf.data(), pf.size(), 0.001f, 0.9f, 0.999f, 1e-7f, t);
  }
  expect_close(p, pf, test::kElementwise, "adam p");
  expect_close(m, mf, test::kElementwise, "adam m");
  expect_close(v, vf, test::kElementwise, "adam v");
  for (bool nesterov : {false, true}) {
    sgd_update_cpu(p.data(), g.data(), vel.data(), p.size(), 0.01f, 0.9f, nesterov);
    sgd_update_cpu(pf.data(), gf.data(), velf.data(), pf.size(), 0.01f, 0.9f, nesterov);
  }
  expect_close(p, pf, test::kElementwise, "sgd p");
  expect_close(vel, velf, test::kElementwise, "sgd vel");
}

TEST(CpuLayers, SoftmaxXentRejectsBadLabel) {
  const VecF logits(6, 0.0f);
  VecF d(6);
  const std::vector<uint8_t> labels = {0, 3};
  EXPECT_THROW(softmax_xent_cpu(logits.data(), labels.data(), d.data(), static_cast<float*>(nullptr), 2, 3),
               std::logic_error);
}

// ---- argument checks ---------------------------------------------------------------------------
// Each bound is broken on its own, so that a check joining two bounds by || instead of && is caught,
// and the allowed edges (an empty batch, no channels, a plane exactly K wide) pass.

TEST(CpuLayers, ConvShapeChecksRefuseEachBadDimensionAlone) {
  const Vec x(2 * 2 * 4 * 5, 1.0);   // N=2, C=2, 4x5 planes
  Vec col(2 * 3 * 3 * 2 * 2 * 3, 0.0);  // (C*K*K, N*OH*OW) for K=3: OH=2, OW=3
  Vec dx(x.size(), 0.0);
  for (const bool forward : {true, false}) {
    SCOPED_TRACE(forward ? "im2col_cpu" : "col2im_cpu");
    auto call = [&](int N, int C, int H, int W, int K) {
      if (forward)
        im2col_cpu(x.data(), col.data(), N, C, H, W, K);
      else
        col2im_cpu(col.data(), dx.data(), N, C, H, W, K);
    };
    EXPECT_THROW(call(-1, 2, 4, 5, 3), std::logic_error) << "N < 0";
    EXPECT_THROW(call(2, -1, 4, 5, 3), std::logic_error) << "C < 0";
    EXPECT_THROW(call(2, 2, 4, 5, 0), std::logic_error) << "K < 1";
    EXPECT_THROW(call(2, 2, 2, 5, 3), std::logic_error) << "H < K, W >= K";
    EXPECT_THROW(call(2, 2, 4, 2, 3), std::logic_error) << "W < K, H >= K";
    EXPECT_NO_THROW(call(0, 2, 4, 5, 3)) << "an empty batch";
    EXPECT_NO_THROW(call(2, 0, 4, 5, 3)) << "no channels";
    EXPECT_NO_THROW(call(2, 2, 3, 3, 3)) << "H = W = K";
  }
}

TEST(CpuLayers, GemmRefusesEachNegativeDimensionAloneAndAcceptsEmptyOnes) {
  const Vec a(6, 1.0), b(6, 1.0);
  Vec c(6, 5.0);
  auto gemm = [&](int M, int N, int K, double beta) {
    gemm_cpu<double>(false, false, M, N, K, 1.0, a.data(), b.data(), beta, c.data());
  };
  EXPECT_THROW(gemm(-1, 2, 3, 0.0), std::logic_error) << "M < 0";
  EXPECT_THROW(gemm(2, -1, 3, 0.0), std::logic_error) << "N < 0";
  EXPECT_THROW(gemm(2, 3, -1, 0.0), std::logic_error) << "K < 0";
  // M = 0 or N = 0: C is empty and untouched; K = 0: C = beta * C, with no product terms.
  EXPECT_NO_THROW(gemm(0, 2, 3, 0.0));
  EXPECT_NO_THROW(gemm(2, 0, 3, 0.0));
  expect_close(Vec(6, 5.0), c, kExact, "gemm with M = 0 or N = 0");
  gemm(2, 3, 0, 0.5);
  expect_close(Vec(6, 2.5), c, kExact, "gemm with K = 0");
}

TEST(CpuLayers, SoftmaxXentRefusesEachBadDimensionAloneAndAcceptsAnEmptyBatch) {
  const VecF logits(6, 0.0f);
  VecF d(6, 0.0f);
  const std::vector<uint8_t> labels = {0, 1};
  auto xent = [&](int N, int C) { return softmax_xent_cpu(logits.data(), labels.data(), d.data(), d.data(), N, C); };
  EXPECT_THROW(xent(-1, 3), std::logic_error) << "N < 0";
  EXPECT_THROW(xent(2, 0), std::logic_error) << "C < 1";
  EXPECT_THROW(xent(0, 0), std::logic_error) << "C < 1 in an empty batch (no label to find out of range)";
  XentResult empty;
  EXPECT_NO_THROW(empty = xent(0, 3));
  EXPECT_EQ(empty.loss_sum, 0.0);
  EXPECT_EQ(empty.correct, 0);
}

// ---- divergence check --------------------------------------------------------------------------

TEST(CpuLayers, FiniteCheckMergesWithinAStepAndKeepsTheFirstStep) {
  std::vector<float> g(100, 1.0f);
  const double finite = 1.0, nan = std::nan("");
  DeviceFault fault = no_device_fault();
  finite_check_cpu(g.data(), g.size(), &finite, 3, &fault);
  EXPECT_EQ(fault.step, kNoFaultStep);
  g[60] = std::nanf("");
  finite_check_cpu(g.data(), g.size(), &finite, 4, &fault);
  EXPECT_EQ(fault.step, 4);
  EXPECT_EQ(fault.grad, 60u << 1);
  // Checked again in the same step (not an earlier step's record): the smallest index wins.
  g[60] = 1.0f;
  g[7] = INFINITY;
  finite_check_cpu(g.data(), g.size(), &nan, 4, &fault);
  EXPECT_EQ(fault.step, 4);
  EXPECT_EQ(fault.grad, (7u << 1) | 1u);
  EXPECT_EQ(fault.loss, kValueNaN);
  // A later step changes nothing.
  g[2] = std::nanf("");
  const double inf = INFINITY;
  finite_check_cpu(g.data(), g.size(), &inf, 5, &fault);
  EXPECT_EQ(fault.step, 4);
  EXPECT_EQ(fault.grad, (7u << 1) | 1u);
  EXPECT_EQ(fault.loss, kValueNaN);
}

}  // namespace
}  // namespace convnet
