// The commands' flag tables and their pure parse phases (see cli_options.h). No file and no CUDA call
// here: the file work stays in host/commands.cpp and host/cmd_*.cpp, which tests/fuzz/fuzz_cli.cpp
// does not link.
#include "cli_options.h"

#include <cstdio>
#include <map>

#include "errors.h"
#include "idx.h"
#include "image_io.h"

namespace convnet {

const std::vector<std::string>& command_names() {
  static const std::vector<std::string> names = {"train", "eval", "summary", "devices", "predict", "show"};
  return names;
}

const FlagTable& command_flags(const std::string& command) {
  static const std::map<std::string, FlagTable> tables = {
      {"train",
       {{"arch", "epochs", "batch-size", "optimizer", "lr", "momentum", "val-split", "limit-train", "seed", "device",
         "data", "dataset", "save", "log", "checkpoint", "checkpoint-every", "resume", "graphs", "fusion",
         "profile-steps", "warmup-steps"},
        {"nesterov", "no-test", "tf32", "sync-launches"},
        {"timing"},
        false}},
      {"eval",
       {{"model", "batch-size", "device", "data", "dataset", "confusion-png", "graphs", "fusion"},
        {"sync-launches"},
        {},
        false}},
      {"summary", {{"arch"}, {}, {}, false}},
      {"devices", {{}, {}, {}, false}},
      {"predict", {{"model", "save-preprocessed", "device"}, {"json", "sync-launches"}, {}, true}},
      {"show",
       {{"model", "out", "count", "seed", "cols", "scale", "device", "data", "dataset"},
        {"misclassified", "sync-launches"},
        {},
        false}},
  };
  auto it = tables.find(command);
  if (it == tables.end())
    throw UsageError("unknown command '" + command +
                     "' (expected train, eval, summary, devices, predict or show; see convnet --help)");
  return it->second;
}

Flags parse_command_flags(const std::string& command, const std::vector<std::string>& args) {
  const FlagTable& t = command_flags(command);
  Flags f(command, args, t.valued, t.switches, t.optional);
  if (!t.positional && !f.positional().empty())
    throw UsageError(command + ": unexpected argument '" + f.positional()[0] + "'");
  return f;
}

bool wants_help(const std::vector<std::string>& args) {
  for (const std::string& a : args)
    if (a == "--help" || a == "-h") return true;
  return false;
}

std::string resolve_device(const Flags& flags, const GpuProbe& probe) {
  const std::string device = flags.get("device", "auto");
  if (device == "cpu") return "cpu";
  if (device != "auto" && device != "gpu")
    throw UsageError("--device: unknown device '" + device + "' (expected auto, cpu or gpu)");
  std::string why;
  if (probe(&why)) return "gpu";
  if (device == "gpu") throw UsageError("no CUDA device: " + why + "; use --device cpu");
  return "cpu";
}

UsageError gpu_only(const Flags& flags, const std::string& flag) {
  // Under --device auto the user did not pick the CPU: say that no GPU was found.
  return UsageError("--" + flag + ": only applies to --device gpu" +
                    (flags.get("device", "auto") == "auto" ? " (--device auto found no CUDA device here)" : ""));
}

void refuse_empty_paths(const Flags& flags, const std::vector<std::string>& names) {
  for (const std::string& name : names)
    if (flags.has(name) && flags.get(name, "").empty()) throw UsageError("--" + name + ": empty path");
}

bool parse_gpu_switch(const Flags& flags, const std::string& name, const std::string& device) {
  if (!flags.has(name)) return true;
  const std::string value = flags.get(name, "");
  if (value != "on" && value != "off") throw UsageError("--" + name + ": expected on or off, got '" + value + "'");
  if (name == "graphs" && value == "on" && flags.has("sync-launches"))
    throw UsageError("--graphs: 'on' contradicts --sync-launches, which synchronises after every launch and so "
                     "cannot run inside a CUDA graph (it turns graphs off by itself)");
  if (device != "gpu") throw gpu_only(flags, name);
  return value == "on";
}

bool parse_sync_launches(const Flags& flags, const std::string& device) {
  if (!flags.has("sync-launches")) return false;
  if (device != "gpu") throw gpu_only(flags, "sync-launches");
  return true;
}

namespace {

// --model is required by eval, predict and show.
std::string required_model(const Flags& f) {
  if (!f.has("model")) throw UsageError("--model: required (a file written by 'convnet train --save' or --checkpoint)");
  refuse_empty_paths(f, {"model"});
  return f.get("model", "");
}

// --timing / --profile-steps: checked before anything is read, so a conflict costs nothing and names
// the flags. Neither saves, logs or checkpoints, so those flags (and --resume, --epochs) conflict.
MeasureWindow window_from_flags(const Flags& f) {
  MeasureWindow w;
  const bool timing = f.has("timing"), profile = f.has("profile-steps");
  if (!timing && !profile) {
    if (f.has("warmup-steps")) throw UsageError("--warmup-steps: needs --timing or --profile-steps");
    return w;
  }
  w.flag = timing ? "timing" : "profile-steps";
  const std::string flag = std::string("--") + w.flag;
  if (timing && profile)
    throw UsageError("--timing: cannot be combined with --profile-steps (one measuring window per run)");
  for (const char* other : {"resume", "checkpoint", "checkpoint-every", "save", "log", "epochs"})
    if (f.has(other))
      throw UsageError(flag + ": cannot be combined with --" + other +
                       " (it runs a few steps to measure and exits without training the recipe)");
  if (timing && f.has("sync-launches"))
    throw UsageError("--timing: cannot be combined with --sync-launches (the waits would be timed too)");
  w.kind = timing ? MeasureWindow::Kind::Timing : MeasureWindow::Kind::Profile;
  w.steps = static_cast<int>(f.get_int(w.flag, kDefaultTimingSteps, 1, 1000000));
  w.warmup = static_cast<int>(f.get_int("warmup-steps", w.warmup, 0, 1000000));
  return w;
}

// The recipe the flags ask for; `base` supplies what they leave out (the defaults of a new run, or
// the checkpoint's recipe when resuming).
TrainRecipe recipe_from_flags(const Flags& f, const TrainRecipe& base, bool resumed) {
  TrainRecipe r = base;
  if (f.has("arch") || !resumed) r.arch = build_model(f.get("arch", "seed")).spec;
  r.dataset = f.get("dataset", base.dataset);
  r.batch = static_cast<int>(f.get_int("batch-size", base.batch, 1, 65536));
  r.val_split = f.get_double("val-split", base.val_split, 0.0, 1.0, false, true);
  r.limit_train = static_cast<int>(f.get_int("limit-train", base.limit_train, 1, 1 << 30));
  r.seed = f.get_u64("seed", base.seed);
  OptimizerConfig& o = r.optimizer;
  o.kind = f.get("optimizer", base.optimizer.kind);
  if (o.kind != "adam" && o.kind != "sgd")
    throw UsageError("--optimizer: unknown optimizer '" + o.kind + "' (expected adam or sgd)");
  const double lr = resumed ? base.optimizer.lr : (o.kind == "adam" ? 1e-3 : 1e-2);
  o.lr = static_cast<float>(f.get_double("lr", lr, 0.0, 10.0, true));
  o.momentum = static_cast<float>(f.get_double("momentum", base.optimizer.momentum, 0.0, 1.0, false, true));
  o.nesterov = base.optimizer.nesterov || f.has("nesterov");
  if (o.kind != "sgd" && (f.has("momentum") || f.has("nesterov")))
    throw UsageError("--momentum/--nesterov: only apply to --optimizer sgd");
  if (o.nesterov && o.momentum == 0.0f) throw UsageError("--nesterov: needs --momentum greater than 0");
  return r;
}

// A recipe flag given on --resume must agree with the checkpoint.
void refuse_contradictions(const Flags& f, const TrainRecipe& want, const TrainRecipe& have) {
  auto check = [&f](const char* flag, bool same, const std::string& kept) {
    if (!same)
      throw UsageError(std::string("--") + flag + ": " + (f.has(flag) ? "'" + f.get(flag, "") + "'" : "given") +
                       " contradicts the checkpoint, which trains with " + kept +
                       " (a resumed run keeps its recipe: leave the flag out)");
  };
  char lr[32], momentum[32], split[32];
  std::snprintf(lr, sizeof lr, "%g", static_cast<double>(have.optimizer.lr));
  std::snprintf(momentum, sizeof momentum, "%g", static_cast<double>(have.optimizer.momentum));
  std::snprintf(split, sizeof split, "%g", have.val_split);
  check("arch", want.arch == have.arch, have.arch);
  check("dataset", want.dataset == have.dataset, have.dataset);
  check("batch-size", want.batch == have.batch, std::to_string(have.batch));
  check("val-split", want.val_split == have.val_split, split);
  check("limit-train", want.limit_train == have.limit_train,
        have.limit_train ? std::to_string(have.limit_train) : "all training images");
  check("seed", want.seed == have.seed, std::to_string(have.seed));
  check("optimizer", want.optimizer.kind == have.optimizer.kind, have.optimizer.kind);
  check("lr", want.optimizer.lr == have.optimizer.lr, lr);
  check("momentum", want.optimizer.momentum == have.optimizer.momentum, momentum);
  check("nesterov", want.optimizer.nesterov == have.optimizer.nesterov, "no Nesterov momentum");
}

RunSettings settings_from_flags(const Flags& f, const RunSettings& base) {
  RunSettings s = base;
  s.epochs = static_cast<int>(f.get_int("epochs", base.epochs, 1, 100000));
  s.log = f.get("log", base.log);
  s.save = f.get("save", base.save);
  s.test = base.test && !f.has("no-test");
  const int every = f.has("checkpoint") && base.checkpoint_every == 0 ? 1 : base.checkpoint_every;
  s.checkpoint_every = static_cast<int>(f.get_int("checkpoint-every", every, 1, 100000));
  return s;
}

// A new run's recipe, settings and model.
void new_run_from_flags(const Flags& f, TrainOptions* o) {
  if (f.has("checkpoint-every") && !f.has("checkpoint"))
    throw UsageError("--checkpoint-every: needs --checkpoint PATH");
  o->recipe = recipe_from_flags(f, TrainRecipe{}, false);
  o->settings = settings_from_flags(f, RunSettings{});
  o->model = build_model(o->recipe.arch);
  o->checkpoint_path = f.get("checkpoint", "");
  default_data_dir(o->data_flag, o->recipe.dataset);  // --dataset's name now; a resumed run's with the checkpoint
}

// The device and the switches that only the GPU has.
void device_from_flags(const Flags& f, const GpuProbe& probe, TrainOptions* o) {
  o->device = resolve_device(f, probe);
  o->gpu.tf32 = f.has("tf32");
  if (o->gpu.tf32 && o->device != "gpu") throw gpu_only(f, "tf32");
  if (o->window.kind != MeasureWindow::Kind::None && o->device != "gpu") throw gpu_only(f, o->window.flag);
  o->gpu.graphs = parse_gpu_switch(f, "graphs", o->device);
  o->gpu.fused = parse_gpu_switch(f, "fusion", o->device);
  // --timing times each launch between CUDA events: a replayed graph makes no launches to observe,
  // and events recorded during a capture would land inside the graph. So graphs are off for it.
  if (o->window.kind == MeasureWindow::Kind::Timing) {
    if (f.has("graphs") && o->gpu.graphs)
      throw UsageError("--graphs: 'on' contradicts --timing, which times every launch directly (graphs off)");
    o->gpu.graphs = false;
  }
  o->sync_launches = parse_sync_launches(f, o->device);
}

}  // namespace

TrainOptions parse_train_options(const std::vector<std::string>& args, const GpuProbe& probe) {
  const Flags f = parse_command_flags("train", args);
  refuse_empty_paths(f, {"data", "save", "log", "checkpoint", "resume"});
  TrainOptions o;
  o.window = window_from_flags(f);
  o.data_flag = f.get("data", "");
  o.resumed = f.has("resume");
  if (o.resumed) o.resume_path = f.get("resume", "");
  else new_run_from_flags(f, &o);
  device_from_flags(f, probe, &o);
  return o;
}

void resume_train_options(TrainOptions* o, const std::vector<std::string>& args, const Checkpoint& checkpoint) {
  const Flags f = parse_command_flags("train", args);
  refuse_contradictions(f, recipe_from_flags(f, checkpoint.recipe, true), checkpoint.recipe);
  o->recipe = checkpoint.recipe;
  o->settings = settings_from_flags(f, checkpoint.settings);
  o->model = checkpoint.model;
  o->start = checkpoint.state;
  o->checkpoint_path = f.get("checkpoint", o->resume_path);
  const int needed = o->start.epochs_done + (o->start.epoch_step > 0 ? 1 : 0);
  if (o->settings.epochs < needed)
    throw UsageError("--epochs: " + std::to_string(o->settings.epochs) + " ends before the checkpoint's position (" +
                     std::to_string(o->start.epochs_done) + " epochs and " + std::to_string(o->start.epoch_step) +
                     " steps done)");
}

std::string DataChoice::dataset(const std::string& recorded) const {
  if (!dataset_flag.empty()) return dataset_flag;
  return recorded.empty() ? "mnist" : recorded;
}

std::string DataChoice::dir(const std::string& recorded) const { return default_data_dir(data_flag, dataset(recorded)); }

namespace {

DataChoice parse_data_choice(const Flags& f) {
  DataChoice d;
  d.dataset_flag = f.get("dataset", "");
  if (f.has("dataset")) default_data_dir("", d.dataset_flag);  // an unknown name is a usage error now
  d.data_flag = f.get("data", "");
  return d;
}

}  // namespace

EvalOptions parse_eval_options(const std::vector<std::string>& args, const GpuProbe& probe) {
  const Flags f = parse_command_flags("eval", args);
  EvalOptions o;
  o.model_path = required_model(f);
  refuse_empty_paths(f, {"data", "confusion-png"});
  o.batch = static_cast<int>(f.get_int("batch-size", o.batch, 1, 65536));
  o.data = parse_data_choice(f);
  o.confusion_png = f.get("confusion-png", "");
  o.device = resolve_device(f, probe);
  o.graphs = parse_gpu_switch(f, "graphs", o.device);
  o.fused = parse_gpu_switch(f, "fusion", o.device);
  o.sync_launches = parse_sync_launches(f, o.device);
  return o;
}

PredictOptions parse_predict_options(const std::vector<std::string>& args, const GpuProbe& probe) {
  const Flags f = parse_command_flags("predict", args);
  PredictOptions o;
  o.model_path = required_model(f);
  o.images = f.positional();
  if (o.images.empty()) throw UsageError("predict: no IMAGE given (usage: convnet predict --model PATH IMAGE...)");
  o.json = f.has("json");
  o.device = resolve_device(f, probe);
  o.sync_launches = parse_sync_launches(f, o.device);
  o.save_dir = f.get("save-preprocessed", "");
  if (f.has("save-preprocessed") && o.save_dir.empty()) throw UsageError("--save-preprocessed: empty directory name");
  return o;
}

ShowOptions parse_show_options(const std::vector<std::string>& args, const GpuProbe& probe) {
  const Flags f = parse_command_flags("show", args);
  ShowOptions o;
  o.model_path = required_model(f);
  refuse_empty_paths(f, {"data"});
  o.out = f.get("out", o.out);
  if (o.out.empty()) throw UsageError("--out: empty path");
  o.count = static_cast<int>(f.get_int("count", o.count, 1, 100000));
  o.seed = f.get_u64("seed", o.seed);
  o.grid.cols = static_cast<int>(f.get_int("cols", o.grid.cols, 1, 1000));
  o.grid.scale = static_cast<int>(f.get_int("scale", o.grid.scale, 1, 64));
  o.grid.show_prob = f.has("misclassified");
  const GridLayout g = grid_layout(o.count, o.grid);
  if (g.width > kMaxImageSide || g.height > kMaxImageSide)
    throw UsageError("--count/--cols/--scale: the grid would be " + std::to_string(g.width) + "x" +
                     std::to_string(g.height) + " pixels, over the " + std::to_string(kMaxImageSide) +
                     " limit of a side; show fewer digits, more columns or a smaller scale");
  o.data = parse_data_choice(f);
  o.device = resolve_device(f, probe);
  o.sync_launches = parse_sync_launches(f, o.device);
  return o;
}

Model parse_summary_options(const std::vector<std::string>& args) {
  const Flags f = parse_command_flags("summary", args);
  return build_model(f.get("arch", "seed"));
}

void parse_devices_options(const std::vector<std::string>& args) { parse_command_flags("devices", args); }

}  // namespace convnet
