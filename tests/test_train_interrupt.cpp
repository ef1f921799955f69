// `convnet train` as a user stops and resumes it, through the real binary in a child process, on a
// synthetic IDX folder the test writes (so these run without MNIST_DIR):
//   - Ctrl-C (SIGINT) mid-run: exit 130, the resume hint, a loadable checkpoint in the default
//     place (./convnet-interrupted.ckpt), and `--resume` finishes with the same model, byte for
//     byte in every tensor, as a run that was never interrupted, its log holding each epoch once;
//   - two quick Ctrl-Cs: exit 130 at once, and the previous checkpoint (--checkpoint-every) intact;
//   - kill -9 at many moments, checkpoint writes included: there is never a corrupt checkpoint,
//     only none or a loadable one, and the next successful write removes stale temporary files;
//   - --resume with recipe flags that contradict the checkpoint: one-line usage errors naming them.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "checkpoint.h"
#include "child_process.h"
#include "model_io.h"
#include "process.h"
#include "temp_dir.h"
#include "train_fixtures.h"

namespace convnet::test {
namespace {

bool exists(const std::string& path) { return std::filesystem::exists(path); }

// A folder with a synthetic data set in data/ where the children run.
class TrainFolder {
 public:
  TrainFolder(int train, int test) : dir_("convnet_interrupt") {
    std::filesystem::create_directory(data());
    ok_ = write_idx_folder(data(), bar_dataset(train, test, 3));
  }
  bool ok() const { return ok_; }
  std::string data() const { return dir_.file("data"); }
  std::string file(const std::string& name) const { return dir_.file(name); }
  const TempDir& dir() const { return dir_; }

  // convnet train <args> --data data/, run in this folder.
  std::unique_ptr<Child> start(std::vector<std::string> args, const std::string& name) const {
    std::vector<std::string> argv = {convnet_binary(), "train", "--device", "cpu", "--data", data()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Child>(argv, dir_.path(), file(name + ".out"), file(name + ".err"));
  }

 private:
  TempDir dir_;
  bool ok_ = false;
};

std::vector<float> model_params(const std::string& path) { return load_trained_model(path).second; }

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(TrainInterrupt, CtrlCCheckpointsAndResumeEndsLikeAnUninterruptedRun) {
  TrainFolder t(1500, 100);
  ASSERT_TRUE(t.ok());
  // 1350 images in 27 steps of 50 per epoch; 8 epochs, so a Ctrl-C during epoch 3 leaves many steps.
  const std::vector<std::string> recipe = {"--arch", "conv8-pool-flatten-dropout0.5-dense10", "--epochs", "8",
                                           "--batch-size", "50"};
  std::vector<std::string> args = recipe;
  args.insert(args.end(), {"--save", "straight.cnvn"});
  auto straight = t.start(args, "straight");
  ASSERT_EQ(straight->wait(120), 0) << straight->err();

  args = recipe;
  args.insert(args.end(), {"--save", "resumed.cnvn", "--log", "run.jsonl"});
  auto run = t.start(args, "run");
  ASSERT_TRUE(run->wait_for("Epoch 3/8", 60)) << run->out() << run->err();
  run->signal(SIGINT);
  ASSERT_EQ(run->wait(60), 130) << run->out() << run->err();
  const std::string err = run->err();
  EXPECT_NE(err.find("convnet: interrupt: finishing the current step"), std::string::npos) << err;
  EXPECT_NE(err.find("interrupted at epoch "), std::string::npos) << err;
  // --data is not part of the checkpoint, so the command repeats it.
  EXPECT_NE(err.find("; resume with: convnet train --resume convnet-interrupted.ckpt --data " + t.data() + "\n"),
            std::string::npos)
      << err;
  EXPECT_NE(run->out().find("Saved checkpoint to convnet-interrupted.ckpt"), std::string::npos) << run->out();
  EXPECT_FALSE(exists(t.file("resumed.cnvn"))) << "an interrupted run saves no model";

  const Checkpoint ckpt = load_checkpoint(t.file("convnet-interrupted.ckpt"));
  EXPECT_GE(ckpt.state.epochs_done, 2);
  EXPECT_LT(ckpt.state.epochs_done, 8) << "the run had finished before the signal: make it longer";
  EXPECT_EQ(ckpt.settings.save, "resumed.cnvn");
  EXPECT_EQ(ckpt.settings.log, "run.jsonl");

  // The resume command as printed (no flags: --save and --log come from the checkpoint).
  auto resumed = t.start({"--resume", "convnet-interrupted.ckpt"}, "resumed");
  ASSERT_EQ(resumed->wait(120), 0) << resumed->out() << resumed->err();
  EXPECT_NE(resumed->out().find("Resumed from convnet-interrupted.ckpt"), std::string::npos) << resumed->out();
  EXPECT_NE(resumed->out().find("Test accuracy: "), std::string::npos) << resumed->out();
  EXPECT_TRUE(model_params(t.file("resumed.cnvn")) == model_params(t.file("straight.cnvn")))
      << "the resumed run's parameters differ from the uninterrupted run's";

  // The log holds every epoch once, in order, however the interrupt fell.
  const std::vector<std::string> lines = file_lines(t.file("run.jsonl"));
  ASSERT_EQ(lines.size(), 8u);
  for (size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(lines[i].rfind("{\"epoch\":" + std::to_string(i + 1) + ",", 0), 0u) << lines[i];
}

// The resume hint is a command to paste into a shell: a checkpoint or data path with a space or a
// quote in it is quoted there, so sh runs the very command that resumes the run.
TEST(TrainInterrupt, TheResumeHintRunsAsPrintedInAShellWhateverThePathsHold) {
  TrainFolder t(1500, 100);
  ASSERT_TRUE(t.ok());
  std::filesystem::create_directory_symlink(t.data(), t.file("it's my data"));
  const std::string ckpt = "run 1's.ckpt";
  auto run = std::make_unique<Child>(
      std::vector<std::string>{convnet_binary(), "train", "--device", "cpu", "--data", "it's my data", "--arch",
                               "conv8-pool-flatten-dropout0.5-dense10", "--epochs", "8", "--batch-size", "50",
                               "--no-test", "--checkpoint", ckpt},
      t.dir().path(), t.file("run.out"), t.file("run.err"));
  ASSERT_TRUE(run->wait_for("Epoch 3/8", 60)) << run->out() << run->err();
  run->signal(SIGINT);
  ASSERT_EQ(run->wait(60), 130) << run->out() << run->err();
  const std::string err = run->err(), marker = "; resume with: convnet ";
  const size_t at = err.find(marker);
  ASSERT_NE(at, std::string::npos) << err;
  const std::string hint = err.substr(at + marker.size(), err.find('\n', at) - at - marker.size());
  EXPECT_EQ(hint, R"(train --resume 'run 1'\''s.ckpt' --data 'it'\''s my data')");

  // `convnet` as this build's binary (sh's $0, so the test quotes nothing); the rest exactly as printed.
  Child resumed({"/bin/sh", "-c", "\"$0\" " + hint, convnet_binary()}, t.dir().path(), t.file("resumed.out"),
                t.file("resumed.err"));
  ASSERT_EQ(resumed.wait(120), 0) << resumed.out() << resumed.err();
  EXPECT_NE(resumed.out().find("Resumed from " + ckpt), std::string::npos) << resumed.out();
  EXPECT_NE(resumed.out().find("Epoch 8/8"), std::string::npos) << resumed.out();
}

TEST(TrainInterrupt, ASecondCtrlCExitsAtOnceAndKeepsThePreviousCheckpoint) {
  TrainFolder t(2000, 50);
  ASSERT_TRUE(t.ok());
  // Steps of 1000 images of the seed network (~0.3 s each here): the second signal arrives while
  // the first one's step is still running. If the first landed at the very end of a step, the run
  // may finish its checkpoint before the second arrives; that attempt proves nothing and is redone.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    SCOPED_TRACE("attempt " + std::to_string(attempt));
    std::filesystem::remove(t.file("run.ckpt"));
    auto run = t.start({"--arch", "seed", "--epochs", "3", "--batch-size", "1000", "--no-test", "--checkpoint",
                        "run.ckpt"},
                       "run");
    ASSERT_TRUE(run->wait_for("Epoch 2/3", 120)) << run->out() << run->err();
    ASSERT_TRUE(run->out().find("Saved checkpoint to run.ckpt (epoch 1 step 2/2)") != std::string::npos)
        << run->out();
    run->signal(SIGINT);
    ASSERT_TRUE(run->wait_for("convnet: interrupt:", 30, true)) << run->err();
    run->signal(SIGINT);
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(run->wait(30), 130) << run->err();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string err = run->err();
    if (err.find("interrupted at epoch") != std::string::npos && err.find("interrupted again") == std::string::npos)
      continue;  // the first signal's checkpoint was done before the second came: try again
    EXPECT_NE(err.find("convnet: interrupted again: exiting now"), std::string::npos) << err;
    EXPECT_LT(seconds, 2.0) << "the second Ctrl-C did not exit at once";
    // The checkpoint of epoch 1 is intact and loads.
    const Checkpoint ckpt = load_checkpoint(t.file("run.ckpt"));
    EXPECT_EQ(ckpt.state.epochs_done, 1);
    EXPECT_EQ(ckpt.state.epoch_step, 0);
    return;
  }
  FAIL() << "in three attempts the second Ctrl-C never arrived while the first was being handled";
}

TEST(TrainInterrupt, KillNineNeverLeavesACorruptCheckpoint) {
  TrainFolder t(2000, 20);
  ASSERT_TRUE(t.ok());
  // One 64-image step, 40 validation images and a checkpoint write per epoch: a large share of the
  // run is spent writing checkpoints, so the kills below land inside writes too.
  const std::vector<std::string> args = {"--arch", "conv4-pool-flatten-dense10", "--limit-train", "64",
                                         "--batch-size", "64", "--val-split", "0.02", "--epochs", "100000",
                                         "--no-test", "--checkpoint", "run.ckpt"};
  int loadable = 0;
  for (int delay_us : {0, 300, 900, 1700, 2900, 4300, 6100, 8800, 13000, 21000}) {
    SCOPED_TRACE("kill -9 " + std::to_string(delay_us) + " us after epoch 3 began");
    auto run = t.start(args, "run");
    ASSERT_TRUE(run->wait_for("Epoch 3/", 60)) << run->out() << run->err();
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    run->signal(SIGKILL);
    EXPECT_EQ(run->wait(30), 128 + SIGKILL);
    if (!exists(t.file("run.ckpt"))) continue;
    const Checkpoint ckpt = load_checkpoint(t.file("run.ckpt"));  // throws, failing the test, if corrupt
    EXPECT_GE(ckpt.state.epochs_done, 1);
    ++loadable;
  }
  EXPECT_GT(loadable, 0);
  // A run that finishes cleans up whatever temporary files the kills left.
  const Checkpoint last = load_checkpoint(t.file("run.ckpt"));
  auto resumed = t.start({"--resume", "run.ckpt", "--epochs", std::to_string(last.state.epochs_done + 1)}, "resumed");
  ASSERT_EQ(resumed->wait(60), 0) << resumed->out() << resumed->err();
  EXPECT_EQ(load_checkpoint(t.file("run.ckpt")).state.epochs_done, last.state.epochs_done + 1);
  for (const std::string& name : t.dir().entries())
    EXPECT_EQ(name.find("run.ckpt.tmp."), std::string::npos) << name << " was left behind";
}

void expect_usage_error(const std::vector<std::string>& args, const std::string& needle) {
  std::string cmd;
  for (const std::string& a : args) cmd += a + " ";
  SCOPED_TRACE("convnet " + cmd);
  ProcessResult r = run_convnet(args);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  std::vector<std::string> lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("convnet: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

TEST(TrainResumeFlags, ContradictionsAreUsageErrorsAndAgreementIsFine) {
  TrainFolder t(300, 20);
  ASSERT_TRUE(t.ok());
  const std::string ckpt = t.file("run.ckpt"), data = t.data();
  ProcessResult first = run_convnet({"train", "--device", "cpu", "--data", data, "--arch", "keras", "--epochs", "1",
                                     "--batch-size", "64", "--no-test", "--checkpoint", ckpt});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::vector<std::string> resume = {"train", "--device", "cpu", "--data", data, "--resume", ckpt};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = resume;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  expect_usage_error(with({"--lr", "0.5"}), "--lr: '0.5' contradicts the checkpoint");
  expect_usage_error(with({"--arch", "seed"}), "--arch");
  expect_usage_error(with({"--batch-size", "32"}), "--batch-size");
  expect_usage_error(with({"--seed", "9"}), "--seed");
  expect_usage_error(with({"--optimizer", "sgd"}), "--optimizer");
  expect_usage_error(with({"--val-split", "0.2"}), "--val-split");
  expect_usage_error(with({"--limit-train", "100"}), "--limit-train");
  expect_usage_error(with({"--dataset", "fashion"}), "--dataset");
  expect_usage_error(with({"--nesterov"}), "--nesterov");
  expect_usage_error(with({"--epochs", "0"}), "--epochs");
  expect_usage_error({"train", "--checkpoint-every", "2"}, "--checkpoint-every: needs --checkpoint");

  // Not a checkpoint, no file, other data: one line naming the file.
  ProcessResult saved = run_convnet({"train", "--device", "cpu", "--data", data, "--arch", "keras", "--epochs", "1",
                                     "--no-test", "--save", t.file("model.cnvn")});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  expect_usage_error({"train", "--resume", t.file("model.cnvn")}, "not a training checkpoint");
  expect_usage_error({"train", "--resume", t.file("none.ckpt")}, t.file("none.ckpt"));
  std::filesystem::create_directory(t.file("other"));
  ASSERT_TRUE(write_idx_folder(t.file("other"), bar_dataset(310, 20, 4)));
  expect_usage_error({"train", "--device", "cpu", "--data", t.file("other"), "--resume", ckpt},
                     "the training set has 310 images");

  // Flags that agree with the checkpoint are accepted; --epochs raised trains only what is new.
  ProcessResult more = run_convnet(with({"--arch", "keras", "--batch-size", "64", "--seed", "1", "--epochs", "2"}));
  ASSERT_EQ(more.exit_code, 0) << more.err;
  EXPECT_EQ(more.out.find("Epoch 1/2"), std::string::npos) << more.out;
  EXPECT_NE(more.out.find("Epoch 2/2"), std::string::npos) << more.out;
  EXPECT_NE(more.out.find("Saved checkpoint to " + ckpt + " (epoch 2 step 5/5)"), std::string::npos) << more.out;
  expect_usage_error(with({"--epochs", "1"}), "--epochs: 1 ends before the checkpoint's position");
}

}  // namespace
}  // namespace convnet::test
