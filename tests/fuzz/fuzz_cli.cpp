// libFuzzer target: the command line as `convnet` parses it, without running anything.
//
// Input: NUL-separated tokens, argv without the program name: the command, then its arguments.
// The target runs what host/commands.cpp does with them before any file is read: Flags with the
// command's flag sets (copied from commands.cpp; keep them in step), build_model on --arch (the
// architecture spec parser), the numeric getters with the commands' ranges, --optimizer and
// --device checks, default_data_dir on --data/--dataset, and summary_table for `summary`. No
// training, no data, no file system. Only UsageError may escape (InputError too, by the shared
// rule). After a successful parse: each getter's value lies in its range, a u64 flag was written
// in decimal digits only, and the built model's canonical spec rebuilds the same model.
// Seeds (tests/fuzz/make_seeds.cpp): command lines from the README and the help texts.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "flags.h"
#include "fuzz_util.h"
#include "idx.h"
#include "model.h"

namespace {

using convnet::Flags;

void check_model(const std::string& arch) {
  convnet::Model model = convnet::build_model(arch);  // UsageError for a bad spec
  convnet::fuzz::expect_spec_round_trip(model);
  FUZZ_EXPECT(model.param_count <= model.arena_size, "'" + model.spec + "'");
}

int64_t checked_int(const Flags& f, const std::string& name, int64_t fallback, int64_t lo, int64_t hi) {
  int64_t v = f.get_int(name, fallback, lo, hi);
  FUZZ_EXPECT(v == fallback || (v >= lo && v <= hi), "--" + name + " = " + std::to_string(v));
  return v;
}

double checked_double(const Flags& f, const std::string& name, double fallback, double lo, double hi, bool lo_open,
                      bool hi_open) {
  double v = f.get_double(name, fallback, lo, hi, lo_open, hi_open);
  bool in = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  FUZZ_EXPECT(!f.has(name) || in, "--" + name + " = " + std::to_string(v));
  return v;
}

uint64_t checked_u64(const Flags& f, const std::string& name, uint64_t fallback) {
  uint64_t v = f.get_u64(name, fallback);
  const std::string text = f.get(name, "");
  FUZZ_EXPECT(!f.has(name) || text.find_first_not_of("0123456789") == std::string::npos,
              "--" + name + " '" + text + "' (not decimal digits) accepted as " + std::to_string(v));
  return v;
}

void device_flag(const Flags& f) {
  const std::string device = f.get("device", "auto");
  if (device != "auto" && device != "gpu" && device != "cpu") throw convnet::UsageError("--device");
}

// cmd_train up to the point where it reads data.
void train(const std::vector<std::string>& args) {
  Flags f("train", args,
          {"arch", "epochs", "batch-size", "optimizer", "lr", "momentum", "val-split", "limit-train", "seed", "device",
           "data", "dataset", "save"},
          {"nesterov", "no-test", "tf32"});
  if (!f.positional().empty()) throw convnet::UsageError("positional");
  check_model(f.get("arch", "seed"));
  checked_int(f, "epochs", 15, 1, 100000);
  checked_int(f, "batch-size", 128, 1, 65536);
  checked_double(f, "val-split", 0.1, 0.0, 1.0, false, true);
  checked_int(f, "limit-train", 0, 1, 1 << 30);
  checked_u64(f, "seed", 1);
  const std::string optimizer = f.get("optimizer", "adam");
  if (optimizer != "adam" && optimizer != "sgd") throw convnet::UsageError("--optimizer");
  checked_double(f, "lr", optimizer == "adam" ? 1e-3 : 1e-2, 0.0, 10.0, true, false);
  checked_double(f, "momentum", 0.0, 0.0, 1.0, false, true);
  device_flag(f);
  convnet::default_data_dir(f.get("data", ""), f.get("dataset", "mnist"));
}

// cmd_eval up to the point where it reads the model file.
void eval(const std::vector<std::string>& args) {
  Flags f("eval", args, {"model", "batch-size", "device", "data", "dataset"}, {});
  if (!f.positional().empty()) throw convnet::UsageError("positional");
  checked_int(f, "batch-size", 256, 1, 65536);
  device_flag(f);
  convnet::default_data_dir(f.get("data", ""), f.get("dataset", "mnist"));
}

void summary(const std::vector<std::string>& args) {
  Flags f("summary", args, {"arch"}, {});
  if (!f.positional().empty()) throw convnet::UsageError("positional");
  convnet::Model model = convnet::build_model(f.get("arch", "seed"));
  FUZZ_EXPECT(!convnet::summary_table(model).empty(), "'" + model.spec + "'");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> tokens(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\0')
      tokens.emplace_back();
    else
      tokens.back() += static_cast<char>(data[i]);
  }
  const std::string command = tokens[0];
  const std::vector<std::string> args(tokens.begin() + 1, tokens.end());
  convnet::fuzz::only_documented_errors("command line", [&] {
    if (command == "train") return train(args);
    if (command == "eval") return eval(args);
    if (command == "summary") return summary(args);
    Flags f(command, args, {}, {});  // devices, or an unknown command: every flag is refused
  });
  return 0;
}
