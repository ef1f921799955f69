// The resume check shared by the CPU test (tests/test_train_resume.cpp) and the GPU test on the
// simulator (tests/kernels/test_gpu_resume.cpp): train a small run straight through; train it
// again, stopping after some step with a checkpoint written to a file; load that file into a NEW
// backend and resume to the end. The parameters and the optimiser state must then be equal with ==,
// and every epoch the resumed run reports must carry the same training and validation metrics
// (loss sums compared exactly) as the uninterrupted run's.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend.h"
#include "checkpoint.h"
#include "temp_dir.h"
#include "train_fixtures.h"
#include "trainer.h"

namespace convnet::test {

using BackendFactory = std::function<std::unique_ptr<Backend>(const Model&, const BackendConfig&)>;

struct ResumeCase {
  std::string arch = "conv4-pool-flatten-dropout0.5-dense10";
  std::string optimizer = "adam";
  int batch = 16;
  int epochs = 3;
  double val_split = 0.2;
  int train_images = 80;  // with val_split 0.2: 64 trained, 4 steps of 16 per epoch
  uint64_t seed = 7;
};

struct RunResult {
  std::vector<float> params, m, v;
  int64_t step = 0;
  TrainSummary summary;
  std::string printed;
};

inline TrainRecipe recipe_of(const ResumeCase& c) {
  TrainRecipe r;
  r.arch = build_model(c.arch).spec;
  r.train_images = c.train_images;
  r.batch = c.batch;
  r.val_split = c.val_split;
  r.seed = c.seed;
  r.optimizer.kind = c.optimizer;
  if (c.optimizer == "sgd") {
    r.optimizer.lr = 0.05f;
    r.optimizer.momentum = 0.9f;
    r.optimizer.nesterov = true;
  }
  return r;
}

inline BackendConfig backend_config_of(const TrainRecipe& r) {
  BackendConfig b;
  b.seed = r.seed;
  b.max_batch = r.batch;
  b.optimizer = r.optimizer;
  return b;
}

inline TrainConfig train_config_of(const TrainRecipe& r, int epochs) {
  TrainConfig t;
  t.epochs = epochs;
  t.batch = r.batch;
  t.val_split = r.val_split;
  t.seed = r.seed;
  t.limit_train = r.limit_train;
  t.test = false;
  return t;
}

// Trains `epochs` from `start` on a backend; with stop_at_step > 0 asks to stop once the backend's
// step reaches it, and with checkpoint_path writes checkpoints there (every epoch when every > 0).
inline RunResult run(Backend& backend, const Dataset& data, const TrainRecipe& recipe, int epochs,
                     const TrainState& start, int64_t stop_at_step, const std::string& checkpoint_path, int every) {
  const Model model = build_model(recipe.arch);
  TrainConfig tc = train_config_of(recipe, epochs);
  RunSettings settings;
  settings.epochs = epochs;
  settings.checkpoint_every = every;
  settings.test = false;
  if (!checkpoint_path.empty()) {
    tc.checkpoint_every = every;
    tc.checkpoint = [&](const TrainState& st) {
      save_checkpoint(checkpoint_path, model, backend, recipe, settings, st);
    };
  }
  if (stop_at_step > 0) tc.stop_requested = [&backend, stop_at_step] { return backend.step() >= stop_at_step; };
  std::ostringstream out;
  RunResult r;
  r.summary = train_model(backend, data, tc, out, start);
  r.printed = out.str();
  r.params = backend.get_arena(Arena::Params);
  r.m = backend.get_arena(Arena::OptimizerM);
  r.v = backend.get_arena(Arena::OptimizerV);
  r.step = backend.step();
  return r;
}

// The Keras-like epoch lines without their timings: "4/4 - 0.1s - loss: ... - 3306 img/s" becomes
// "4/4 - loss: ...".
inline std::vector<std::string> epoch_lines(const std::string& printed) {
  std::vector<std::string> lines;
  std::istringstream in(printed);
  for (std::string l; std::getline(in, l);) {
    const size_t loss = l.find(" - loss: "), rate = l.rfind(" - ");
    if (loss != std::string::npos) lines.push_back(l.substr(0, l.find(" - ")) + l.substr(loss, rate - loss));
  }
  return lines;
}

inline void expect_same_epochs(const RunResult& straight, const RunResult& resumed) {
  for (const EpochStats& e : resumed.summary.epochs) {
    SCOPED_TRACE("epoch " + std::to_string(e.epoch));
    ASSERT_LE(static_cast<size_t>(e.epoch), straight.summary.epochs.size());
    const EpochStats& s = straight.summary.epochs[static_cast<size_t>(e.epoch - 1)];
    EXPECT_EQ(e.global_step, s.global_step);
    EXPECT_EQ(e.train.loss_sum, s.train.loss_sum);
    EXPECT_EQ(e.train.correct, s.train.correct);
    EXPECT_EQ(e.train.count, s.train.count);
    EXPECT_EQ(e.val.loss_sum, s.val.loss_sum);
    EXPECT_EQ(e.val.correct, s.val.correct);
  }
  // What the user reads: the epoch lines (timings aside) are the straight run's lines of those epochs.
  const std::vector<std::string> a = epoch_lines(straight.printed), b = epoch_lines(resumed.printed);
  ASSERT_EQ(b.size(), resumed.summary.epochs.size());
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_EQ(b[i], a.at(static_cast<size_t>(resumed.summary.epochs[i].epoch - 1)));
}

// Straight run vs stop after `stop_at_step` + checkpoint + new backend + resume: equal with ==.
inline void expect_resume_is_bit_identical(const BackendFactory& make, const ResumeCase& c, int64_t stop_at_step) {
  SCOPED_TRACE("arch " + c.arch + ", " + c.optimizer + ", stop after step " + std::to_string(stop_at_step));
  const TrainRecipe recipe = recipe_of(c);
  const Dataset data = bar_dataset(c.train_images, 16, c.seed);
  const Model model = build_model(recipe.arch);
  RunResult straight;
  {
    auto b = make(model, backend_config_of(recipe));
    straight = run(*b, data, recipe, c.epochs, TrainState{}, 0, "", 0);
  }
  TempDir dir("convnet_resume");
  const std::string path = dir.file("run.ckpt");
  {
    auto b = make(model, backend_config_of(recipe));
    RunResult first = run(*b, data, recipe, c.epochs, TrainState{}, stop_at_step, path, 0);
    ASSERT_TRUE(first.summary.interrupted);
    EXPECT_EQ(first.summary.stopped.global_step, stop_at_step);
    expect_same_epochs(straight, first);
  }  // the first backend is gone: everything the resumed run knows comes from the file
  const Checkpoint ckpt = load_checkpoint(path);
  EXPECT_EQ(ckpt.state.global_step, stop_at_step);
  auto b = make(ckpt.model, backend_config_of(ckpt.recipe));
  restore_checkpoint(*b, ckpt);
  RunResult resumed = run(*b, data, ckpt.recipe, c.epochs, ckpt.state, 0, "", 0);
  EXPECT_FALSE(resumed.summary.interrupted);
  EXPECT_EQ(resumed.step, straight.step);
  EXPECT_TRUE(resumed.params == straight.params) << "parameters differ";
  EXPECT_TRUE(resumed.m == straight.m) << "optimizer m differs";
  EXPECT_TRUE(resumed.v == straight.v) << "optimizer v differs";
  expect_same_epochs(straight, resumed);
}

// Train `first_epochs` with a checkpoint every epoch, then resume from the file with more epochs
// (--epochs raised): ends equal to a run of c.epochs straight.
inline void expect_longer_resume_is_bit_identical(const BackendFactory& make, const ResumeCase& c, int first_epochs) {
  SCOPED_TRACE("arch " + c.arch + ", " + c.optimizer + ", " + std::to_string(first_epochs) + " epochs, then " +
               std::to_string(c.epochs));
  const TrainRecipe recipe = recipe_of(c);
  const Dataset data = bar_dataset(c.train_images, 16, c.seed);
  const Model model = build_model(recipe.arch);
  auto a = make(model, backend_config_of(recipe));
  const RunResult straight = run(*a, data, recipe, c.epochs, TrainState{}, 0, "", 0);
  TempDir dir("convnet_resume");
  const std::string path = dir.file("run.ckpt");
  {
    auto b = make(model, backend_config_of(recipe));
    run(*b, data, recipe, first_epochs, TrainState{}, 0, path, 1);
  }
  const Checkpoint ckpt = load_checkpoint(path);
  EXPECT_EQ(ckpt.state.epochs_done, first_epochs);
  EXPECT_EQ(ckpt.state.epoch_step, 0);
  EXPECT_EQ(ckpt.settings.epochs, first_epochs);
  {  // resumed at its own epoch count: nothing to train, and the run says how to train longer
    auto same = make(ckpt.model, backend_config_of(ckpt.recipe));
    restore_checkpoint(*same, ckpt);
    const RunResult again = run(*same, data, ckpt.recipe, first_epochs, ckpt.state, 0, "", 0);
    EXPECT_TRUE(again.summary.epochs.empty());
    EXPECT_EQ(again.step, ckpt.state.global_step);
    EXPECT_NE(again.printed.find("Nothing left to train: epoch " + std::to_string(first_epochs) + " of " +
                                 std::to_string(first_epochs) + " is done (raise --epochs to train longer)\n"),
              std::string::npos)
        << again.printed;
  }
  auto b = make(ckpt.model, backend_config_of(ckpt.recipe));
  restore_checkpoint(*b, ckpt);
  const RunResult resumed = run(*b, data, ckpt.recipe, c.epochs, ckpt.state, 0, "", 0);
  EXPECT_TRUE(resumed.params == straight.params) << "parameters differ";
  EXPECT_TRUE(resumed.m == straight.m && resumed.v == straight.v) << "optimizer state differs";
  ASSERT_EQ(resumed.summary.epochs.size(), static_cast<size_t>(c.epochs - first_epochs));
  expect_same_epochs(straight, resumed);
}

}  // namespace convnet::test
