// The trainer and the CPU backend: the Keras split and the samples each step and validation read
// (through a recording Backend double), shuffling, checkpoint timing, step determinism, arenas,
// model files of trained models, and the end-to-end accuracy check on real MNIST.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "backend_double.h"
#include "errors.h"
#include "model_io.h"
#include "synthetic_images.h"
#include "train_fixtures.h"
#include "trainer.h"

namespace convnet {
namespace {

BackendConfig small_config(const std::string& optimizer, int batch) {
  BackendConfig c;
  c.seed = 3;
  c.max_batch = batch;
  c.optimizer.kind = optimizer;
  if (optimizer == "sgd") {
    c.optimizer.lr = 0.05f;
    c.optimizer.momentum = 0.9f;
  }
  return c;
}

// Trains nothing; records which samples each training step and each evaluation batch reads, epoch by
// epoch (a new epoch starts at each set_order), so a test can check the split the trainer honours.
class SampleRecorder final : public test::BackendDouble {
 public:
  struct Epoch {
    std::vector<int32_t> trained;  // sample indices of the training set, in step order
    std::vector<int32_t> evaluated;  // of evaluation batches on the training set (validation)
  };
  std::string describe() const override { return "sample recorder"; }
  int add_images(const ImageSet& set) override {
    counts_.push_back(set.count);
    return static_cast<int>(counts_.size()) - 1;
  }
  void set_order(const std::vector<int32_t>& order, int cursor) override {
    EXPECT_EQ(cursor, 0);
    order_ = order;
    epochs.emplace_back();
  }
  void train_step(int set, int begin, int count) override {
    EXPECT_EQ(set, 0);
    for (int i = begin; i < begin + count; ++i) epochs.back().trained.push_back(order_.at(static_cast<size_t>(i)));
    BackendDouble::train_step(set, begin, count);
  }
  void eval_batch(int set, int first, int count, float* probs) override {
    EXPECT_LE(first + count, counts_.at(static_cast<size_t>(set)));
    if (set == 0)
      for (int i = first; i < first + count; ++i) epochs.back().evaluated.push_back(i);
    BackendDouble::eval_batch(set, first, count, probs);
  }

  std::vector<Epoch> epochs;

 private:
  std::vector<int> counts_;
  std::vector<int32_t> order_;
};

// 3 epochs in batches of 16, for a SampleRecorder.
TrainConfig recorder_config(double val_split) {
  TrainConfig tc;
  tc.epochs = 3;
  tc.batch = 16;
  tc.val_split = val_split;
  return tc;
}

std::vector<int32_t> range(int first, int count) {
  std::vector<int32_t> v(static_cast<size_t>(count));
  std::iota(v.begin(), v.end(), first);
  return v;
}

// n blank training images (and one test image): enough for a trainer that never reads pixels.
Dataset blank_dataset(int n) {
  Dataset d;
  d.train.count = n;
  d.train.images.assign(static_cast<size_t>(n) * kImageSide * kImageSide, 0);
  d.train.labels.assign(static_cast<size_t>(n), 0);
  d.test.count = 1;
  d.test.images.assign(kImageSide * kImageSide, 0);
  d.test.labels.assign(1, 0);
  return d;
}

TEST(Trainer, KerasValidationSplit) {
  Split s = make_split(60000, 0.1, 0);
  EXPECT_EQ(s.train_count, 54000);
  EXPECT_EQ(s.val_first, 54000);
  EXPECT_EQ(s.val_count, 6000);
  Split none = make_split(60000, 0.0, 0);
  EXPECT_EQ(none.train_count, 60000);
  EXPECT_EQ(none.val_count, 0);
  Split limited = make_split(60000, 0.1, 1000);
  EXPECT_EQ(limited.train_count, 1000);
  EXPECT_EQ(limited.val_first, 54000);  // validation is still the last 10%
  // Keras floors n * (1 - split): 1003 * 0.9 = 902.7 trains on 902 (rounding would say 903), and
  // 1005 * 0.9 = 904.5 on 904.
  EXPECT_EQ(make_split(1003, 0.1, 0).train_count, 902);
  EXPECT_EQ(make_split(1003, 0.1, 0).val_count, 101);
  EXPECT_EQ(make_split(1005, 0.1, 0).val_first, 904);
}

TEST(Trainer, RunsTheStepsOfItsSplit) {
  struct Case {
    int images;
    double val_split;
    int train, val, steps;
  };
  // MNIST's 54,000 in 422 steps of 128, the last partial (54000 = 421 * 128 + 112).
  for (const Case& c : {Case{60000, 0.1, 54000, 6000, 422}, Case{1000, 0.25, 750, 250, 6},
                        Case{1003, 0.1, 902, 101, 8}}) {
    SCOPED_TRACE(std::to_string(c.images) + " images, val_split " + std::to_string(c.val_split));
    SampleRecorder backend;
    TrainConfig tc;
    tc.epochs = 1;
    tc.val_split = c.val_split;
    tc.test = false;
    std::ostringstream out;
    TrainSummary s = train_model(backend, blank_dataset(c.images), tc, out);
    EXPECT_EQ(s.steps_per_epoch, c.steps);
    EXPECT_EQ(s.epochs.at(0).global_step, c.steps);
    EXPECT_EQ(s.epochs.at(0).train.count, c.train);
    ASSERT_EQ(backend.epochs.size(), 1u);
    EXPECT_EQ(backend.epochs[0].trained.size(), static_cast<size_t>(c.train));
    EXPECT_EQ(backend.epochs[0].evaluated, range(c.train, c.val));
  }
}

TEST(Trainer, EpochOrderIsASeededPermutation) {
  std::vector<int32_t> a = epoch_order(5, 1, 1000), b = epoch_order(5, 1, 1000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, epoch_order(5, 2, 1000));  // reshuffled every epoch
  EXPECT_NE(a, epoch_order(6, 1, 1000));
  std::vector<int32_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(sorted[static_cast<size_t>(i)], i);
  int fixed = 0;
  for (int i = 0; i < 1000; ++i) fixed += a[static_cast<size_t>(i)] == i;
  EXPECT_LT(fixed, 10);  // a real shuffle (expected number of fixed points is 1)
}

TEST(Trainer, TrainsOnEachTrainingImageOnceAnEpochAndValidatesOnlyOnTheHeldOutOnes) {
  // 50 images, val_split 0.2: train on [0, 40), validate on [40, 50); batches of 16, 16, 8. With
  // limit_train 24 only [0, 24) is trained on and validation is still [40, 50).
  for (int limit : {0, 24}) {
    SCOPED_TRACE("limit_train " + std::to_string(limit));
    SampleRecorder backend;
    TrainConfig tc = recorder_config(0.2);
    tc.limit_train = limit;
    tc.seed = 4;
    std::ostringstream out;
    TrainSummary s = train_model(backend, test::bar_dataset(50, 8, 1), tc, out);
    const int train_count = limit ? limit : 40;
    ASSERT_EQ(backend.epochs.size(), 3u);
    for (size_t e = 0; e < backend.epochs.size(); ++e) {
      SCOPED_TRACE("epoch " + std::to_string(e + 1));
      std::vector<int32_t> trained = backend.epochs[e].trained;
      EXPECT_NE(trained, range(0, train_count));  // shuffled
      std::sort(trained.begin(), trained.end());
      EXPECT_EQ(trained, range(0, train_count));  // every training image once, no validation image
      EXPECT_EQ(backend.epochs[e].evaluated, range(40, 10));
      EXPECT_EQ(s.epochs[e].val.count, 10);
    }
    EXPECT_EQ(s.test.count, 8);
  }
}

TEST(Trainer, CheckpointsEveryNEpochsAndAfterTheLast) {
  // --checkpoint-every 2 with 3 epochs: after epoch 2, and after epoch 3 although 3 is not a multiple.
  SampleRecorder backend;
  TrainConfig tc = recorder_config(0.0);
  tc.test = false;
  tc.checkpoint_every = 2;
  std::vector<TrainState> saved;
  tc.checkpoint = [&](const TrainState& st) { saved.push_back(st); };
  std::ostringstream out;
  train_model(backend, test::bar_dataset(40, 8, 1), tc, out);
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].epochs_done, 2);
  EXPECT_EQ(saved[0].global_step, 6);  // 3 steps an epoch
  EXPECT_EQ(saved[1].epochs_done, 3);
  EXPECT_EQ(saved[1].global_step, 9);
  EXPECT_EQ(saved[1].epoch_step, 0);
}

TEST(CpuBackend, LearnsASmallProblemWithEitherOptimizer) {
  for (const char* opt : {"adam", "sgd"}) {
    SCOPED_TRACE(opt);
    Model m = build_model("conv8-pool-flatten-dense10");
    auto be = make_cpu_backend(m, small_config(opt, 32));
    int set = be->add_images(test::band_digits(320, 1));
    std::vector<int32_t> order(320);
    std::iota(order.begin(), order.end(), 0);
    be->set_order(order);
    Metrics before = evaluate(*be, set, 0, 320, 32);
    for (int epoch = 0; epoch < 3; ++epoch)
      for (int b = 0; b < 320; b += 32) be->train_step(set, b, 32);
    Metrics after = evaluate(*be, set, 0, 320, 32);
    EXPECT_EQ(be->step(), 30);
    EXPECT_LT(after.loss(), 0.5 * before.loss());
    EXPECT_GT(after.accuracy(), 0.9);
    Metrics tm = be->take_train_metrics();
    EXPECT_EQ(tm.count, 960);
    EXPECT_EQ(be->take_train_metrics().count, 0);  // taking resets
  }
}

TEST(CpuBackend, StepsAreDeterministicAndEvalIsPure) {
  Model m = build_model("seed");
  ImageSet data = test::band_digits(96, 2);
  std::vector<float> params[2];
  for (int run = 0; run < 2; ++run) {
    auto be = make_cpu_backend(m, small_config("adam", 32));
    int set = be->add_images(data);
    be->set_order(epoch_order(1, 1, 96));
    for (int b = 0; b < 96; b += 32) be->train_step(set, b, 32);
    params[run] = be->get_arena(Arena::Params);
    Metrics e1 = evaluate(*be, set, 0, 96, 32), e2 = evaluate(*be, set, 0, 96, 17);
    EXPECT_EQ(be->get_arena(Arena::Params), params[run]);  // evaluation changes nothing
    EXPECT_NEAR(e1.loss_sum, e2.loss_sum, 1e-4 * e1.loss_sum);  // and has no dropout noise
    EXPECT_EQ(e1.correct, e2.correct);
  }
  EXPECT_EQ(params[0], params[1]);
  EXPECT_NE(params[0], init_params(m, 3));
}

TEST(CpuBackend, ArenasRoundTripAndResumeIdentically) {
  Model m = build_model("keras");
  ImageSet data = test::band_digits(64, 3);
  auto a = make_cpu_backend(m, small_config("adam", 16));
  int set_a = a->add_images(data);
  a->set_order(epoch_order(1, 1, 64));
  a->train_step(set_a, 0, 16);
  a->train_step(set_a, 16, 16);
  // A second backend given the first's full state continues bit-identically.
  auto b = make_cpu_backend(m, small_config("adam", 16));
  int set_b = b->add_images(data);
  b->set_order(epoch_order(1, 1, 64));
  for (Arena ar : {Arena::Params, Arena::OptimizerM, Arena::OptimizerV}) b->set_arena(ar, a->get_arena(ar));
  b->set_step(a->step());
  a->train_step(set_a, 32, 16);
  b->train_step(set_b, 32, 16);
  EXPECT_EQ(a->get_arena(Arena::Params), b->get_arena(Arena::Params));
  EXPECT_THROW(b->set_arena(Arena::Params, std::vector<float>(3)), std::logic_error);
  EXPECT_THROW(b->train_step(set_b, 60, 16), std::logic_error);  // beyond the order
}

TEST(ModelIo, TrainedModelRoundTripsAndMismatchesAreRefused) {
  char dir[] = "/tmp/convnet_modelio_XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/m.cnvn";
  Model m = build_model("seed");
  std::vector<float> arena = init_params(m, 11);
  save_model_file(path, make_model_file(m, arena, {{"dataset", "mnist"}}));
  auto [loaded, params] = load_trained_model(path);
  EXPECT_EQ(loaded.spec, m.spec);
  EXPECT_EQ(params, arena);

  // A file whose tensors do not fit its architecture is refused with the tensor's name.
  ModelFile f = make_model_file(m, arena, {});
  f.arch = build_model("seed96").spec;
  save_model_file(path, f);
  try {
    load_trained_model(path);
    ADD_FAILURE() << "accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d_2.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  f.arch = "conv32-nonsense";
  save_model_file(path, f);
  EXPECT_THROW(load_trained_model(path), InputError);
  std::remove(path.c_str());
  rmdir(dir);
}

// End to end: the CPU reference trains the seed network on 10,000 real MNIST images for 3 epochs
// and must reach >= 90% on the full 10,000-image test set within 60 s, for each of 5 seeds
// (measured here: 93.6-94% in ~12 s per seed on the 2-core dev VM).
class EndToEnd : public ::testing::TestWithParam<int> {};

TEST_P(EndToEnd, SeedNetReaches90PercentOnTheTestSet) {
  const char* dir = std::getenv("MNIST_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "MNIST_DIR is not set: real MNIST is needed for the end-to-end test";
  const auto t0 = std::chrono::steady_clock::now();
  Dataset data = load_dataset(dir, "mnist");
  TrainConfig tc;
  tc.epochs = 3;
  tc.limit_train = 10000;
  tc.val_split = 0.0;
  tc.seed = static_cast<uint64_t>(GetParam());
  BackendConfig bc;
  bc.seed = tc.seed;
  auto be = make_cpu_backend(build_model("seed"), bc);
  std::ostringstream log;
  TrainSummary s = train_model(*be, data, tc, log);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  SCOPED_TRACE(log.str());
  EXPECT_EQ(s.test.count, 10000);
  EXPECT_GE(s.test.accuracy(), 0.90) << "seed " << GetParam();
  EXPECT_LT(seconds, 60.0);
  EXPECT_LT(s.epochs.back().train.loss(), s.epochs.front().train.loss());
}

INSTANTIATE_TEST_SUITE_P(FiveSeeds, EndToEnd, ::testing::Values(1, 2, 3, 4, 5));

}  // namespace
}  // namespace convnet
