// The measuring window of `convnet train --timing` / `--profile-steps` (host/step_window.h): warm-up
// steps, then the measured steps between the start and stop hooks, the device synchronised (metrics
// read back) just before start and just before stop, full batches only, each epoch's order uploaded
// outside a measured step, and a diverged window reported like a diverged run.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "errors.h"
#include "model.h"
#include "step_window.h"
#include "train_fixtures.h"

namespace convnet {
namespace {

// Records the calls the window makes, with the hooks', in one log.
class RecordingBackend final : public Backend {
 public:
  std::string describe() const override { return "recording"; }
  int add_images(const ImageSet& set) override {
    log.push_back("add " + std::to_string(set.count));
    return 7;
  }
  void set_order(const std::vector<int32_t>& order, int cursor) override {
    orders.push_back(order);
    log.push_back("order " + std::to_string(cursor));
  }
  void train_step(int set, int begin, int count) override {
    EXPECT_EQ(set, 7);
    log.push_back("step " + std::to_string(begin) + "+" + std::to_string(count));
    ++step_;
  }
  void eval_batch(int, int, int, float*) override { ADD_FAILURE() << "the window evaluates nothing"; }
  Metrics take_train_metrics() override {
    log.push_back("sync");
    return Metrics{1.0, 0, 3};
  }
  Metrics take_eval_metrics() override { return {}; }
  void set_train_metrics(const Metrics&) override {}
  std::vector<float> get_arena(Arena) const override { return {}; }
  void set_arena(Arena, const std::vector<float>&) override {}
  int64_t step() const override { return step_; }
  void set_step(int64_t step) override { step_ = step; }
  std::optional<NumericFault> numeric_fault() override { return fault; }

  std::vector<std::string> log;
  std::vector<std::vector<int32_t>> orders;
  std::optional<NumericFault> fault;
  int64_t step_ = 0;
};

TrainConfig config(int batch) {
  TrainConfig c;
  c.batch = batch;
  c.val_split = 0.2;  // of 12 images: 9 train (12 * 0.8 floored), so 2 full batches of 4 and 1 image skipped
  c.seed = 9;
  return c;
}

StepWindowHooks logging_hooks(std::vector<std::string>& log) {
  StepWindowHooks h;
  h.start = [&log] { log.push_back("start"); };
  h.before_step = [&log] { log.push_back("before"); };
  h.after_step = [&log] { log.push_back("after"); };
  h.stop = [&log] { log.push_back("stop"); };
  return h;
}

TEST(StepWindow, WarmsUpThenMeasuresFullBatchesBetweenTheHooks) {
  RecordingBackend b;
  const ImageSet train = test::bar_digits(12, 1);
  const Metrics m = run_step_window(b, train, config(4), 3, 3, logging_hooks(b.log));
  EXPECT_EQ(m.count, 3);
  const std::vector<std::string> expected = {
      "add 12", "order 0", "step 0+4", "step 4+4", "order 0", "step 0+4",  // warm-up, into epoch 2
      "sync", "start",
      "before", "step 4+4", "after",                                        // measured
      "order 0", "before", "step 0+4", "after",                             // epoch 3, its order outside the step
      "before", "step 4+4", "after",
      "sync", "stop"};
  EXPECT_EQ(b.log, expected);
  ASSERT_EQ(b.orders.size(), 3u);
  for (int e = 0; e < 3; ++e) EXPECT_EQ(b.orders[static_cast<size_t>(e)], epoch_order(9, e + 1, 9)) << "epoch " << e + 1;
}

TEST(StepWindow, NoWarmUpAndNoHooksAreFine) {
  RecordingBackend b;
  run_step_window(b, test::bar_digits(12, 1), config(4), 0, 1);
  EXPECT_EQ(b.log, (std::vector<std::string>{"add 12", "sync", "order 0", "step 0+4", "sync"}));
}

TEST(StepWindow, ABatchLargerThanTheSplitIsAUsageError) {
  RecordingBackend b;
  try {
    run_step_window(b, test::bar_digits(12, 1), config(11), 1, 1);
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--batch-size: 11 is more than the 9 training images; timing and profiling run full batches only");
  }
}

TEST(StepWindow, ADivergedWindowIsANumericError) {
  RecordingBackend b;
  NumericFault f;
  f.step = 2;
  f.loss = "NaN";
  b.fault = f;
  try {
    run_step_window(b, test::bar_digits(12, 1), config(4), 1, 1, logging_hooks(b.log));
    ADD_FAILURE() << "no error";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("training diverged at step 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.log.back(), "stop") << "the profiler window is closed before the error";
}

// The real CPU backend through the window: every step trains a full batch.
TEST(StepWindow, CpuBackendTrainsWarmUpPlusMeasuredSteps) {
  BackendConfig bc;
  bc.max_batch = 4;
  auto cpu = make_cpu_backend(build_model("conv4-pool-flatten-dense10"), bc);
  const Metrics m = run_step_window(*cpu, test::bar_digits(12, 1), config(4), 2, 3);
  EXPECT_EQ(cpu->step(), 5);
  EXPECT_EQ(m.count, 3 * 4);
}

}  // namespace
}  // namespace convnet
