// softmax_xent_gpu (kernels/softmax_xent.cu) against softmax_xent_cpu.
//
// Tolerances:
//   dlogits, probs: ELEMENTWISE (1e-6 abs + 1e-5 rel). Both sides compute in double and round to float
//     once; only the device's exp/log may differ from the host libm in the last double ulps.
//   loss sum: 1e-4 relative. The GPU adds per-sample losses in a tree, the CPU sequentially; both in
//     double, so the difference is ~1e-15 in practice; 1e-4 is the reduction class.
//   correct count and sample count: exact (first arg-max with `>` on the same floats).
// The metrics live in device memory (DeviceMetrics) and are read back only to compare: they are
// checked from zero, from a non-zero start (the kernel ADDS), over two launches, and for run-to-run
// bit equality of the double loss sum.
// Inputs: seeded logits in [-8, 8] (and [-90, 90] to exercise max subtraction), and integer logits in
// {0, 1, 2} so most rows hold ties and the FIRST maximum must win as on the CPU.
// Shapes: batch 128 x 10 classes, N=1, N=300 and N=777 (not multiples of the 256-thread block; threads
// loop over several samples), C=1 and C=3; dlogits and/or probs null. Outputs are poisoned with NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "kernels.h"
#include "launch.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

// Skips, with the reason, when there is no device (kernel_tests_gpu without a GPU).
class SoftmaxXentKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();
      GTEST_SKIP() << "no CUDA device";
    }
  }
};

constexpr double kLossRtol = 1e-4;

struct Batch {
  int N, C;
  std::vector<float> logits;
  std::vector<uint8_t> labels;
};

// Seeded logits in [-range, range]; with `ties`, rounded to integers in {0, 1, 2}.
Batch make_batch(int N, int C, uint64_t seed, double range = 8.0, bool ties = false) {
  Batch b{N, C, random_vector<float>(size_t(N) * C, seed, ties ? -0.5 : -range, ties ? 2.5 : range),
          random_labels(size_t(N), C, seed, 1)};
  if (ties)
    for (float& v : b.logits) v = std::nearbyint(v);
  return b;
}

// CPU reference of one batch: dlogits, probs and the loss/correct totals.
struct Reference {
  std::vector<float> dlogits, probs;
  XentResult result;
};
Reference reference(const Batch& b) {
  Reference r{std::vector<float>(b.logits.size()), std::vector<float>(b.logits.size()), {}};
  r.result = softmax_xent_cpu(b.logits.data(), b.labels.data(), r.dlogits.data(), r.probs.data(), b.N, b.C);
  return r;
}

DeviceMetrics read_metrics(const DeviceArray<DeviceMetrics>& m) { return m.download()[0]; }

void expect_metrics(const DeviceMetrics& got, double loss_sum, long long correct, long long count) {
  EXPECT_NEAR(got.loss_sum, loss_sum, kLossRtol * std::fabs(loss_sum)) << "loss sum";
  EXPECT_EQ(got.correct, correct) << "correct count";
  EXPECT_EQ(got.count, count) << "sample count";
}

// One launch with both outputs, from zeroed metrics, compared with the CPU.
void check_batch(const Batch& b) {
  SCOPED_TRACE("N=" + std::to_string(b.N) + " C=" + std::to_string(b.C));
  const Reference ref = reference(b);
  DeviceArray<float> logits(b.logits), dlogits(b.logits.size()), probs(b.logits.size());
  DeviceArray<uint8_t> labels(b.labels);
  DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{DeviceMetrics{0.0, 0, 0}});
  dlogits.poison();
  probs.poison();
  softmax_xent_gpu(logits.get(), labels.get(), dlogits.get(), probs.get(), b.N, b.C, metrics.get(), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  expect_close(ref.dlogits, dlogits.download(), kElementwise, "dlogits");
  expect_close(ref.probs, probs.download(), kElementwise, "probs");
  expect_metrics(read_metrics(metrics), ref.result.loss_sum, ref.result.correct, b.N);
}

TEST_F(SoftmaxXentKernel, MatchesCpu) {
  const uint64_t seed = test_seed(41);
  CONVNET_SEED_TRACE(seed);
  check_batch(make_batch(128, 10, seed));
  check_batch(make_batch(1, 10, seed + 1));
  check_batch(make_batch(300, 10, seed + 2));
  check_batch(make_batch(777, 3, seed + 3));
  check_batch(make_batch(5, 1, seed + 4));
  check_batch(make_batch(128, 10, seed + 5, 90.0));  // exp would overflow without max subtraction
}

TEST_F(SoftmaxXentKernel, TiesPickTheFirstMaximum) {
  const uint64_t seed = test_seed(42);
  CONVNET_SEED_TRACE(seed);
  check_batch(make_batch(128, 10, seed, 0.0, true));
  check_batch(make_batch(513, 3, seed + 1, 0.0, true));
}

// The kernel ADDS to the metrics: from a non-zero start, and over two launches (an epoch's batches).
TEST_F(SoftmaxXentKernel, AccumulatesAcrossLaunches) {
  const uint64_t seed = test_seed(43);
  CONVNET_SEED_TRACE(seed);
  const Batch a = make_batch(128, 10, seed), b = make_batch(77, 10, seed + 1);
  const XentResult ra = reference(a).result, rb = reference(b).result;
  DeviceArray<float> la(a.logits), lb(b.logits), da(a.logits.size()), db(b.logits.size());
  DeviceArray<uint8_t> ya(a.labels), yb(b.labels);
  const DeviceMetrics start{10.5, 3, 1000};
  DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{start});
  softmax_xent_gpu(la.get(), ya.get(), da.get(), nullptr, a.N, a.C, metrics.get(), nullptr);
  expect_metrics(read_metrics(metrics), start.loss_sum + ra.loss_sum, start.correct + ra.correct, start.count + a.N);
  softmax_xent_gpu(lb.get(), yb.get(), db.get(), nullptr, b.N, b.C, metrics.get(), nullptr);
  expect_metrics(read_metrics(metrics), start.loss_sum + ra.loss_sum + rb.loss_sum,
                 start.correct + ra.correct + rb.correct, start.count + a.N + b.N);
}

// Evaluation passes no dlogits; metrics-only passes neither. The given output must still match, and
// the metrics must not depend on which outputs are written.
TEST_F(SoftmaxXentKernel, NullOutputs) {
  const uint64_t seed = test_seed(44);
  CONVNET_SEED_TRACE(seed);
  const Batch b = make_batch(300, 10, seed);
  const Reference ref = reference(b);
  DeviceArray<float> logits(b.logits), out(b.logits.size());
  DeviceArray<uint8_t> labels(b.labels);
  struct Case {
    bool dlogits, probs;
  };
  for (const Case& c : {Case{false, true}, Case{true, false}, Case{false, false}}) {
    SCOPED_TRACE(std::string("dlogits ") + (c.dlogits ? "on" : "null") + ", probs " + (c.probs ? "on" : "null"));
    DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{DeviceMetrics{0.0, 0, 0}});
    out.poison();
    softmax_xent_gpu(logits.get(), labels.get(), c.dlogits ? out.get() : nullptr, c.probs ? out.get() : nullptr, b.N,
                     b.C, metrics.get(), nullptr);
    const std::vector<float> got = out.download();
    if (c.dlogits) expect_close(ref.dlogits, got, kElementwise, "dlogits");
    if (c.probs) expect_close(ref.probs, got, kElementwise, "probs");
    if (!c.dlogits && !c.probs) {
      for (float v : got) {
        ASSERT_TRUE(std::isnan(v)) << "an output was written although both are null";
      }
    }
    expect_metrics(read_metrics(metrics), ref.result.loss_sum, ref.result.correct, b.N);
  }
}

// Fixed-order reduction: the same batch gives the same double loss sum, bit for bit, every run.
TEST_F(SoftmaxXentKernel, LossSumIsBitIdenticalRunToRun) {
  const Batch b = make_batch(777, 10, test_seed(45));
  DeviceArray<float> logits(b.logits);
  DeviceArray<uint8_t> labels(b.labels);
  double sums[2];
  for (double& s : sums) {
    DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{DeviceMetrics{0.0, 0, 0}});
    softmax_xent_gpu(logits.get(), labels.get(), nullptr, nullptr, b.N, b.C, metrics.get(), nullptr);
    s = read_metrics(metrics).loss_sum;
  }
  EXPECT_EQ(std::memcmp(&sums[0], &sums[1], sizeof(double)), 0) << sums[0] << " vs " << sums[1];
}

TEST_F(SoftmaxXentKernel, EmptyBatchLaunchesNothingAndBadShapesAreRejected) {
  DeviceArray<float> f(10);
  DeviceArray<uint8_t> y(1);
  DeviceArray<DeviceMetrics> metrics(std::vector<DeviceMetrics>{DeviceMetrics{1.0, 2, 3}});
  const uint64_t before = kernel_launch_count();
  softmax_xent_gpu(f.get(), y.get(), f.get(), nullptr, 0, 10, metrics.get(), nullptr);
  EXPECT_EQ(kernel_launch_count(), before);
  expect_metrics(read_metrics(metrics), 1.0, 2, 3);
  EXPECT_THROW(softmax_xent_gpu(f.get(), y.get(), f.get(), nullptr, 1, 0, metrics.get(), nullptr),
               std::invalid_argument);
  EXPECT_THROW(softmax_xent_gpu(f.get(), y.get(), f.get(), nullptr, -1, 10, metrics.get(), nullptr),
               std::invalid_argument);
}

}  // namespace
