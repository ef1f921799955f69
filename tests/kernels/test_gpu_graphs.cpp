// CUDA graphs in the GPU backend (BackendConfig::graphs): a backend that captures each step shape
// once and replays it must end bit-identical (==) to one that launches every kernel directly, in
// parameters, optimiser state, reported metrics and probabilities, through partial last batches,
// several image sets, a resume in the middle of a run (set_arena / set_step / set_order /
// set_train_metrics on a backend whose graphs are live), and a reallocated order buffer. It also
// checks how many graphs are captured (once per shape) and that replays really replace the launches.
// Runs on the simulator (kernel_tests_sim, which records and replays the captures) and on a real GPU
// (kernel_tests_gpu), skipping with the reason when there is none.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend.h"
#include "cuda_check.h"
#include "device_array.h"
#include "gpu_graph.h"
#include "kernel_test.h"
#include "launch.h"
#include "resume_check.h"
#include "train_fixtures.h"
#include "trainer.h"

namespace convnet {
namespace {

class GpuGraphs : public KernelTest {};

// 80 images, 20% validation: 64 trained in steps of 12 (five, then one of 4) and 16 validated in
// batches of 12 and 4, so each run has two training and two evaluation shapes.
test::ResumeCase small_case(const std::string& optimizer) {
  test::ResumeCase c;
  c.optimizer = optimizer;
  c.batch = 12;
  c.epochs = 3;
  return c;
}

std::unique_ptr<Backend> make(const test::ResumeCase& c, bool graphs) {
  BackendConfig config = test::backend_config_of(test::recipe_of(c));
  config.graphs = graphs;
  return make_gpu_backend(build_model(c.arch), config);
}

struct Outcome {
  test::RunResult run;
  Metrics test_metrics, test_again;
  std::vector<float> test_probs;
  uint64_t captures = 0, launches = 0;
};

// Trains the case for its epochs, then evaluates the test set (another image set, same batch
// counts) with probabilities, and again without (the validation's shapes, on another set).
Outcome train_and_test(const test::ResumeCase& c, bool graphs) {
  const Dataset data = test::bar_dataset(c.train_images, 16, c.seed);
  auto backend = make(c, graphs);
  Outcome o;
  const uint64_t captures = gpu_graph_captures(), launches = kernel_launch_count();
  o.run = test::run(*backend, data, test::recipe_of(c), c.epochs, TrainState{}, 0, "", 0);
  const int test_set = backend->add_images(data.test);
  o.test_probs.resize(static_cast<size_t>(data.test.count) * kNumClasses);
  o.test_metrics = evaluate(*backend, test_set, 0, data.test.count, c.batch, o.test_probs.data());
  o.test_again = evaluate(*backend, test_set, 0, data.test.count, c.batch);
  EXPECT_EQ(o.test_again.loss_sum, o.test_metrics.loss_sum);
  o.captures = gpu_graph_captures() - captures;
  o.launches = kernel_launch_count() - launches;
  EXPECT_EQ(backend->describe().find("CUDA graphs") != std::string::npos, graphs) << backend->describe();
  return o;
}

void expect_identical(const Outcome& on, const Outcome& off) {
  EXPECT_EQ(on.run.step, off.run.step);
  EXPECT_TRUE(on.run.params == off.run.params) << "parameters differ";
  EXPECT_TRUE(on.run.m == off.run.m) << "optimizer m differs";
  EXPECT_TRUE(on.run.v == off.run.v) << "optimizer v differs";
  ASSERT_EQ(on.run.summary.epochs.size(), off.run.summary.epochs.size());
  test::expect_same_epochs(off.run, on.run);  // training and validation metrics, loss sums with ==
  EXPECT_EQ(on.test_metrics.loss_sum, off.test_metrics.loss_sum);
  EXPECT_EQ(on.test_metrics.correct, off.test_metrics.correct);
  EXPECT_EQ(on.test_metrics.count, off.test_metrics.count);
  EXPECT_TRUE(on.test_probs == off.test_probs) << "test probabilities differ";
  EXPECT_EQ(on.test_again.loss_sum, off.test_again.loss_sum);
  EXPECT_EQ(on.test_again.correct, off.test_again.correct);
}

TEST_F(GpuGraphs, OnAndOffAreBitIdenticalOverEpochsWithPartialBatches) {
  for (const char* optimizer : {"adam", "sgd"}) {
    SCOPED_TRACE(optimizer);
    const test::ResumeCase c = small_case(optimizer);
    const Outcome off = train_and_test(c, false);
    const Outcome on = train_and_test(c, true);
    expect_identical(on, off);
    EXPECT_EQ(off.captures, 0u);
    // Training: 12 and 4 samples. Validation (no probabilities): 12 and 4. Test set, another image
    // set: 12 and 4 with probabilities, 12 and 4 without. Each shape once, whatever the epochs.
    EXPECT_EQ(on.captures, 8u);
    // 18 training steps and 10 evaluation batches, of which only the 8 captured ones went through
    // launch(): the rest were replays.
    EXPECT_LT(on.launches * 4, off.launches) << "on " << on.launches << ", off " << off.launches;
  }
}

// The same calls, in lockstep, on a backend with graphs and one without.
struct Pair {
  std::unique_ptr<Backend> b[2];  // [0] graphs off, [1] graphs on
  int set[2] = {-1, -1};
  void add_images(const ImageSet& s) {
    for (int i = 0; i < 2; ++i) set[i] = b[i]->add_images(s);
  }
  template <typename F>
  void both(F&& f) {
    for (int i = 0; i < 2; ++i) f(*b[i], set[i]);
  }
  void train(int first, const std::vector<int>& counts) {
    for (int count : counts) {
      both([&](Backend& x, int s) { x.train_step(s, first, count); });
      first += count;
    }
  }
  void expect_identical(const std::string& when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(b[0]->step(), b[1]->step());
    for (Arena a : {Arena::Params, Arena::OptimizerM, Arena::OptimizerV})
      EXPECT_TRUE(b[0]->get_arena(a) == b[1]->get_arena(a)) << "arena " << static_cast<int>(a) << " differs";
    const Metrics m0 = b[0]->take_train_metrics(), m1 = b[1]->take_train_metrics();
    EXPECT_EQ(m0.loss_sum, m1.loss_sum);
    EXPECT_EQ(m0.correct, m1.correct);
    EXPECT_EQ(m0.count, m1.count);
    std::vector<float> p[2];
    Metrics e[2];
    for (int i = 0; i < 2; ++i) {
      p[i].resize(20 * kNumClasses);
      e[i] = evaluate(*b[i], set[i], 0, 20, 16, p[i].data());
    }
    EXPECT_EQ(e[0].loss_sum, e[1].loss_sum);
    EXPECT_TRUE(p[0] == p[1]) << "probabilities differ";
  }
};

Pair lockstep_pair(const test::ResumeCase& c) {
  Pair p;
  p.b[0] = make(c, false);
  p.b[1] = make(c, true);
  return p;
}

// A resume on a backend whose graphs are already captured: set_arena, set_step, set_order (cursor in
// the middle of an epoch) and set_train_metrics write the device state the graphs read, and the
// replays that follow use it.
TEST_F(GpuGraphs, ResumeWritesReachTheCapturedGraphs) {
  test::ResumeCase c;
  c.batch = 16;
  Pair p = lockstep_pair(c);
  const ImageSet data = test::bar_digits(40, 3);
  p.add_images(data);
  const uint64_t captures = gpu_graph_captures();
  p.both([&](Backend& x, int) { x.set_order(epoch_order(3, 1, 40)); });
  p.train(0, {16, 16, 8});
  p.expect_identical("after epoch 1");
  EXPECT_EQ(gpu_graph_captures() - captures, 4u);  // train 16 and 8, eval 16 and 4 with probabilities

  // Snapshot after epoch 1, train into epoch 2, then go back to the snapshot and resume mid-epoch 2.
  std::vector<float> saved[2][3];
  int64_t saved_step[2];
  const Arena arenas[3] = {Arena::Params, Arena::OptimizerM, Arena::OptimizerV};
  for (int i = 0; i < 2; ++i) {
    for (int a = 0; a < 3; ++a) saved[i][a] = p.b[i]->get_arena(arenas[a]);
    saved_step[i] = p.b[i]->step();
  }
  const std::vector<int32_t> order2 = epoch_order(3, 2, 40);
  p.both([&](Backend& x, int) { x.set_order(order2); });
  p.train(0, {16, 16});
  p.expect_identical("into epoch 2");
  for (int i = 0; i < 2; ++i) {
    for (int a = 0; a < 3; ++a) p.b[i]->set_arena(arenas[a], saved[i][a]);
    p.b[i]->set_step(saved_step[i] + 1);  // as if one step of 16 had been taken since
    p.b[i]->set_order(order2, 16);
    Metrics partial;
    partial.loss_sum = 12.5;
    partial.correct = 3;
    partial.count = 16;
    p.b[i]->set_train_metrics(partial);
  }
  p.train(16, {16, 8});
  p.expect_identical("resumed in epoch 2");
  EXPECT_EQ(gpu_graph_captures() - captures, 4u) << "a resume captured again";
}

// add_images may reallocate the sample-order buffer, whose address every graph holds: the graphs are
// dropped and captured again, and training the first set afterwards stays identical.
TEST_F(GpuGraphs, AReallocatedOrderBufferIsCapturedAgain) {
  test::ResumeCase c;
  c.batch = 16;
  Pair p = lockstep_pair(c);
  p.add_images(test::bar_digits(40, 4));
  const int first_set[2] = {p.set[0], p.set[1]};
  p.both([&](Backend& x, int) { x.set_order(epoch_order(4, 1, 40)); });
  p.train(0, {16, 16, 8});
  const uint64_t captures = gpu_graph_captures();
  p.add_images(test::bar_digits(60, 5));  // larger: the order buffer is reallocated
  for (int i = 0; i < 2; ++i) p.set[i] = first_set[i];
  p.both([&](Backend& x, int) { x.set_order(epoch_order(4, 2, 40)); });
  p.train(0, {16, 16, 8});
  p.expect_identical("after the reallocation");
  EXPECT_EQ(gpu_graph_captures() - captures, 4u);  // train 16 and 8 again; eval 16 and 4
}

// --sync-launches synchronises after every launch, which is illegal inside a capture: the backend
// launches directly then, and says so in describe().
TEST_F(GpuGraphs, SyncLaunchesTurnGraphsOff) {
  struct SyncScope {
    SyncScope() { set_gpu_sync_launches(true); }
    ~SyncScope() { set_gpu_sync_launches(false); }
  } sync;
  test::ResumeCase c;
  c.batch = 16;
  auto b = make(c, true);
  EXPECT_EQ(b->describe().find("CUDA graphs"), std::string::npos) << b->describe();
  const int set = b->add_images(test::bar_digits(32, 6));
  b->set_order(epoch_order(6, 1, 32));
  const uint64_t captures = gpu_graph_captures();
  b->train_step(set, 0, 16);
  b->train_step(set, 16, 16);
  std::vector<float> probs(16 * kNumClasses);
  evaluate(*b, set, 0, 16, 16, probs.data());
  EXPECT_EQ(gpu_graph_captures(), captures);
}

// A step that throws while being captured (a failed check, or a call the capture forbids) reports its
// own error, leaves no graph behind and the stream out of capture, so the next step can run.
TEST_F(GpuGraphs, AFailedCaptureLeavesTheStreamUsable) {
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreate(&stream));
  DeviceArray<int> out(4);
  StepGraphs graphs;
  const StepGraphs::Key key = {0, 0, 4, 0};
  auto status = [stream] {
    cudaStreamCaptureStatus st = cudaStreamCaptureStatusActive;
    CUDA_CHECK(cudaStreamIsCapturing(stream, &st));
    return st;
  };
  try {
    graphs.launch(key, stream, [&] {
      CUDA_CHECK(cudaMemsetAsync(out.get(), 0, 4 * sizeof(int), stream));
      throw std::runtime_error("step failed");
    });
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "step failed");
  }
  EXPECT_EQ(status(), cudaStreamCaptureStatusNone);
  try {
    graphs.launch(key, stream, [&] { CUDA_CHECK(cudaStreamSynchronize(stream)); });
    ADD_FAILURE() << "a synchronisation inside a capture passed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaErrorStreamCaptureUnsupported"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cudaStreamSynchronize"), std::string::npos) << e.what();
  }
  EXPECT_EQ(status(), cudaStreamCaptureStatusNone);
  EXPECT_EQ(graphs.size(), 0u);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  graphs.launch(key, stream, [&] { CUDA_CHECK(cudaMemsetAsync(out.get(), 1, 4 * sizeof(int), stream)); });
  CUDA_CHECK(cudaStreamSynchronize(stream));
  EXPECT_EQ(graphs.size(), 1u);
  for (int v : out.download()) EXPECT_EQ(v, 0x01010101);
  graphs.clear();
  CUDA_CHECK(cudaStreamDestroy(stream));
}

#if defined(CONVNET_SIMT)
// The destructor releases every graph it instantiated (the simulator counts live graphs).
TEST_F(GpuGraphs, TheDestructorDestroysTheGraphs) {
  const simt::GraphStats before = simt::graph_stats();
  {
    test::ResumeCase c;
    c.batch = 16;
    auto b = make(c, true);
    const int set = b->add_images(test::bar_digits(24, 8));
    b->set_order(epoch_order(8, 1, 24));
    b->train_step(set, 0, 16);
    b->train_step(set, 16, 8);
    evaluate(*b, set, 0, 24, 16);
    EXPECT_EQ(simt::graph_stats().execs_live, before.execs_live + 4);
    EXPECT_EQ(simt::graph_stats().graphs_live, before.graphs_live);  // destroyed once instantiated
  }
  EXPECT_EQ(simt::graph_stats().execs_live, before.execs_live);
}
#endif

}  // namespace
}  // namespace convnet
