// The command line as a user sees it: every bad flag is ONE stderr line naming the flag and exit 2;
// summary, help, train --save and eval work end to end through the real binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <set>

#include "cli_options.h"

#include "process.h"

namespace convnet::test {
namespace {

void expect_usage_error(const std::vector<std::string>& args, const std::string& needle) {
  std::string cmd;
  for (const std::string& a : args) cmd += a + " ";
  SCOPED_TRACE("convnet " + cmd);
  ProcessResult r = run_convnet(args);
  EXPECT_EQ(r.exit_code, 2);
  std::vector<std::string> lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("convnet: error: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

TEST(Cli, BadFlagsAreOneLineUsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"train", "--epochs", "0"}, "--epochs"},
      {{"train", "--epochs", "-3"}, "--epochs"},
      {{"train", "--epochs", "ten"}, "--epochs: expected an integer"},
      {{"train", "--epochs"}, "--epochs: missing value"},
      {{"train", "--batch-size", "0"}, "--batch-size"},
      {{"train", "--batch-size=-8"}, "--batch-size"},
      {{"train", "--lr", "0"}, "--lr"},
      {{"train", "--lr", "-0.1"}, "--lr"},
      {{"train", "--lr", "nan"}, "--lr"},
      {{"train", "--val-split", "1"}, "--val-split"},
      {{"train", "--val-split", "-0.1"}, "--val-split"},
      {{"train", "--limit-train", "0"}, "--limit-train"},
      {{"train", "--seed", "-1"}, "--seed"},
      {{"train", "--arch", "conv32-pool-flatten-dense9"}, "--arch"},
      {{"train", "--arch", "mlp"}, "--arch"},
      {{"train", "--optimizer", "rmsprop"}, "--optimizer"},
      {{"train", "--momentum", "0.9"}, "--momentum"},
      {{"train", "--optimizer", "sgd", "--momentum", "1.5"}, "--momentum"},
      {{"train", "--optimizer", "sgd", "--nesterov"}, "--nesterov"},
      {{"train", "--device", "tpu", "--data", "/nonexistent"}, "--device"},
      {{"train", "--device", "cpu", "--tf32"}, "--tf32"},
      {{"train", "--dataset", "cifar"}, "--dataset"},
      {{"train", "--epochs", "2", "--epochs", "3"}, "--epochs: given more than once"},
      {{"train", "--frobnicate"}, "unknown flag --frobnicate"},
      {{"train", "--nesterov=1"}, "--nesterov: takes no value"},
      {{"train", "extra"}, "unexpected argument 'extra'"},
      {{"eval"}, "--model: required"},
      {{"eval", "--model", "/nonexistent/model.cnvn"}, "/nonexistent/model.cnvn"},
      {{"summary", "--arch", "conv32-softmax"}, "--arch"},
      {{"summary", "-x"}, "unknown option '-x'"},
  };
  for (const auto& c : cases) expect_usage_error(c.first, c.second);
}

// Every numeric flag of every command out of range or malformed, every path flag empty, and every
// combination of flags that contradict each other: one line naming the flag, exit 2, before any data
// or model is read (the paths given do not exist). Resume contradictions: test_train_interrupt.cpp.
// Two tests (train; the others) so that ctest runs them side by side.
TEST(Cli, EveryTrainNumericFlagAndConflictIsAOneLineUsageError) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      // train: numbers
      {{"train", "--epochs", "100001"}, "--epochs: 100001 is out of range"},
      {{"train", "--epochs", "1.5"}, "--epochs: expected an integer"},
      {{"train", "--batch-size", "65537"}, "--batch-size: 65537 is out of range"},
      {{"train", "--batch-size", "-1"}, "--batch-size: -1 is out of range"},
      {{"train", "--batch-size", "64k"}, "--batch-size: expected an integer"},
      {{"train", "--lr", "11"}, "--lr: 11 is out of range"},
      {{"train", "--lr", "inf"}, "--lr: expected a number"},
      {{"train", "--lr", "1e-400"}, "--lr"},
      {{"train", "--lr", ""}, "--lr: expected a number"},
      {{"train", "--optimizer", "sgd", "--momentum", "-0.1"}, "--momentum: -0.1 is out of range"},
      {{"train", "--optimizer", "sgd", "--momentum", "1"}, "--momentum: 1 is out of range"},
      {{"train", "--val-split", "nan"}, "--val-split: expected a number"},
      {{"train", "--val-split", "1.5"}, "--val-split: 1.5 is out of range"},
      {{"train", "--limit-train", "-5"}, "--limit-train: -5 is out of range"},
      {{"train", "--limit-train", "1e3"}, "--limit-train: expected an integer"},
      {{"train", "--seed", "1.5"}, "--seed: expected a non-negative integer"},
      {{"train", "--seed", "99999999999999999999999"}, "--seed: expected a non-negative integer"},
      {{"train", "--checkpoint", "/tmp/convnet-cli.ckpt", "--checkpoint-every", "0"}, "--checkpoint-every: 0 is out"},
      {{"train", "--checkpoint", "/tmp/convnet-cli.ckpt", "--checkpoint-every", "-2"}, "--checkpoint-every: -2"},
      // train: architectures
      {{"train", "--arch", ""}, "--arch: empty architecture"},
      {{"train", "--arch", "conv0-pool-flatten-dense10"}, "--arch: bad layer 'conv0'"},
      {{"train", "--arch", "conv32x29-flatten-dense10"}, "--arch: bad layer 'conv32x29'"},
      {{"train", "--arch", "dropout1-flatten-dense10"}, "--arch: bad layer 'dropout1'"},
      {{"train", "--arch", "flatten-dense0-dense10"}, "--arch: bad layer 'dense0'"},
      {{"train", "--arch", "pool-pool-pool-pool-pool-flatten-dense10"}, "--arch: bad layer 'pool'"},
      {{"train", "--arch", "conv32-flatten-flatten-dense10"}, "--arch: bad layer 'flatten'"},
      {{"train", "--arch", "conv32-pool-flatten-dense10relu"}, "--arch: the last layer must be dense10"},
      {{"train", "--arch", "conv32-pool-dense10"}, "--arch: bad layer 'dense10'"},
      // train: conflicts and empty paths
      {{"train", "--checkpoint-every", "2"}, "--checkpoint-every: needs --checkpoint"},
      {{"train", "--nesterov"}, "--momentum/--nesterov: only apply to --optimizer sgd"},
      {{"train", "--optimizer", "adam", "--momentum", "0.5"}, "--momentum/--nesterov"},
      {{"train", "--optimizer", "sgd", "--momentum", "0", "--nesterov"}, "--nesterov: needs --momentum"},
      {{"train", "--device", "cpu", "--sync-launches"}, "--sync-launches: only applies to --device gpu"},
      {{"train", "--graphs", "maybe"}, "--graphs: expected on or off, got 'maybe'"},
      {{"train", "--graphs", ""}, "--graphs: expected on or off, got ''"},
      {{"train", "--graphs"}, "--graphs: missing value"},
      {{"train", "--graphs=ON"}, "--graphs: expected on or off, got 'ON'"},
      {{"train", "--device", "cpu", "--graphs", "off"}, "--graphs: only applies to --device gpu"},
      {{"train", "--graphs", "on", "--sync-launches"}, "--graphs: 'on' contradicts --sync-launches"},
      {{"train", "--fusion", "yes"}, "--fusion: expected on or off, got 'yes'"},
      {{"train", "--fusion"}, "--fusion: missing value"},
      {{"train", "--device", "cpu", "--fusion", "off"}, "--fusion: only applies to --device gpu"},
      {{"train", "--save", ""}, "--save: empty path"},
      {{"train", "--log", ""}, "--log: empty path"},
      {{"train", "--checkpoint", ""}, "--checkpoint: empty path"},
      {{"train", "--resume", ""}, "--resume: empty path"},
      {{"train", "--data", ""}, "--data: empty path"},
      {{"train", "--save", "/nonexistent/model.cnvn"}, "--save: cannot write /nonexistent/model.cnvn"},
      {{"train", "--checkpoint", "/nonexistent/run.ckpt"}, "--checkpoint: cannot write /nonexistent/run.ckpt"},
      {{"train", "--log", "/nonexistent/run.jsonl"}, "--log: cannot write /nonexistent/run.jsonl"},
      {{"train", "--resume", "/nonexistent/run.ckpt"}, "/nonexistent/run.ckpt"},
      // train: the measuring windows (--timing [N], --profile-steps N, --warmup-steps W)
      {{"train", "--timing", "0"}, "--timing: 0 is out of range"},
      {{"train", "--timing", "-5"}, "--timing: -5 is out of range"},
      {{"train", "--timing=fast"}, "--timing: expected an integer, got 'fast'"},
      {{"train", "--timing", "1000001"}, "--timing: 1000001 is out of range"},
      {{"train", "--profile-steps"}, "--profile-steps: missing value"},
      {{"train", "--profile-steps", "0"}, "--profile-steps: 0 is out of range"},
      {{"train", "--profile-steps", "2.5"}, "--profile-steps: expected an integer"},
      {{"train", "--profile-steps", "5", "--warmup-steps", "-1"}, "--warmup-steps: -1 is out of range"},
      {{"train", "--timing", "--warmup-steps", "x"}, "--warmup-steps: expected an integer"},
      {{"train", "--warmup-steps", "3"}, "--warmup-steps: needs --timing or --profile-steps"},
      {{"train", "--timing", "--profile-steps", "5"}, "--timing: cannot be combined with --profile-steps"},
      {{"train", "--timing", "--resume", "/nonexistent/run.ckpt"}, "--timing: cannot be combined with --resume"},
      {{"train", "--profile-steps", "5", "--checkpoint", "/tmp/convnet-cli.ckpt"},
       "--profile-steps: cannot be combined with --checkpoint"},
      {{"train", "--profile-steps", "5", "--checkpoint-every", "2"},
       "--profile-steps: cannot be combined with --checkpoint-every"},
      {{"train", "--profile-steps", "5", "--save", "/tmp/convnet-cli.cnvn"},
       "--profile-steps: cannot be combined with --save"},
      {{"train", "--timing", "--log", "/tmp/convnet-cli.jsonl"}, "--timing: cannot be combined with --log"},
      {{"train", "--timing", "20", "--epochs", "2"}, "--timing: cannot be combined with --epochs"},
      {{"train", "--timing", "--sync-launches"}, "--timing: cannot be combined with --sync-launches"},
      {{"train", "--device", "cpu", "--timing"}, "--timing: only applies to --device gpu"},
      {{"train", "--device", "cpu", "--profile-steps", "5"}, "--profile-steps: only applies to --device gpu"},
  };
  for (const auto& c : cases) expect_usage_error(c.first, c.second);
}

TEST(Cli, EveryEvalShowPredictNumericFlagAndConflictIsAOneLineUsageError) {
  const std::string m = "/nonexistent/model.cnvn";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      // eval
      {{"eval", "--model", m, "--batch-size", "0"}, "--batch-size: 0 is out of range"},
      {{"eval", "--model", m, "--batch-size=-1"}, "--batch-size: -1 is out of range"},
      {{"eval", "--model", m, "--batch-size", "65537"}, "--batch-size: 65537 is out of range"},
      {{"eval", "--model", m, "--batch-size", "many"}, "--batch-size: expected an integer"},
      {{"eval", "--model", ""}, "--model: empty path"},
      {{"eval", "--model", m, "--data", ""}, "--data: empty path"},
      {{"eval", "--model", m, "--confusion-png", ""}, "--confusion-png: empty path"},
      {{"eval", "--model", m, "--device", "cpu", "--sync-launches"}, "--sync-launches: only applies"},
      {{"eval", "--model", m, "--graphs", "1"}, "--graphs: expected on or off, got '1'"},
      {{"eval", "--model", m, "--device", "cpu", "--graphs", "on"}, "--graphs: only applies to --device gpu"},
      {{"eval", "--model", m, "--fusion", "2"}, "--fusion: expected on or off, got '2'"},
      {{"eval", "--model", m, "--device", "cpu", "--fusion", "on"}, "--fusion: only applies to --device gpu"},
      {{"eval", "--model", m, "--device", "tpu"}, "--device: unknown device 'tpu'"},
      {{"eval", "--model", m, "extra"}, "eval: unexpected argument 'extra'"},
      {{"eval", "--model", m, "--epochs", "1"}, "unknown flag --epochs"},
      // show
      {{"show"}, "--model: required"},
      {{"show", "--model", m, "--count", "0"}, "--count: 0 is out of range"},
      {{"show", "--model", m, "--count", "-4"}, "--count: -4 is out of range"},
      {{"show", "--model", m, "--count", "100001"}, "--count: 100001 is out of range"},
      {{"show", "--model", m, "--count", "ten"}, "--count: expected an integer"},
      {{"show", "--model", m, "--cols", "0"}, "--cols: 0 is out of range"},
      {{"show", "--model", m, "--cols", "1001"}, "--cols: 1001 is out of range"},
      {{"show", "--model", m, "--scale", "0"}, "--scale: 0 is out of range"},
      {{"show", "--model", m, "--scale", "65"}, "--scale: 65 is out of range"},
      {{"show", "--model", m, "--seed", "-1"}, "--seed: expected a non-negative integer"},
      {{"show", "--model", m, "--count", "100000", "--cols", "1", "--scale", "64"}, "--count/--cols/--scale"},
      {{"show", "--model", m, "--out", ""}, "--out: empty path"},
      {{"show", "--model", ""}, "--model: empty path"},
      {{"show", "--model", m, "--data", ""}, "--data: empty path"},
      {{"show", "--model", m, "--device", "cpu", "--sync-launches"}, "--sync-launches: only applies"},
      {{"show", "--model", m, "--misclassified=1"}, "--misclassified: takes no value"},
      {{"show", "--model", m, "extra"}, "show: unexpected argument 'extra'"},
      // predict
      {{"predict", "digit.png"}, "--model: required"},
      {{"predict", "--model", m}, "predict: no IMAGE given"},
      {{"predict", "--model", "", "digit.png"}, "--model: empty path"},
      {{"predict", "--model", m, "--save-preprocessed", "", "digit.png"}, "--save-preprocessed: empty directory name"},
      {{"predict", "--model", m, "--device", "cpu", "--sync-launches", "digit.png"}, "--sync-launches: only applies"},
      {{"predict", "--model", m, "--json=yes", "digit.png"}, "--json: takes no value"},
      {{"predict", "--model", m, "--batch-size", "8", "digit.png"}, "unknown flag --batch-size"},
      // summary, devices
      {{"summary", "--arch", "dense10"}, "--arch: bad layer 'dense10'"},
      {{"summary", "extra"}, "summary: unexpected argument 'extra'"},
      {{"devices", "extra"}, "devices: unexpected argument 'extra'"},
  };
  for (const auto& c : cases) expect_usage_error(c.first, c.second);
}

// Each command's help lists exactly the flags of its table (host/cli_options.cpp command_flags, which
// the command and the CLI fuzz target both parse with): a flag added to one and not the other fails.
TEST(Cli, EveryCommandsHelpListsExactlyItsFlagTable) {
  const std::regex listed(R"(^ +--([a-z0-9-]+))");  // a flag line of the help, not one named in prose
  for (const std::string& cmd : command_names()) {
    ProcessResult h = run_convnet({cmd, "--help"});
    ASSERT_EQ(h.exit_code, 0) << cmd << ": " << h.err;
    std::set<std::string> in_help;
    std::istringstream lines(h.out);
    std::smatch m;
    for (std::string line; std::getline(lines, line);)
      if (std::regex_search(line, m, listed)) in_help.insert(m[1]);
    const FlagTable& t = command_flags(cmd);
    std::set<std::string> in_table(t.valued);
    in_table.insert(t.switches.begin(), t.switches.end());
    in_table.insert(t.optional.begin(), t.optional.end());
    EXPECT_EQ(in_help, in_table) << "convnet " << cmd << " --help:\n" << h.out;
  }
}

TEST(Cli, DeviceGpuWithoutAGpuIsOneLineError) {
  ProcessResult d = run_convnet({"devices"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  if (d.out.find("no CUDA device") == std::string::npos && d.out.find("no CUDA support") == std::string::npos)
    GTEST_SKIP() << "a CUDA device is present: --device gpu would train";
  expect_usage_error({"train", "--device", "gpu", "--data", "/nonexistent"}, "no CUDA device");
  expect_usage_error({"eval", "--device", "gpu", "--model", "/nonexistent"}, "use --device cpu");
}

TEST(Cli, HelpAndSummary) {
  ProcessResult none = run_convnet({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("usage: convnet"), std::string::npos);
  for (const char* cmd : {"train", "eval", "summary"}) {
    ProcessResult h = run_convnet({cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find(std::string("usage: convnet ") + cmd), std::string::npos) << h.out;
  }
  ProcessResult s = run_convnet({"summary"});
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_NE(s.out.find("Total params: 56,394"), std::string::npos) << s.out;
  ProcessResult k = run_convnet({"summary", "--arch", "keras"});
  EXPECT_NE(k.out.find("Total params: 34,826"), std::string::npos) << k.out;
  ProcessResult d = run_convnet({"devices"});
  EXPECT_EQ(d.exit_code, 0) << d.err;
}

TEST(Cli, TrainSaveThenEval) {
  const char* dir = std::getenv("MNIST_DIR");
  if (!dir || !*dir) GTEST_SKIP() << "MNIST_DIR is not set: real MNIST is needed to train";
  char tmp[] = "/tmp/convnet_cli_XXXXXX";
  ASSERT_NE(mkdtemp(tmp), nullptr);
  const std::string model = std::string(tmp) + "/tiny.cnvn";
  const std::string ckpt = std::string(tmp) + "/tiny.ckpt";
  ProcessResult t = run_convnet({"train", "--arch", "keras", "--epochs", "1", "--limit-train", "1024", "--batch-size",
                                 "64", "--val-split", "0.05", "--data", dir, "--save", model, "--checkpoint", ckpt});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  for (const char* want : {"Epoch 1/1", "16/16", "loss: ", "val_accuracy: ", "img/s", "Test accuracy: ", "Saved model"})
    EXPECT_NE(t.out.find(want), std::string::npos) << want << "\n" << t.out;
  EXPECT_EQ(t.out.find('\r'), std::string::npos) << "no progress bar when stdout is not a terminal";

  ProcessResult e = run_convnet({"eval", "--model", model, "--data", dir});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  for (const char* want : {"Test accuracy: ", "Per-class accuracy", "Confusion matrix", "(rows: true digit"})
    EXPECT_NE(e.out.find(want), std::string::npos) << want << "\n" << e.out;
  // The accuracy eval reports is the one train reported for the same weights.
  auto acc = [](const std::string& s) { return s.substr(s.find("Test accuracy: ") + 15, 6); };
  EXPECT_EQ(acc(e.out), acc(t.out));
  // The run's checkpoint holds the same weights, and eval takes it as --model.
  ProcessResult c = run_convnet({"eval", "--model", ckpt, "--data", dir});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(acc(c.out), acc(t.out));

  // A corrupted model is refused with one line naming it.
  {
    FILE* f = std::fopen(model.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 200, SEEK_SET);
    int ch = std::fgetc(f);
    std::fseek(f, 200, SEEK_SET);
    std::fputc(ch ^ 0x40, f);
    std::fclose(f);
  }
  expect_usage_error({"eval", "--model", model, "--data", dir}, model);
  std::remove(model.c_str());
  std::remove(ckpt.c_str());
  rmdir(tmp);
}

}  // namespace
}  // namespace convnet::test
