// The command line as a user sees it: every bad flag is ONE stderr line naming the flag and exit 2;
// summary, help, train --save and eval work end to end through the real binary.
#include <gtest/gtest.h>

#include <cstdlib>

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
  ProcessResult t = run_convnet({"train", "--arch", "keras", "--epochs", "1", "--limit-train", "1024", "--batch-size",
                                 "64", "--val-split", "0.05", "--data", dir, "--save", model});
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
  rmdir(tmp);
}

}  // namespace
}  // namespace convnet::test
