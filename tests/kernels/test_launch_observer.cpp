// The launch observer (kernels/launch_observer.h) and the `--timing` KernelTimer built on it
// (host/gpu_timing.h): every kernel launch and every GEMM is one before/after pair with its name, on
// the launch's stream; nothing is seen without an observer or after it is removed; the timer's table
// accounts for every launch of a training step and its shares sum to 100 %.
// Under the simulator the events time the simulator on the host, which is all these checks need.
// The same source builds kernel_tests_sim (simulator) and kernel_tests_gpu (real GPU; skips without one).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "device_array.h"
#include "gpu_blas.h"
#include "gpu_timing.h"
#include "kernel_test.h"
#include "kernels.h"
#include "launch.h"
#include "synthetic_images.h"
#include "trainer.h"

namespace convnet {
namespace {

struct Event {
  char what;  // 'b' before, 'a' after
  std::string name;
  cudaStream_t stream;
};

class RecordingObserver final : public LaunchObserver {
 public:
  void before_launch(const char* name, cudaStream_t stream) override { events.push_back({'b', name, stream}); }
  void after_launch(const char* name, cudaStream_t stream) override { events.push_back({'a', name, stream}); }
  // The launches seen, in order; fails the test unless every before is followed by its own after.
  std::vector<std::string> launches() const {
    std::vector<std::string> names;
    EXPECT_EQ(events.size() % 2, 0u);
    for (size_t i = 0; i + 1 < events.size(); i += 2) {
      EXPECT_EQ(events[i].what, 'b') << "event " << i;
      EXPECT_EQ(events[i + 1].what, 'a') << "event " << i + 1;
      EXPECT_EQ(events[i].name, events[i + 1].name) << "event " << i;
      EXPECT_EQ(events[i].stream, events[i + 1].stream) << "event " << i;
      names.push_back(events[i].name);
    }
    return names;
  }
  std::vector<Event> events;
};

class LaunchObserverTest : public KernelTest {};

// A GPU backend on the seed network with `batch` noise images resident and ordered; graphs off (a
// replayed graph makes no launches to observe), fused kernels or one kernel per layer op.
std::unique_ptr<Backend> seed_backend(int batch, int* set, bool fused = true, bool graphs = false) {
  BackendConfig config;
  config.max_batch = batch;
  config.graphs = graphs;
  config.fused = fused;
  auto gpu = make_gpu_backend(build_model("seed"), config);
  *set = gpu->add_images(test::noise_images(4 * batch));
  gpu->set_order(epoch_order(1, 1, 4 * batch));
  return gpu;
}

TEST_F(LaunchObserverTest, SeesEachKernelAndGemmAsOnePairOnItsStream) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  cublasHandle_t blas = nullptr;
  ASSERT_EQ(cublasCreate(&blas), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(blas, stream), CUBLAS_STATUS_SUCCESS);
  DeviceArray<float> a(std::vector<float>(3 * 7, 1.0f)), b(std::vector<float>(5 * 7, 1.0f)), c(3 * 5), d(7 * 7);
  relu_forward_gpu(c.get(), c.size(), stream);  // before any observer: not seen
  RecordingObserver outer, inner;
  {
    ScopedLaunchObserver watch(&outer);
    relu_forward_gpu(c.get(), c.size(), stream);
    {
      ScopedLaunchObserver nested(&inner);  // replaces outer, then gives it back
      gemm_gpu(blas, false, true, 3, 5, 7, 1.0f, a.get(), b.get(), 0.0f, c.get());
    }
    gemm_gpu(blas, true, false, 7, 7, 3, 1.0f, a.get(), a.get(), 0.0f, d.get());
  }
  relu_forward_gpu(c.get(), c.size(), stream);  // after: not seen
  EXPECT_EQ(launch_observer(), nullptr);
  EXPECT_EQ(outer.launches(), (std::vector<std::string>{"relu_forward_kernel", "sgemm TN 7x7x3"}));
  EXPECT_EQ(inner.launches(), (std::vector<std::string>{"sgemm NT 3x5x7"}));
  for (const Event& e : outer.events) EXPECT_EQ(e.stream, stream) << e.name;
  EXPECT_EQ(inner.events.at(0).stream, stream);
  EXPECT_EQ(c.download(), std::vector<float>(3 * 5, 7.0f)) << "the observed GEMM computed its result";
  cublasDestroy(blas);
  cudaStreamDestroy(stream);
}

// One training step: one pair per launch() (kernel_launch_count) plus one per GEMM, the GEMMs named
// by the shapes the seed network's layers give them at this batch.
TEST_F(LaunchObserverTest, SeesEveryLaunchOfAPerLayerTrainingStep) {
  const int n = 6;
  int set = 0;
  auto gpu = seed_backend(n, &set, false);
  RecordingObserver seen;
  const uint64_t kernels_before = kernel_launch_count();
  {
    ScopedLaunchObserver watch(&seen);
    gpu->train_step(set, 0, n);
  }
  const std::vector<std::string> names = seen.launches();
  std::map<std::string, int> count;
  for (const std::string& name : names) ++count[name];
  int gemms = 0;
  for (const std::string& name : names) gemms += name.rfind("sgemm ", 0) == 0;
  EXPECT_EQ(names.size() - static_cast<size_t>(gemms), kernel_launch_count() - kernels_before);
  // conv2d (1x28x28 -> 32x26x26): forward, weight gradient, and no input gradient (first layer).
  const std::string P1 = std::to_string(n * 26 * 26);
  EXPECT_EQ(count["sgemm NN 32x" + P1 + "x9"], 1);
  EXPECT_EQ(count["sgemm NT 32x9x" + P1], 1);
  EXPECT_EQ(count["sgemm TN 9x" + P1 + "x32"], 0);
  // conv2d_1 (32x13x13 -> 64x11x11) has an input gradient; dense (64 -> 10) all three.
  const std::string P2 = std::to_string(n * 11 * 11);
  EXPECT_EQ(count["sgemm TN 288x" + P2 + "x64"], 1);
  EXPECT_EQ(count["sgemm NT " + std::to_string(n) + "x10x64"], 1);
  EXPECT_EQ(count["sgemm TN 10x64x" + std::to_string(n)], 1);
  EXPECT_EQ(count["sgemm NN " + std::to_string(n) + "x64x10"], 1);
  EXPECT_EQ(gemms, 3 + 3 + 3 + 3 - 1);  // three GEMMs per conv and dense layer, but conv2d has no dx
  EXPECT_EQ(count["im2col_kernel"], 3);
  EXPECT_EQ(count["adam_update_kernel"], 1);
  EXPECT_EQ(names.front(), "gather_batch_kernel");
  EXPECT_EQ(names.back(), "step_advance_kernel");
}

// The fused step (host/fused_plan.h): 8 kernels and the 6 GEMMs of conv2d_1 and conv2d_2 (forward,
// weight gradient, input gradient); conv2d and the dense layer run inside fused kernels.
TEST_F(LaunchObserverTest, SeesEveryLaunchOfAFusedTrainingStep) {
  const int n = 6;
  int set = 0;
  auto gpu = seed_backend(n, &set, true);
  RecordingObserver seen;
  {
    ScopedLaunchObserver watch(&seen);
    gpu->train_step(set, 0, n);
  }
  const std::string P2 = std::to_string(n * 11 * 11), P3 = std::to_string(n * 3 * 3);
  EXPECT_EQ(seen.launches(), (std::vector<std::string>{
                                 "conv_input_forward_kernel", "sgemm NN 64x" + P2 + "x288",
                                 "conv_epilogue_forward_kernel", "sgemm NN 64x" + P3 + "x576",
                                 "conv_epilogue_forward_kernel", "head_train_kernel",
                                 "conv_epilogue_backward_kernel", "sgemm NT 64x576x" + P3,
                                 "sgemm TN 576x" + P3 + "x64", "conv_epilogue_backward_kernel",
                                 "sgemm NT 64x288x" + P2, "sgemm TN 288x" + P2 + "x64", "conv_input_backward_kernel<3>",
                                 "optimizer_step_kernel<adam>"}));
}

// A backend configured for graphs launches directly while an observer is installed: events recorded
// inside a capture would time the capture once, not each step. It captures again once it is removed.
TEST_F(LaunchObserverTest, AnObserverTurnsGraphsOffWhileItIsInstalled) {
  const int n = 4;
  int set = 0;
  auto gpu = seed_backend(n, &set, true, true);
  RecordingObserver seen;
  const uint64_t captures = gpu_graph_captures();
  {
    ScopedLaunchObserver watch(&seen);
    gpu->train_step(set, 0, n);
    gpu->train_step(set, n, n);
  }
  EXPECT_EQ(gpu_graph_captures(), captures);
  EXPECT_EQ(seen.launches().size(), 2 * 14u) << "every launch of both steps, none hidden in a graph";
  gpu->train_step(set, 2 * n, n);
  EXPECT_EQ(gpu_graph_captures(), captures + 1);
}

TEST_F(LaunchObserverTest, KernelTimerAccountsForEveryLaunchOfEveryStep) {
  const int n = 4, warmup = 1, steps = 3;
  int set = 0;
  auto gpu = seed_backend(n, &set);
  KernelTimer timer;
  ScopedLaunchObserver watch(&timer);
  gpu->train_step(set, 0, n);  // warm-up: sizes the event pool
  const size_t per_step = timer.launches() / warmup;
  timer.restart(per_step * steps);
  for (int s = 1; s <= steps; ++s) {
    timer.begin_step();
    gpu->train_step(set, s * n, n);
    timer.end_step();
  }
  EXPECT_EQ(timer.launches(), per_step * steps);
  TimingReport r = timer.report(steps);
  int64_t calls = 0;
  for (const KernelTime& k : r.kernels) {
    calls += k.calls;
    EXPECT_EQ(k.calls % steps, 0) << k.name << " ran a different number of times in different steps";
    EXPECT_GE(k.total_us, 0.0) << k.name;
  }
  EXPECT_EQ(calls, static_cast<int64_t>(per_step) * steps);
  EXPECT_EQ(r.kernels.front().name, "conv_input_forward_kernel") << "kernels are listed in first-launch order";
  // Kernels run one after another inside their step: their sum cannot exceed the steps' span.
  EXPECT_GT(r.step_events_us, 0.0);
  EXPECT_LE(kernel_sum_us(r), r.step_events_us * 1.0001 + 1.0);
  double share_sum = 0.0;
  for (double s : kernel_shares(r)) share_sum += s;
  EXPECT_NEAR(share_sum, 100.0, 1e-9);

  // The printed table: one row per kernel whose share column sums to 100 % within rounding.
  const std::string table = format_timing_table(r, "title");
  double printed = 0.0;
  int rows = 0;
  size_t at = table.find('\n', table.find('\n') + 1) + 1;  // after the title and the header
  for (int i = 0; i < static_cast<int>(r.kernels.size()); ++i, ++rows) {
    const size_t end = table.find('\n', at);
    const std::string line = table.substr(at, end - at);
    printed += std::strtod(line.substr(line.rfind(' ') + 1).c_str(), nullptr);
    at = end + 1;
  }
  EXPECT_NEAR(printed, 100.0, 0.05 * rows + 1e-9) << table;
  EXPECT_EQ(table.compare(at, 11, "all kernels"), 0) << table;
}

}  // namespace
}  // namespace convnet
