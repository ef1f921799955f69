// libFuzzer target: the command line as `convnet` parses it, without running anything.
//
// Input: NUL-separated tokens, argv without the program name: the command, then its arguments.
// The target calls the program's own parse phase, host/cli_options.h: command_flags (each command's one
// flag table) and parse_<command>_options for train, eval, predict, show, summary and devices, the
// functions the commands themselves call before they touch a file; so there is no copy of a flag set
// here to drift. A --resume line goes on through resume_train_options with two checkpoints held in
// memory (Adam, and SGD with Nesterov momentum, mid-epoch), as if loaded. Every line is parsed twice,
// with the GpuProbe answering "no GPU" and then "a GPU". No file is read, written or stat()ed.
//
// Only UsageError may escape (InputError too, by the shared rule). Invariants after a successful parse:
// a line accepted without a GPU is accepted with one; the device is cpu or gpu and no GPU-only
// switch (tf32, graphs off, fusion off, sync launches, a measuring window) survives on the CPU;
// --timing turns graphs off; every number lies in its range; a u64 flag was written in decimal digits
// only; a built model's canonical spec rebuilds the same model; a resumed run keeps the checkpoint's
// recipe and ends no earlier than its position; show's grid fits kMaxImageSide.
// Seeds (tests/fuzz/make_seeds.cpp): command lines from the README and the help texts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "checkpoint.h"
#include "cli_options.h"
#include "errors.h"
#include "fuzz_util.h"
#include "image_io.h"
#include "model.h"
#include "render.h"

namespace {

using namespace convnet;

void check_model(const Model& model) {
  fuzz::expect_spec_round_trip(model);
  FUZZ_EXPECT(model.param_count <= model.arena_size, "'" + model.spec + "'");
}

// A u64 flag the parse accepted was decimal digits only (no sign, blank or base prefix).
void check_u64_text(const std::string& command, const std::vector<std::string>& args, const std::string& name) {
  const Flags f = parse_command_flags(command, args);
  const std::string text = f.get(name, "");
  FUZZ_EXPECT(!f.has(name) || (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos),
              "--" + name + " '" + text + "' (not decimal digits) accepted");
}

void check_device(const std::string& device, bool gpu, bool sync_launches) {
  FUZZ_EXPECT(device == "cpu" || (device == "gpu" && gpu), "device '" + device + "'");
  FUZZ_EXPECT(!sync_launches || device == "gpu", "--sync-launches on " + device);
}

void check_recipe(const TrainRecipe& r) {
  FUZZ_EXPECT(r.batch >= 1 && r.batch <= 65536, std::to_string(r.batch));
  FUZZ_EXPECT(r.val_split >= 0.0 && r.val_split < 1.0, std::to_string(r.val_split));
  FUZZ_EXPECT(r.limit_train >= 0 && r.limit_train <= (1 << 30), std::to_string(r.limit_train));
  FUZZ_EXPECT(r.optimizer.kind == "adam" || r.optimizer.kind == "sgd", r.optimizer.kind);
  FUZZ_EXPECT(r.optimizer.lr > 0.0f && r.optimizer.lr <= 10.0f, std::to_string(r.optimizer.lr));
  FUZZ_EXPECT(r.optimizer.momentum >= 0.0f && r.optimizer.momentum < 1.0f, std::to_string(r.optimizer.momentum));
  FUZZ_EXPECT(!r.optimizer.nesterov || r.optimizer.momentum > 0.0f, "nesterov without momentum");
  FUZZ_EXPECT(r.dataset == "mnist" || r.dataset == "fashion", r.dataset);
}

// Two checkpoints a --resume could name: where they stand and what they train.
Checkpoint make_checkpoint(bool sgd) {
  Checkpoint c;
  c.model = build_model(sgd ? "keras" : "seed");
  c.recipe.arch = c.model.spec;
  c.recipe.train_images = 60000;
  c.recipe.batch = sgd ? 64 : 128;
  c.recipe.seed = sgd ? 7 : 1;
  c.recipe.dataset = sgd ? "fashion" : "mnist";
  c.recipe.optimizer.kind = sgd ? "sgd" : "adam";
  c.recipe.optimizer.lr = sgd ? 0.05f : 1e-3f;
  c.recipe.optimizer.momentum = sgd ? 0.9f : 0.0f;
  c.recipe.optimizer.nesterov = sgd;
  c.settings.epochs = 3;
  c.settings.checkpoint_every = sgd ? 1 : 0;
  c.state.epochs_done = sgd ? 2 : 1;
  c.state.epoch_step = sgd ? 17 : 0;
  return c;
}

void check_resumed(TrainOptions o, const std::vector<std::string>& args, const Checkpoint& c) {
  resume_train_options(&o, args, c);
  FUZZ_EXPECT(o.recipe.arch == c.recipe.arch && o.recipe.seed == c.recipe.seed &&
                  o.recipe.optimizer.kind == c.recipe.optimizer.kind && o.recipe.batch == c.recipe.batch,
              "a resumed run changed its recipe");
  const int needed = c.state.epochs_done + (c.state.epoch_step > 0 ? 1 : 0);
  FUZZ_EXPECT(o.settings.epochs >= needed && o.settings.epochs <= 100000, std::to_string(o.settings.epochs));
  FUZZ_EXPECT(!o.checkpoint_path.empty(), "a resumed run without a checkpoint path");
  check_u64_text("train", args, "seed");  // a resumed run reads its recipe flags only here
}

void train(const std::vector<std::string>& args, const GpuProbe& probe, bool gpu) {
  const TrainOptions o = parse_train_options(args, probe);
  check_device(o.device, gpu, o.sync_launches);
  const bool on_cpu = o.device == "cpu";
  FUZZ_EXPECT(!on_cpu || (!o.gpu.tf32 && o.gpu.graphs && o.gpu.fused && o.window.kind == MeasureWindow::Kind::None),
              "a GPU-only switch on the CPU");
  const MeasureWindow& w = o.window;
  FUZZ_EXPECT(w.kind == MeasureWindow::Kind::None || (w.steps >= 1 && w.steps <= 1000000 && w.warmup >= 0 &&
                                                      w.warmup <= 1000000),
              std::to_string(w.steps) + " steps after " + std::to_string(w.warmup));
  FUZZ_EXPECT(w.kind != MeasureWindow::Kind::Timing || !o.gpu.graphs, "--timing with graphs on");
  if (o.resumed) {
    static const Checkpoint adam = make_checkpoint(false), sgd = make_checkpoint(true);
    for (const Checkpoint* c : {&adam, &sgd}) {
      try {
        check_resumed(o, args, *c);
      } catch (const UsageError&) {  // a contradiction with this checkpoint; the other may agree
      }
    }
    return;
  }
  check_u64_text("train", args, "seed");
  check_model(o.model);
  FUZZ_EXPECT(o.model.spec == o.recipe.arch, o.model.spec + " vs " + o.recipe.arch);
  check_recipe(o.recipe);
  FUZZ_EXPECT(o.settings.epochs >= 1 && o.settings.epochs <= 100000, std::to_string(o.settings.epochs));
  const int every = o.settings.checkpoint_every;  // 0: no checkpoints, and only without --checkpoint
  FUZZ_EXPECT(o.checkpoint_path.empty() ? every == 0 : every >= 1 && every <= 100000, std::to_string(every));
}

void eval(const std::vector<std::string>& args, const GpuProbe& probe, bool gpu) {
  const EvalOptions o = parse_eval_options(args, probe);
  check_device(o.device, gpu, o.sync_launches);
  FUZZ_EXPECT(o.device == "gpu" || (o.graphs && o.fused), "a GPU-only switch on the CPU");
  FUZZ_EXPECT(!o.model_path.empty() && !o.data.dir("").empty(), "an empty path");
  FUZZ_EXPECT(o.batch >= 1 && o.batch <= 65536, std::to_string(o.batch));
}

void predict(const std::vector<std::string>& args, const GpuProbe& probe, bool gpu) {
  const PredictOptions o = parse_predict_options(args, probe);
  check_device(o.device, gpu, o.sync_launches);
  FUZZ_EXPECT(!o.model_path.empty() && !o.images.empty(), "no model or no image");
}

void show(const std::vector<std::string>& args, const GpuProbe& probe, bool gpu) {
  const ShowOptions o = parse_show_options(args, probe);
  check_device(o.device, gpu, o.sync_launches);
  FUZZ_EXPECT(!o.model_path.empty() && !o.out.empty() && !o.data.dir("").empty(), "an empty path");
  FUZZ_EXPECT(o.count >= 1 && o.count <= 100000 && o.grid.cols >= 1 && o.grid.cols <= 1000 && o.grid.scale >= 1 &&
                  o.grid.scale <= 64,
              std::to_string(o.count) + " " + std::to_string(o.grid.cols) + " " + std::to_string(o.grid.scale));
  const GridLayout g = grid_layout(o.count, o.grid);
  FUZZ_EXPECT(g.width >= 1 && g.width <= kMaxImageSide && g.height >= 1 && g.height <= kMaxImageSide,
              std::to_string(g.width) + "x" + std::to_string(g.height));
  check_u64_text("show", args, "seed");
}

// What `convnet COMMAND ARGS` decides before it reads a file, with or without a GPU.
void parse_line(const std::string& command, const std::vector<std::string>& args, bool gpu) {
  if (wants_help(args)) return;  // every command prints its help and exits 0
  const GpuProbe probe = [gpu](std::string* why) {
    if (!gpu) *why = "the fuzzer's probe says none";
    return gpu;
  };
  command_flags(command);  // the unknown-command error
  if (command == "train") return train(args, probe, gpu);
  if (command == "eval") return eval(args, probe, gpu);
  if (command == "predict") return predict(args, probe, gpu);
  if (command == "show") return show(args, probe, gpu);
  if (command == "summary") {
    const Model model = parse_summary_options(args);
    check_model(model);
    FUZZ_EXPECT(!summary_table(model).empty(), "'" + model.spec + "'");
    return;
  }
  FUZZ_EXPECT(command == "devices", "a flag table without a parse function: '" + command + "'");
  parse_devices_options(args);
}

// True when the line parses; false on the documented refusals; anything else propagates.
bool accepted(const std::string& command, const std::vector<std::string>& args, bool gpu) {
  try {
    parse_line(command, args, gpu);
    return true;
  } catch (const UsageError&) {
    return false;
  } catch (const InputError&) {
    return false;
  }
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
  fuzz::only_documented_errors("command line", [&] {
    const bool without_gpu = accepted(command, args, false);
    const bool with_gpu = accepted(command, args, true);
    FUZZ_EXPECT(!without_gpu || with_gpu, "accepted without a GPU but refused with one");
  });
  return 0;
}
