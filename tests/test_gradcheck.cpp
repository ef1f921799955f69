// Central-difference gradient checks of every CPU reference layer (host/cpu_layers.h), in double.
//
// For a layer f the scalar loss is L = sum(f(inputs) * R) with a fixed random R, so the analytic
// gradient is the layer's backward applied to dy = R; softmax-CE is checked on its own mean loss,
// and a small composed net conv -> pool -> dropout -> dense -> xent checks that the pieces chain.
// Pass rule (expect_gradient): |analytic - numeric| <= 1e-6 * max(|analytic|, |numeric|, 1), h = 1e-5.
//
// Inputs are kept away from kinks, where a central difference straddles two branches and is
// meaningless: ReLU pre-activations satisfy |pre| > kKinkMargin (drawn that way, or redrawn with
// the next seed until they do), and max-pool inputs are distinct with gaps far above h.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cpu_layers.h"
#include "test_util.h"

namespace convnet {
namespace {

using test::expect_gradient;
using test::random_vector;
using Vec = std::vector<double>;

constexpr double kH = 1e-5;
constexpr double kTol = 1e-6;
// A probe moves a pre-activation by at most h * (largest |input| or |weight|) <= 1e-5; 100x that
// keeps every probe on one side of the kink.
constexpr double kKinkMargin = 1e-3;
constexpr int kMaxRedraws = 100;

double dot(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

struct ConvShape {
  int N, C, H, W, K, OC;
  int OH() const { return H - K + 1; }
  int OW() const { return W - K + 1; }
  size_t P() const { return size_t(OH()) * OW(); }
  size_t x_size() const { return size_t(N) * C * H * W; }
  size_t w_size() const { return size_t(OC) * C * K * K; }
  size_t col_size() const { return size_t(C) * K * K * N * P(); }
  size_t y_size() const { return size_t(N) * OC * P(); }
};

// Everything a conv layer's forward and backward need, in double.
struct ConvCase {
  ConvShape s;
  Vec x, w, b, R;
  Vec col, pre, y;

  ConvCase(ConvShape shape, uint64_t seed) : s(shape) {
    x = random_vector<double>(s.x_size(), seed, -1, 1, 0);
    w = random_vector<double>(s.w_size(), seed, -1, 1, 1);
    b = random_vector<double>(size_t(s.OC), seed, -0.5, 0.5, 2);
    R = random_vector<double>(s.y_size(), seed, -1, 1, 3);
    col.resize(s.col_size());
    pre.resize(s.y_size());
    y.resize(s.y_size());
  }
  double loss() {
    conv_forward_cpu(x.data(), w.data(), b.data(), col.data(), pre.data(), y.data(), s.N, s.C, s.H, s.W,
                     s.K, s.OC);
    return dot(y, R);
  }
  // Smallest |pre + b| over all outputs (pre is (OC, N*P)).
  double kink_distance() {
    loss();
    double m = INFINITY;
    for (size_t oc = 0; oc < size_t(s.OC); ++oc)
      for (size_t j = 0; j < s.N * s.P(); ++j) m = std::min(m, std::fabs(pre[oc * s.N * s.P() + j] + b[oc]));
    return m;
  }
};

TEST(GradCheck, Conv) {
  const ConvShape shapes[] = {{2, 2, 6, 5, 3, 3}, {1, 1, 4, 7, 2, 2}, {3, 3, 3, 3, 3, 2}, {1, 2, 5, 5, 1, 3}};
  for (const ConvShape& s : shapes) {
    uint64_t seed = test::test_seed(101);
    ConvCase c(s, seed);
    for (int tries = 0; c.kink_distance() <= kKinkMargin; ++tries) {
      ASSERT_LT(tries, kMaxRedraws) << "no kink-free draw";
      c = ConvCase(s, ++seed);
    }
    CONVNET_SEED_TRACE(seed);
    SCOPED_TRACE("N C H W K OC = " + std::to_string(s.N) + " " + std::to_string(s.C) + " " +
                 std::to_string(s.H) + " " + std::to_string(s.W) + " " + std::to_string(s.K) + " " +
                 std::to_string(s.OC));
    c.loss();
    Vec dpre(s.y_size()), dcol(s.col_size()), dw(s.w_size()), db(size_t(s.OC)), dx(s.x_size());
    conv_backward_cpu(c.col.data(), c.w.data(), c.y.data(), c.R.data(), dpre.data(), dcol.data(), dw.data(),
                      db.data(), dx.data(), s.N, s.C, s.H, s.W, s.K, s.OC);
    auto loss = [&] { return c.loss(); };
    expect_gradient(loss, c.w.data(), dw.data(), dw.size(), "conv dw", kH, kTol);
    expect_gradient(loss, c.b.data(), db.data(), db.size(), "conv db", kH, kTol);
    expect_gradient(loss, c.x.data(), dx.data(), dx.size(), "conv dx", kH, kTol);
  }
}

TEST(GradCheck, BiasRelu) {
  const uint64_t seed = test::test_seed(202);
  CONVNET_SEED_TRACE(seed);
  const int N = 2, OC = 3, P = 5;
  const size_t NP = size_t(N) * P, n = OC * NP;
  Vec bias = random_vector<double>(OC, seed, -0.5, 0.5, 0);
  // Choose the pre-activation t = pre + bias first, |t| in [0.1, 1] with a random sign, then pre.
  Vec mag = random_vector<double>(n, seed, 0.1, 1.0, 1), sign = random_vector<double>(n, seed, -1, 1, 2);
  Vec pre(n), y(n), dpre(n), dbias(OC);
  for (size_t i = 0; i < n; ++i) pre[i] = (sign[i] < 0 ? -mag[i] : mag[i]) - bias[i / NP];
  const Vec R = random_vector<double>(n, seed, -1, 1, 3);
  auto loss = [&] {
    bias_relu_forward_cpu(pre.data(), bias.data(), y.data(), N, OC, P);
    return dot(y, R);
  };
  loss();
  bias_relu_backward_cpu(y.data(), R.data(), dpre.data(), N, OC, P);
  bias_backward_cpu(dpre.data(), dbias.data(), OC, int(NP));
  expect_gradient(loss, pre.data(), dpre.data(), n, "bias_relu dpre", kH, kTol);
  expect_gradient(loss, bias.data(), dbias.data(), OC, "bias_relu dbias", kH, kTol);
}

TEST(GradCheck, Relu) {
  const uint64_t seed = test::test_seed(303);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 40;
  Vec mag = random_vector<double>(n, seed, 0.1, 1.0, 0), sign = random_vector<double>(n, seed, -1, 1, 1);
  Vec x(n), y(n), dx(n);
  for (size_t i = 0; i < n; ++i) x[i] = sign[i] < 0 ? -mag[i] : mag[i];
  const Vec R = random_vector<double>(n, seed, -1, 1, 2);
  auto loss = [&] {
    y = x;
    relu_forward_cpu(y.data(), n);
    return dot(y, R);
  };
  loss();
  relu_backward_cpu(y.data(), R.data(), dx.data(), n);
  expect_gradient(loss, x.data(), dx.data(), n, "relu dx", kH, kTol);
}

TEST(GradCheck, MaxPool) {
  const uint64_t seed = test::test_seed(404);
  CONVNET_SEED_TRACE(seed);
  const int NC = 3, H = 5, W = 7;  // odd: the last row and column are cut off by the floor
  const size_t n = size_t(NC) * H * W, m = size_t(NC) * (H / 2) * (W / 2);
  // Distinct values 1e-2 apart (1000 h): no ties, and no probe can change a window's winner.
  Vec x = test::distinct_values<double>(n, seed, 1e-2, -0.5);
  Vec y(m), dx(n);
  std::vector<int32_t> argmax(m);
  const Vec R = random_vector<double>(m, seed, -1, 1, 5);
  auto loss = [&] {
    maxpool_forward_cpu(x.data(), y.data(), argmax.data(), NC, H, W);
    return dot(y, R);
  };
  loss();
  maxpool_backward_cpu(R.data(), argmax.data(), dx.data(), NC, H, W);
  expect_gradient(loss, x.data(), dx.data(), n, "maxpool dx", kH, kTol);
}

TEST(GradCheck, Dropout) {
  const uint64_t seed = test::test_seed(505);
  CONVNET_SEED_TRACE(seed);
  const size_t n = 50;
  const float rate = 0.6f;
  Vec x = random_vector<double>(n, seed, -1, 1, 0), y(n), dx(n);
  const Vec R = random_vector<double>(n, seed, -1, 1, 1);
  auto loss = [&] {
    dropout_forward_cpu(x.data(), y.data(), n, rate, seed, /*step=*/7, /*layer=*/1);
    return dot(y, R);
  };
  dropout_backward_cpu(R.data(), dx.data(), n, rate, seed, 7, 1);
  expect_gradient(loss, x.data(), dx.data(), n, "dropout dx", kH, kTol);
}

TEST(GradCheck, Dense) {
  const uint64_t seed = test::test_seed(606);
  CONVNET_SEED_TRACE(seed);
  const int N = 3, I = 5, O = 4;
  Vec x = random_vector<double>(size_t(N) * I, seed, -1, 1, 0);
  Vec w = random_vector<double>(size_t(O) * I, seed, -1, 1, 1);
  Vec b = random_vector<double>(O, seed, -1, 1, 2);
  const Vec R = random_vector<double>(size_t(N) * O, seed, -1, 1, 3);
  Vec y(size_t(N) * O), dw(w.size()), db(b.size()), dx(x.size());
  auto loss = [&] {
    dense_forward_cpu(x.data(), w.data(), b.data(), y.data(), N, I, O);
    return dot(y, R);
  };
  dense_backward_cpu(x.data(), w.data(), R.data(), dw.data(), db.data(), dx.data(), N, I, O);
  expect_gradient(loss, w.data(), dw.data(), dw.size(), "dense dw", kH, kTol);
  expect_gradient(loss, b.data(), db.data(), db.size(), "dense db", kH, kTol);
  expect_gradient(loss, x.data(), dx.data(), dx.size(), "dense dx", kH, kTol);
}

TEST(GradCheck, SoftmaxXent) {
  const uint64_t seed = test::test_seed(707);
  CONVNET_SEED_TRACE(seed);
  const int N = 4, C = 5;
  Vec logits = random_vector<double>(size_t(N) * C, seed, -3, 3, 0), dlogits(logits.size());
  const std::vector<uint8_t> labels = test::random_labels(N, C, seed, 1);
  Vec scratch(logits.size());
  auto loss = [&] {  // the batch MEAN loss, whose gradient dlogits is
    return softmax_xent_cpu<double>(logits.data(), labels.data(), scratch.data(), nullptr, N, C).loss_sum / N;
  };
  softmax_xent_cpu<double>(logits.data(), labels.data(), dlogits.data(), nullptr, N, C);
  expect_gradient(loss, logits.data(), dlogits.data(), dlogits.size(), "softmax_xent dlogits", kH, kTol);
}

// conv (1 -> 3 channels, K 3) -> max-pool -> dropout 0.5 -> flatten -> dense (27 -> 4) -> softmax-CE.
struct ComposedNet {
  static constexpr int N = 2, C = 1, H = 8, W = 8, K = 3, OC = 3, O = 4;
  static constexpr int OH = H - K + 1, PH = OH / 2, F = OC * PH * PH;  // 6, 3, 27
  static constexpr float kRate = 0.5f;
  ConvCase conv;
  Vec pool, drop, wd, bd, logits, dlogits;
  std::vector<int32_t> argmax;
  std::vector<uint8_t> labels;

  explicit ComposedNet(uint64_t seed) : conv({N, C, H, W, K, OC}, seed) {
    wd = random_vector<double>(size_t(O) * F, seed, -1, 1, 10);
    bd = random_vector<double>(O, seed, -1, 1, 11);
    labels = test::random_labels(N, O, seed, 12);
    pool.resize(size_t(N) * F);
    drop.resize(pool.size());
    argmax.resize(pool.size());
    logits.resize(size_t(N) * O);
    dlogits.resize(logits.size());
  }
  double loss() {
    conv.loss();
    maxpool_forward_cpu(conv.y.data(), pool.data(), argmax.data(), N * OC, OH, OH);
    dropout_forward_cpu(pool.data(), drop.data(), drop.size(), kRate, 99, 3, 2);
    dense_forward_cpu(drop.data(), wd.data(), bd.data(), logits.data(), N, F, O);
    return softmax_xent_cpu<double>(logits.data(), labels.data(), dlogits.data(), nullptr, N, O).loss_sum / N;
  }
  // Away from every kink: ReLU inputs, and the top two of each max-pool window whose max is positive
  // (windows that are all ReLU zeros pass no gradient either way).
  bool kink_free() {
    if (conv.kink_distance() <= kKinkMargin) return false;
    const Vec& y = conv.y;
    for (int pl = 0; pl < N * OC; ++pl)
      for (int i = 0; i < PH; ++i)
        for (int j = 0; j < PH; ++j) {
          double v[4];
          for (int d = 0; d < 4; ++d) v[d] = y[(size_t(pl) * OH + 2 * i + d / 2) * OH + 2 * j + d % 2];
          std::sort(v, v + 4);
          if (v[3] > 0 && v[3] - v[2] <= kKinkMargin) return false;
        }
    return true;
  }
};

TEST(GradCheck, ComposedNetConvWeights) {
  uint64_t seed = test::test_seed(808);
  ComposedNet net(seed);
  for (int tries = 0; !net.kink_free(); ++tries) {
    ASSERT_LT(tries, kMaxRedraws) << "no kink-free draw";
    net = ComposedNet(++seed);
  }
  CONVNET_SEED_TRACE(seed);
  const int N = ComposedNet::N, F = ComposedNet::F, O = ComposedNet::O;
  net.loss();
  // Backward through the chain, exactly as a training step would.
  Vec dwd(net.wd.size()), dbd(net.bd.size()), ddrop(net.drop.size()), dpool(net.pool.size());
  dense_backward_cpu(net.drop.data(), net.wd.data(), net.dlogits.data(), dwd.data(), dbd.data(), ddrop.data(),
                     N, F, O);
  dropout_backward_cpu(ddrop.data(), dpool.data(), dpool.size(), ComposedNet::kRate, 99, 3, 2);
  const ConvShape& s = net.conv.s;
  Vec dy(s.y_size()), dpre(s.y_size()), dw(s.w_size()), db(size_t(s.OC));
  maxpool_backward_cpu(dpool.data(), net.argmax.data(), dy.data(), N * s.OC, s.OH(), s.OW());
  // First layer: no input gradient, so dcol and dx are null.
  conv_backward_cpu<double>(net.conv.col.data(), net.conv.w.data(), net.conv.y.data(), dy.data(), dpre.data(),
                            nullptr, dw.data(), db.data(), nullptr, s.N, s.C, s.H, s.W, s.K, s.OC);
  auto loss = [&] { return net.loss(); };
  expect_gradient(loss, net.conv.w.data(), dw.data(), dw.size(), "composed conv dw", kH, kTol);
  expect_gradient(loss, net.conv.b.data(), db.data(), db.size(), "composed conv db", kH, kTol);
  expect_gradient(loss, net.wd.data(), dwd.data(), dwd.size(), "composed dense dw", kH, kTol);
}

}  // namespace
}  // namespace convnet
