// The commands' pure parse phase (host/cli_options.h) in-process, as tests/fuzz/fuzz_cli.cpp calls it:
// the GPU probe is asked only when it matters, GPU-only switches follow the probe's answer, no path
// is looked at (destination checks and loading are the commands'), and a resumed run takes its recipe
// from the checkpoint it is handed. The user's view of the same errors: test_cli.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_options.h"
#include "errors.h"

namespace convnet::test {
namespace {

GpuProbe answer(bool gpu, int* asked) {
  return [gpu, asked](std::string* why) {
    ++*asked;
    if (!gpu) *why = "test probe";
    return gpu;
  };
}

template <class F>
void expect_usage(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no UsageError; expected one containing '" << needle << "'";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(CliOptions, DeviceCpuNeverAsksTheProbe) {
  int asked = 0;
  const TrainOptions o = parse_train_options({"--device", "cpu"}, answer(true, &asked));
  EXPECT_EQ(o.device, "cpu");
  EXPECT_EQ(asked, 0);
  EXPECT_EQ(parse_eval_options({"--model", "m"}, answer(true, &asked)).device, "gpu");
  EXPECT_EQ(asked, 1);
  expect_usage([&] { parse_show_options({"--model", "m", "--device", "gpu"}, answer(false, &asked)); },
               "no CUDA device: test probe; use --device cpu");
}

TEST(CliOptions, GpuOnlySwitchesFollowTheProbe) {
  int asked = 0;
  const std::vector<std::string> args = {"--tf32", "--graphs", "off", "--fusion", "off", "--sync-launches"};
  const TrainOptions o = parse_train_options(args, answer(true, &asked));
  EXPECT_EQ(o.device, "gpu");
  EXPECT_TRUE(o.gpu.tf32);
  EXPECT_FALSE(o.gpu.graphs);
  EXPECT_FALSE(o.gpu.fused);
  EXPECT_TRUE(o.sync_launches);
  // Under --device auto (the default) the message says that no GPU was found; under --device cpu the
  // user chose the CPU, so it does not.
  expect_usage([&] { parse_train_options(args, answer(false, &asked)); },
               "--tf32: only applies to --device gpu (--device auto found no CUDA device here)");
  expect_usage([&] { parse_eval_options({"--model", "m", "--graphs", "off"}, answer(false, &asked)); },
               "--graphs: only applies to --device gpu (--device auto found no CUDA device here)");
  try {
    parse_train_options({"--device", "cpu", "--timing"}, answer(false, &asked));
    ADD_FAILURE() << "--timing on the CPU was accepted";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()), "--timing: only applies to --device gpu");
  }
  const TrainOptions t = parse_train_options({"--timing", "--warmup-steps", "2"}, answer(true, &asked));
  EXPECT_EQ(t.window.kind, MeasureWindow::Kind::Timing);
  EXPECT_EQ(t.window.steps, kDefaultTimingSteps);
  EXPECT_EQ(t.window.warmup, 2);
  EXPECT_FALSE(t.gpu.graphs) << "--timing observes every launch, so graphs are off";
}

// Destinations, checkpoints and models are the commands' business: the parse phase (what the fuzzer
// runs) accepts paths that do not exist.
TEST(CliOptions, ParsingLooksAtNoPath) {
  int asked = 0;
  const TrainOptions n = parse_train_options({"--save", "/nonexistent/m.cnvn", "--log", "/nonexistent/l"},
                                             answer(false, &asked));
  EXPECT_EQ(n.settings.save, "/nonexistent/m.cnvn");
  const TrainOptions r = parse_train_options({"--resume", "/nonexistent/r.ckpt"}, answer(false, &asked));
  EXPECT_TRUE(r.resumed);
  EXPECT_EQ(r.resume_path, "/nonexistent/r.ckpt");
  const PredictOptions p =
      parse_predict_options({"--model", "/nonexistent/m", "--save-preprocessed", "/nonexistent/d", "a.png", "b.png"},
                            answer(false, &asked));
  EXPECT_EQ(p.images, (std::vector<std::string>{"a.png", "b.png"}));
  EXPECT_EQ(p.save_dir, "/nonexistent/d");
}

TEST(CliOptions, ResumedRunTakesTheCheckpointsRecipe) {
  Checkpoint c;
  c.model = build_model("keras");
  c.recipe.arch = c.model.spec;
  c.recipe.optimizer.kind = "sgd";
  c.recipe.optimizer.lr = 0.05f;
  c.recipe.optimizer.momentum = 0.9f;
  c.state.epochs_done = 2;
  c.state.epoch_step = 3;
  int asked = 0;
  const std::vector<std::string> args = {"--resume", "r.ckpt", "--epochs", "9", "--momentum", "0.9"};
  TrainOptions o = parse_train_options(args, answer(false, &asked));
  resume_train_options(&o, args, c);
  EXPECT_EQ(o.recipe.arch, c.recipe.arch);
  EXPECT_EQ(o.recipe.optimizer.kind, "sgd");
  EXPECT_EQ(o.settings.epochs, 9);
  EXPECT_EQ(o.checkpoint_path, "r.ckpt");
  EXPECT_EQ(o.start.epoch_step, 3);
  const std::vector<std::string> lr = {"--resume", "r.ckpt", "--lr", "0.5"};
  expect_usage([&] { resume_train_options(&o, lr, c); }, "--lr: '0.5' contradicts the checkpoint");
  const std::vector<std::string> short_run = {"--resume", "r.ckpt", "--epochs", "2"};
  expect_usage([&] { resume_train_options(&o, short_run, c); }, "--epochs: 2 ends before the checkpoint's position");
}

TEST(CliOptions, EveryCommandHasATableAndUnknownOnesAreRefused) {
  for (const std::string& cmd : command_names()) EXPECT_NO_THROW(command_flags(cmd)) << cmd;
  expect_usage([] { command_flags("frobnicate"); }, "unknown command 'frobnicate'");
  expect_usage([] { parse_devices_options({"--arch", "seed"}); }, "unknown flag --arch for 'convnet devices'");
  EXPECT_EQ(parse_summary_options({"--arch", "keras"}).param_count, 34826);
}

}  // namespace
}  // namespace convnet::test
