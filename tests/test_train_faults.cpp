// Faults during training, and what `convnet train` leaves behind (CPU; the GPU side of the divergence
// record is tests/kernels/test_finite_check.cpp and test_gpu_faults.cpp):
//   - a DeviceFault record in the model's terms: the tensor, layer and element of a flat index, and
//     the one-line message;
//   - the trainer stops at the first sync point after a fault and never checkpoints after it, at an
//     epoch's end or when interrupted (a backend double whose fault appears at a chosen step);
//   - through the binary: an absurd SGD learning rate diverges within a few epochs: exit 3, one line
//     naming step, layer and tensor and the last good checkpoint, which is intact and loadable;
//   - a full disk (RLIMIT_FSIZE, and a 128 KiB tmpfs where mounting is allowed) while writing a
//     checkpoint: exit 2, one line naming the path and the OS reason, the previous checkpoint intact;
//   - an unwritable destination (a parent that is a regular file or missing, a folder): a usage error
//     before any training, naming the flag, the path and why.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "backend_double.h"
#include "checkpoint.h"
#include "errors.h"
#include "model_file.h"
#include "numeric_fault.h"
#include "process.h"
#include "scratch_mounts.h"
#include "temp_dir.h"
#include "train_fixtures.h"
#include "trainer.h"

namespace convnet::test {
namespace {

// ---- the record in the model's terms -------------------------------------------------------------

size_t offset_of(const Model& m, const std::string& tensor) {
  for (const ParamEntry& p : m.params)
    if (p.name == tensor) return p.offset;
  ADD_FAILURE() << "no tensor " << tensor;
  return 0;
}

TEST(NumericFault, NamesTensorLayerAndElement) {
  const Model m = build_model("seed");
  DeviceFault r = no_device_fault();
  EXPECT_FALSE(numeric_fault_from(m, r).has_value());

  r.step = 1233;  // steps done before the faulty one
  r.grad = ((offset_of(m, "conv2d_1.weight") + 517) << 1) | 1u;
  std::optional<NumericFault> f = numeric_fault_from(m, r);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->step, 1234);
  EXPECT_EQ(f->tensor, "conv2d_1.weight");
  EXPECT_EQ(f->layer, "conv2d_1, Conv2D");
  EXPECT_EQ(f->element, 517u);
  EXPECT_EQ(f->count, 18432u);
  EXPECT_EQ(divergence_message(*f, 422),
            "training diverged at step 1234 (epoch 3, step 390 of 422): gradient of conv2d_1.weight (layer conv2d_1, "
            "Conv2D) has Inf (first at element 517 of 18432)");

  r.step = 421;  // the last step of epoch 1, the loss alone
  r.grad = kNoFaultGrad;
  r.loss = kValueNaN;
  EXPECT_EQ(divergence_message(*numeric_fault_from(m, r), 422),
            "training diverged at step 422 (epoch 1, step 422 of 422): the loss is NaN (every gradient is finite)");

  r.grad = (offset_of(m, "dense.bias") + 9) << 1;  // the arena's last tensor, its last element
  r.loss = kValueInf;
  f = numeric_fault_from(m, r);
  EXPECT_EQ(f->tensor, "dense.bias");
  EXPECT_EQ(f->layer, "dense, Dense");
  EXPECT_EQ(f->element, 9u);
  EXPECT_EQ(f->value, "NaN");
  EXPECT_EQ(f->loss, "Inf");

  r.grad = (offset_of(m, "conv2d.bias") + 32) << 1;  // just past conv2d.bias: alignment padding
  EXPECT_EQ(numeric_fault_from(m, r)->tensor, "the arena's alignment padding");
}

// ---- the trainer: no checkpoint after a fault ------------------------------------------------------

// Trains nothing; its numeric_fault() reports a fault from step `fault_step` (1-based) on.
class FaultAtStep final : public test::BackendDouble {
 public:
  explicit FaultAtStep(int64_t fault_step) : fault_step_(fault_step) {}
  void train_step(int set, int begin, int count) override {
    BackendDouble::train_step(set, begin, count);
    train_.loss_sum += count;
  }
  std::optional<NumericFault> numeric_fault() override {
    if (step_ < fault_step_) return std::nullopt;
    NumericFault f;
    f.step = fault_step_;
    f.value = "Inf";
    f.tensor = "dense.weight";
    f.layer = "dense, Dense";
    f.count = 10;
    return f;
  }

 private:
  int64_t fault_step_;
};

TEST(TrainerFaults, AFaultStopsTheRunAtTheEpochEndWithoutACheckpoint) {
  FaultAtStep backend(6);  // epoch 2 of 4-step epochs
  TrainConfig tc;
  tc.epochs = 5;
  tc.batch = 16;
  tc.val_split = 0.0;
  tc.test = false;
  tc.checkpoint_every = 1;
  std::vector<int> saved;
  tc.checkpoint = [&](const TrainState& st) { saved.push_back(st.epochs_done); };
  std::ostringstream out;
  try {
    train_model(backend, bar_dataset(64, 8, 1), tc, out);
    ADD_FAILURE() << "no NumericError";
  } catch (const NumericError& e) {
    EXPECT_EQ(std::string(e.what()),
              "training diverged at step 6 (epoch 2, step 2 of 4): gradient of dense.weight (layer dense, Dense) has "
              "Inf (first at element 0 of 10); try a smaller --lr");
  }
  EXPECT_EQ(saved, std::vector<int>{1}) << "only epoch 1 is checkpointed";
  EXPECT_EQ(out.str().find("Epoch 3/"), std::string::npos) << out.str();
}

TEST(TrainerFaults, AnInterruptedRunThatDivergedWritesNoCheckpoint) {
  FaultAtStep backend(2);
  TrainConfig tc;
  tc.epochs = 3;
  tc.batch = 16;
  tc.val_split = 0.0;
  tc.test = false;
  int saves = 0;
  tc.checkpoint = [&](const TrainState&) { ++saves; };
  tc.stop_requested = [&] { return backend.step() >= 3; };  // Ctrl-C during step 3 of epoch 1
  std::ostringstream out;
  EXPECT_THROW(train_model(backend, bar_dataset(64, 8, 1), tc, out), NumericError);
  EXPECT_EQ(saves, 0);
}

// ---- through the binary ------------------------------------------------------------------------------

// A synthetic data set in data/ of a fresh folder.
class Folder {
 public:
  explicit Folder(int train = 300) : dir_("convnet_faults") {
    std::filesystem::create_directory(file("data"));
    ok_ = write_idx_folder(file("data"), bar_dataset(train, 20, 3));
  }
  bool ok() const { return ok_; }
  std::string file(const std::string& name) const { return dir_.file(name); }
  std::vector<std::string> train(std::vector<std::string> args) const {
    std::vector<std::string> a = {"train", "--device", "cpu", "--data", file("data"), "--no-test"};
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  bool ok_ = false;
};

std::string bytes_of(const std::string& path) { return slurp(path); }

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The only stderr line, which must be "convnet: error: ...".
std::string error_line(const ProcessResult& r) {
  const std::vector<std::string> lines = r.err_lines();
  EXPECT_EQ(lines.size(), 1u) << r.err;
  if (lines.empty()) return "";
  EXPECT_EQ(lines[0].rfind("convnet: error: ", 0), 0u) << lines[0];
  return lines[0];
}

// A deep linear network (no ReLU to die) with plain SGD at lr 1 on the bar digits: epoch 1 is finite
// and the loss then grows without bound until it overflows, a few epochs in (step 8 of 3-step epochs
// here). The test does not depend on which step: it reads it from the message.
const std::vector<std::string> kDiverging = {"--arch", "flatten-dense64-dense64-dense10", "--optimizer", "sgd",
                                             "--lr", "1", "--batch-size", "100", "--val-split", "0", "--epochs", "30"};

TEST(Divergence, AbsurdLearningRateExits3NamingStepLayerTensorAndTheLastGoodCheckpoint) {
  Folder t;
  ASSERT_TRUE(t.ok());
  const std::string ckpt = t.file("run.ckpt");
  std::vector<std::string> args = kDiverging;
  args.insert(args.end(), {"--checkpoint", ckpt, "--save", t.file("model.cnvn"), "--log", t.file("run.jsonl")});
  const ProcessResult r = run_convnet(t.train(args));
  ASSERT_EQ(r.exit_code, 3) << r.out << r.err;
  const std::string line = error_line(r);
  long long step = 0;
  int epoch = 0, in_epoch = 0, of = 0;
  ASSERT_EQ(std::sscanf(line.c_str(), "convnet: error: training diverged at step %lld (epoch %d, step %d of %d): ",
                        &step, &epoch, &in_epoch, &of),
            4)
      << line;
  EXPECT_EQ(of, 3);
  EXPECT_EQ(step, (epoch - 1) * 3 + in_epoch) << line;
  ASSERT_GE(epoch, 2) << "the first epoch diverged already: no earlier checkpoint to keep (" << line << ")";
  EXPECT_NE(line.find("gradient of dense"), std::string::npos) << line;
  EXPECT_NE(line.find(" (layer dense"), std::string::npos) << line;
  EXPECT_TRUE(line.find("has NaN (first at element ") != std::string::npos ||
              line.find("has Inf (first at element ") != std::string::npos)
      << line;
  EXPECT_NE(line.find("try a smaller --lr"), std::string::npos) << line;
  const std::string last = ckpt + " (epoch " + std::to_string(epoch - 1) + " step 3/3)";
  EXPECT_TRUE(ends_with(line, "; last good checkpoint: " + last)) << line;

  // The checkpoint is the last good epoch's, loadable and finite; the diverged epoch wrote none.
  EXPECT_NE(r.out.find("Saved checkpoint to " + last), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Saved checkpoint to " + ckpt + " (epoch " + std::to_string(epoch)), std::string::npos) << r.out;
  const Checkpoint c = load_checkpoint(ckpt);
  EXPECT_EQ(c.state.epochs_done, epoch - 1);
  EXPECT_EQ(c.state.global_step, (epoch - 1) * 3);
  for (float v : c.params) ASSERT_TRUE(std::isfinite(v));
  EXPECT_FALSE(std::filesystem::exists(t.file("model.cnvn"))) << "a diverged run saves no model";
  for (const std::string& name : t.dir().entries()) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
  // The log ends with the diverged epoch.
  std::ifstream log(t.file("run.jsonl"));
  std::string l, last_line;
  int lines = 0;
  while (std::getline(log, l)) last_line = l, ++lines;
  EXPECT_EQ(lines, epoch);
  EXPECT_EQ(last_line.rfind("{\"epoch\":" + std::to_string(epoch) + ",", 0), 0u) << last_line;

  // Without --checkpoint, the line says so.
  const ProcessResult none = run_convnet(t.train(kDiverging));
  ASSERT_EQ(none.exit_code, 3) << none.err;
  const std::string none_line = error_line(none);
  EXPECT_NE(none_line.find("; no checkpoint was written"), std::string::npos) << none_line;
  EXPECT_EQ(none_line.substr(0, none_line.find(':', 16)), line.substr(0, line.find(':', 16)))
      << "the same run diverges at the same step";
}

// A checkpoint of ~83 KB: 6,810 parameters and Adam's two moments.
const std::vector<std::string> kSmall = {"--arch", "conv4-pool-flatten-dense10", "--batch-size", "100"};

void expect_full_disk_error(const ProcessResult& r, const std::string& ckpt, const std::string& reason) {
  ASSERT_EQ(r.exit_code, 2) << r.out << r.err;
  const std::string line = error_line(r);
  EXPECT_EQ(line.rfind("convnet: error: " + ckpt + ": cannot save model file: cannot write " + ckpt + ".tmp.", 0), 0u)
      << line;
  EXPECT_NE(line.find(": " + reason + "; last good checkpoint: " + ckpt + " (epoch 1 step 3/3)"), std::string::npos)
      << line;
}

TEST(CheckpointDisk, FileSizeLimitKeepsThePreviousCheckpoint) {
  Folder t;
  ASSERT_TRUE(t.ok());
  const std::string ckpt = t.file("run.ckpt");
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--checkpoint", ckpt});
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  const std::string before = bytes_of(ckpt);
  ASSERT_GT(before.size(), 64u * 1024);

  // The resumed run trains epoch 2, then cannot write its checkpoint past 32 KiB.
  const ProcessResult r = run_convnet(t.train({"--resume", ckpt, "--epochs", "2"}), ChildLimits{32 * 1024, 0});
  expect_full_disk_error(r, ckpt, std::strerror(EFBIG));
  EXPECT_NE(r.out.find("Epoch 2/2"), std::string::npos) << r.out;
  EXPECT_EQ(bytes_of(ckpt), before) << "the previous checkpoint changed";
  EXPECT_EQ(load_checkpoint(ckpt).state.epochs_done, 1);
  for (const std::string& name : t.dir().entries()) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
}

TEST(CheckpointDisk, FullFilesystemKeepsThePreviousCheckpoint) {
  Folder t;
  ASSERT_TRUE(t.ok());
  Tmpfs disk(t.file("disk"), "128k");  // room for one checkpoint, not for the next one beside it
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (" << disk.why() << "); "
                                    << "CheckpointDisk.FileSizeLimitKeepsThePreviousCheckpoint covers the same path";
  const std::string ckpt = t.file("disk/run.ckpt");
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "3", "--checkpoint", ckpt});
  const ProcessResult r = run_convnet(t.train(args));
  expect_full_disk_error(r, ckpt, std::strerror(ENOSPC));
  EXPECT_NE(r.out.find("Saved checkpoint to " + ckpt + " (epoch 1 step 3/3)"), std::string::npos) << r.out;
  EXPECT_EQ(load_checkpoint(ckpt).state.epochs_done, 1);
  EXPECT_EQ(std::vector<std::string>(1, "run.ckpt"), [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(t.file("disk"))) names.push_back(e.path().filename());
    return names;
  }()) << "the failed write's temporary file is removed";
}

TEST(CheckpointDisk, UnwritableDestinationsAreUsageErrorsBeforeTraining) {
  Folder t;
  ASSERT_TRUE(t.ok());
  { std::ofstream(t.file("plain")) << "a regular file"; }
  std::filesystem::create_directory(t.file("folder"));
  const std::string under_file = t.file("plain/run.ckpt"), missing = t.file("missing/run.ckpt");
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--checkpoint", under_file}, "--checkpoint: cannot write " + under_file + ": " + t.file("plain") +
                                         " is not a directory"},
      {{"--checkpoint", missing}, "--checkpoint: cannot write " + missing + ": " + t.file("missing") + ": " +
                                      std::strerror(ENOENT)},
      {{"--checkpoint", t.file("folder")}, "--checkpoint: " + t.file("folder") + " is a directory"},
      {{"--save", t.file("plain/model.cnvn")}, "--save: cannot write " + t.file("plain/model.cnvn")},
      {{"--save", t.file("missing/deeper/model.cnvn")}, std::strerror(ENOENT)},
  };
  for (const auto& [extra, needle] : cases) {
    std::vector<std::string> args = kSmall;
    args.insert(args.end(), {"--epochs", "1"});
    args.insert(args.end(), extra.begin(), extra.end());
    SCOPED_TRACE(extra[0] + " " + extra[1]);
    const ProcessResult r = run_convnet(t.train(args));
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_NE(error_line(r).find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.out.find("Epoch 1/"), std::string::npos) << "trained before refusing: " << r.out;
  }

  // Resuming into an unwritable place leaves the checkpoint resumed from as it was.
  const std::string ckpt = t.file("run.ckpt");
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--checkpoint", ckpt});
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  const std::string before = bytes_of(ckpt);
  const ProcessResult r = run_convnet(t.train({"--resume", ckpt, "--epochs", "2", "--checkpoint", under_file}));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(error_line(r).find("is not a directory"), std::string::npos) << r.err;
  EXPECT_EQ(bytes_of(ckpt), before);
}

// Runs a small training of `epochs` epochs with `extra` flags; expects exit 2 before training, with one
// line that contains every needle.
void expect_refused_before_training(const Folder& t, const std::vector<std::string>& extra,
                                    const std::vector<std::string>& needles) {
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1"});
  args.insert(args.end(), extra.begin(), extra.end());
  std::string trace;
  for (const std::string& a : extra) trace += a + " ";
  SCOPED_TRACE(trace);
  const ProcessResult r = run_convnet(t.train(args));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  const std::string line = error_line(r);
  for (const std::string& n : needles) EXPECT_NE(line.find(n), std::string::npos) << "no '" << n << "' in " << line;
  EXPECT_EQ(r.out.find("Epoch 1/"), std::string::npos) << "trained before refusing: " << r.out;
}

// The model, checkpoint and PNG writes rename a temporary file over the path: over a FIFO or a device
// that replaced it (as root, --save /dev/null made /dev/null a regular file). They are refused, named
// by flag, and left as they were. --log only appends: a device takes it as it is, and a FIFO does when
// it has a reader (without one the open would block: refused).
TEST(OutputFiles, ADeviceOrFifoIsRefusedAndLeftAlone) {
  Folder t;
  ASSERT_TRUE(t.ok());
  const std::string fifo = t.file("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0) << std::strerror(errno);
  for (const char* flag : {"--save", "--checkpoint"})
    expect_refused_before_training(t, {flag, fifo}, {std::string(flag) + ": " + fifo + " is a FIFO"});
  expect_refused_before_training(t, {"--log", fifo}, {"--log: cannot append to " + fifo + ": a FIFO with no reader"});
  std::filesystem::create_symlink(fifo, t.file("to-fifo"));
  expect_refused_before_training(t, {"--save", t.file("to-fifo")},
                                 {"--save: " + t.file("to-fifo") + " (a link to " + fifo + ") is a FIFO"});
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  // A device node of our own (the null device, where mknod is allowed), never the system's /dev/null.
  const std::string dev = t.file("null");
  if (mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) return;
  expect_refused_before_training(t, {"--save", dev}, {"--save: " + dev + " is a character device"});
  ASSERT_EQ(lstat(dev.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device was replaced";
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--log", dev});
  const ProcessResult r = run_convnet(t.train(args));
  EXPECT_EQ(r.exit_code, 0) << "--log to a null device: " << r.err;
  ASSERT_EQ(lstat(dev.c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device was replaced";
}

// A symbolic link is written through: the file it names gets the model or checkpoint, the link stays.
// A loop of links names no file: refused (the rename would replace the last link).
TEST(OutputFiles, ASymlinkIsWrittenThroughToItsTarget) {
  Folder t;
  ASSERT_TRUE(t.ok());
  std::filesystem::create_directory(t.file("real"));
  std::filesystem::create_symlink("real/model.cnvn", t.file("model-link"));  // dangling until written
  std::filesystem::create_symlink(t.file("real/run.ckpt"), t.file("ckpt-link"));
  { std::ofstream(t.file("real/run.ckpt")) << "an old file"; }
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--save", t.file("model-link"), "--checkpoint", t.file("ckpt-link")});
  const ProcessResult r = run_convnet(t.train(args));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(std::filesystem::is_symlink(t.file("model-link")));
  EXPECT_TRUE(std::filesystem::is_symlink(t.file("ckpt-link")));
  EXPECT_EQ(load_checkpoint(t.file("real/run.ckpt")).state.epochs_done, 1);
  EXPECT_EQ(load_checkpoint(t.file("ckpt-link")).state.epochs_done, 1);
  EXPECT_NO_THROW(load_model_file(t.file("real/model.cnvn")));
  // A relative target with "..", through a folder that is itself a link: ".." is the real folder's
  // parent, as the kernel resolves it, not the link's folder's (a lexical reading named w/m.bin).
  std::filesystem::create_directories(t.file("real/sub"));
  std::filesystem::create_directory(t.file("w"));
  std::filesystem::create_symlink(t.file("real/sub"), t.file("w/out"));
  std::filesystem::create_symlink("../m.bin", t.file("real/sub/lnk"));
  { std::ofstream(t.file("w/m.bin")) << "precious"; }
  args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--save", t.file("w/out/lnk")});
  const ProcessResult dots = run_convnet(t.train(args));
  ASSERT_EQ(dots.exit_code, 0) << dots.out << dots.err;
  EXPECT_EQ(bytes_of(t.file("w/m.bin")), "precious");
  EXPECT_NO_THROW(load_model_file(t.file("real/m.bin")));
  std::filesystem::create_symlink("loop-b", t.file("loop-a"));
  std::filesystem::create_symlink("loop-a", t.file("loop-b"));
  expect_refused_before_training(t, {"--save", t.file("loop-a")}, {"--save: ", "is a loop of symbolic links"});
  EXPECT_TRUE(std::filesystem::is_symlink(t.file("loop-a")));
  for (const std::string& name : t.dir().entries()) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
}

// --log appends: to a file that is not a training log (a model file given by mistake) it would ruin
// it, so that is refused and the file left as it was; a real log is appended to, as a resumed run does.
TEST(OutputFiles, LogAppendsOnlyToATrainingLog) {
  Folder t;
  ASSERT_TRUE(t.ok());
  const std::string model = t.file("model.cnvn"), log = t.file("run.jsonl");
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--save", model, "--log", log});
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  const std::string model_bytes = bytes_of(model);
  expect_refused_before_training(t, {"--log", model}, {"--log: " + model, "not a JSON-lines training log"});
  EXPECT_EQ(bytes_of(model), model_bytes) << "the model file changed";
  { std::ofstream(t.file("binary.jsonl")) << std::string("{\0\1\2", 4); }
  expect_refused_before_training(t, {"--log", t.file("binary.jsonl")}, {"--log: ", "binary byte at offset 1"});

  args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--log", log});
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  const std::string text = bytes_of(log);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  { std::ofstream(t.file("empty.jsonl")); }
  args.back() = t.file("empty.jsonl");
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  // A last line cut short (a full disk, a crash) is ended first: the new line is not glued onto it.
  { std::ofstream(log, std::ios::app) << "{\"epoch\":9"; }
  args.back() = log;
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  const std::string cut = bytes_of(log);
  EXPECT_NE(cut.find("{\"epoch\":9\n{\"epoch\":1,"), std::string::npos) << cut;
  EXPECT_EQ(cut.back(), '\n');
}

// Two output flags on one file: the later write destroys the earlier one's data. Paths compare after
// "." and "..", and links. A resumed run that checkpoints back to the file it resumed from is fine.
TEST(OutputFiles, TwoFlagsNamingOneFileAreAUsageError) {
  Folder t;
  ASSERT_TRUE(t.ok());
  const std::string x = t.file("x");
  std::filesystem::create_directory(t.file("sub"));
  std::filesystem::create_symlink(x, t.file("link"));
  expect_refused_before_training(t, {"--save", x, "--checkpoint", x}, {"--save and --checkpoint name the same file"});
  expect_refused_before_training(t, {"--save", x, "--log", t.file("sub/../x")}, {"--save and --log", "sub/../x"});
  expect_refused_before_training(t, {"--checkpoint", t.file("./x"), "--log", t.file("link")},
                                 {"--checkpoint and --log name the same file"});
  EXPECT_FALSE(std::filesystem::exists(x));
  // Without --checkpoint, a Ctrl-C checkpoint goes to ./convnet-interrupted.ckpt, replacing that file.
  expect_refused_before_training(t, {"--save", "./convnet-interrupted.ckpt"},
                                 {"--save: ./convnet-interrupted.ckpt is where Ctrl-C saves a checkpoint"});
  expect_refused_before_training(t, {"--log", "convnet-interrupted.ckpt"}, {"--log: convnet-interrupted.ckpt is where"});

  const std::string ckpt = t.file("run.ckpt");
  std::vector<std::string> args = kSmall;
  args.insert(args.end(), {"--epochs", "1", "--checkpoint", ckpt, "--log", t.file("run.jsonl")});
  ASSERT_EQ(run_convnet(t.train(args)).exit_code, 0);
  const std::string before = bytes_of(ckpt);
  const ProcessResult clash = run_convnet(t.train({"--resume", ckpt, "--epochs", "2", "--log", ckpt}));
  EXPECT_EQ(clash.exit_code, 2) << clash.err;
  EXPECT_NE(error_line(clash).find("--checkpoint and --log name the same file"), std::string::npos) << clash.err;
  EXPECT_EQ(bytes_of(ckpt), before);
  const ProcessResult again = run_convnet(t.train({"--resume", ckpt, "--epochs", "2"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(load_checkpoint(ckpt).state.epochs_done, 2);
  const std::string log = bytes_of(t.file("run.jsonl"));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 2) << "the resumed run appends to the log: " << log;
}

// A folder that exists but takes no new file was only found when the model was saved, after training.
TEST(OutputFiles, AReadOnlyFolderIsRefusedBeforeTraining) {
  Folder t;
  ASSERT_TRUE(t.ok());
  ReadOnlyFolder ro(t.file("ro"));
  if (!ro.ok()) GTEST_SKIP() << ro.why();
  for (const char* flag : {"--save", "--checkpoint", "--log"}) {
    const std::string path = t.file("ro/out");
    expect_refused_before_training(t, {flag, path},
                                   {std::string(flag) + ": cannot write " + path + ": " + t.file("ro")});
  }
}

// `train --no-test` reads only the training files: a folder without the t10k pair trains, and the
// same run that needs the test set names the missing file.
TEST(DataFiles, NoTestTrainsWithoutTheTestFiles) {
  Folder t;
  ASSERT_TRUE(t.ok());
  for (const char* f : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    ASSERT_TRUE(std::filesystem::remove(t.file("data") + "/" + f)) << f;
  const std::vector<std::string> quick = {"--arch", "flatten-dense10", "--epochs", "1", "--batch-size", "100"};
  const ProcessResult ok = run_convnet(t.train(quick));
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("Epoch 1/1"), std::string::npos) << ok.out;
  std::vector<std::string> with_test = t.train(quick);
  with_test.erase(std::find(with_test.begin(), with_test.end(), "--no-test"));
  const ProcessResult missing = run_convnet(with_test);
  ASSERT_EQ(missing.exit_code, 2) << missing.out << missing.err;
  EXPECT_NE(error_line(missing).find("t10k-images"), std::string::npos) << missing.err;
}

// Out of host memory: a batch whose buffers cannot fit is refused before anything is touched (with
// overcommit the allocation would succeed and the OOM killer end the run without a word), and an
// allocation refused by an address-space limit is reported too; both one line, exit 2.
TEST(HostMemory, ABatchLargerThanMemoryIsRefusedBeforeAllocating) {
  Folder t;
  ASSERT_TRUE(t.ok());
  // ~11 MB of activations per sample: 65536 of them need ~700 GiB.
  const ProcessResult r = run_convnet(t.train({"--arch", "conv2048-flatten-dense10", "--batch-size", "65536"}));
  ASSERT_EQ(r.exit_code, 2) << r.out << r.err;
  const std::string line = error_line(r);
  EXPECT_EQ(line.rfind("convnet: error: out of host memory: the CPU backend needs ", 0), 0u) << line;
  EXPECT_NE(line.find(" for batches of 65536), "), std::string::npos) << line;
  EXPECT_TRUE(ends_with(line, "; use a smaller --batch-size")) << line;
  EXPECT_EQ(r.out.find("Epoch 1/"), std::string::npos) << r.out;
}

// A model whose parameters alone cannot fit (12.9 billion: 206 GiB with gradients and Adam's
// moments) is refused before its parameters are initialised, and the line says to shrink the model.
TEST(HostMemory, AModelLargerThanMemoryIsRefusedBeforeItsParametersExist) {
  Folder t;
  ASSERT_TRUE(t.ok());
  const ProcessResult r = run_convnet(
      t.train({"--arch", "flatten-dense65536relu-dense65536relu-dense65536relu-dense65536relu-dense10", "--batch-size",
               "1"}));
  ASSERT_EQ(r.exit_code, 2) << r.out << r.err;
  const std::string line = error_line(r);
  EXPECT_EQ(line.rfind("convnet: error: out of host memory: the CPU backend needs ", 0), 0u) << line;
  EXPECT_NE(line.find(" of parameters, gradients and optimiser state, "), std::string::npos) << line;
  EXPECT_TRUE(ends_with(line, "; use a smaller --arch when training, or a machine with more memory")) << line;
}

TEST(HostMemory, AnAddressSpaceLimitGivesOneLineAndExit2) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply to its build";
#else
  Folder t;
  ASSERT_TRUE(t.ok());
  // The seed net at batch 16384 needs ~4.5 GiB of buffers: over a 2 GiB address space, under any
  // machine's free memory that can run this suite.
  ChildLimits limits;
  limits.address_bytes = rlim_t{2} << 30;
  const ProcessResult r = run_convnet(t.train({"--batch-size", "16384"}), limits);
  ASSERT_EQ(r.exit_code, 2) << r.out << r.err;
  const std::string line = error_line(r);
  EXPECT_EQ(line.rfind("convnet: error: out of host memory", 0), 0u) << line;
  EXPECT_EQ(r.out.find("Epoch 1/"), std::string::npos) << r.out;
#endif
}

}  // namespace
}  // namespace convnet::test
