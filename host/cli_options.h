// What each `convnet` command accepts and decides from its command line before it touches a file.
//
// ONE flag table per command (command_flags) and, per command, a pure parse function
// (parse_<command>_options) that turns the arguments into the command's settings or throws a
// UsageError naming the flag. host/commands.cpp and host/cmd_*.cpp call these first and do the file
// work after (model and checkpoint loading, destination checks, data); tests/fuzz/fuzz_cli.cpp calls
// the very same functions, so the fuzzer parses with the program's own tables and checks and cannot
// drift from them. A flag added to a command goes into its table here and nowhere else.
//
// Nothing here opens, stats or writes a file, and nothing touches CUDA: whether a GPU is usable comes
// from the GpuProbe the caller passes (the program asks the CUDA runtime; the fuzzer answers both
// ways). Part of convnet_core, so it builds without CUDA and links into the fuzz targets.
//
// Order of the checks (what a user sees first when several flags are wrong): flag syntax, positional
// arguments, empty paths, the command's own values, then the device and the GPU-only switches.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "backend.h"
#include "checkpoint.h"
#include "errors.h"
#include "flags.h"
#include "model.h"
#include "render.h"

namespace convnet {

// The flags of one command, as Flags takes them.
struct FlagTable {
  std::set<std::string> valued;    // --name V or --name=V
  std::set<std::string> switches;  // --name
  std::set<std::string> optional;  // --name [V]: the next argument is its value unless it starts with --
  bool positional = false;         // takes positional arguments (predict's IMAGE...)
};

// train, eval, summary, devices, predict, show.
const std::vector<std::string>& command_names();

// The table of `command`; a UsageError for a command that does not exist.
const FlagTable& command_flags(const std::string& command);

// Flags of `command` parsed with its table; positional arguments are a usage error for a command
// whose table takes none.
Flags parse_command_flags(const std::string& command, const std::vector<std::string>& args);

// --help or -h anywhere among the arguments.
bool wants_help(const std::vector<std::string>& args);

// True when a CUDA device is usable; otherwise false with *why saying what is missing. Called only
// when --device is auto or gpu, so `--device cpu` never initialises CUDA.
using GpuProbe = std::function<bool(std::string* why)>;

// --device auto|gpu|cpu resolved to "gpu" or "cpu": auto is the GPU when the probe finds one; gpu
// without one is a usage error ("no CUDA device: ...; use --device cpu").
std::string resolve_device(const Flags& flags, const GpuProbe& probe);

// The usage error for a GPU-only flag on the CPU: "--FLAG: only applies to --device gpu", adding that
// --device auto found no CUDA device when the user left the choice to auto.
UsageError gpu_only(const Flags& flags, const std::string& flag);

// Path flags given an empty value ("--save ''", often an unset shell variable) are usage errors naming
// the flag, rather than silently meaning "none" or the default.
void refuse_empty_paths(const Flags& flags, const std::vector<std::string>& names);

// The GPU backend's on|off switches (train, eval), default on:
//   --graphs  capture each step shape into a CUDA graph and replay it (BackendConfig::graphs)
//   --fusion  fused kernels where host/fused_plan.h covers the model (BackendConfig::fused)
// A usage error naming the flag for a value other than on or off, when the resolved device is not the
// GPU, and for `--graphs on` together with --sync-launches (a synchronisation inside a capture is
// illegal: sync launches turn graphs off by themselves).
bool parse_gpu_switch(const Flags& flags, const std::string& name, const std::string& device);

// --sync-launches (train, eval, predict, show): the GPU backend synchronises after every launch, so a
// faulting kernel is named at its launch. A usage error when the resolved device is not the GPU.
bool parse_sync_launches(const Flags& flags, const std::string& device);

// train --timing [N] / --profile-steps N [--warmup-steps W]: a measuring window instead of a run.
struct MeasureWindow {
  enum class Kind { None, Timing, Profile } kind = Kind::None;
  int steps = 0;
  int warmup = 5;
  const char* flag = "";  // "timing" or "profile-steps"
};
constexpr int kDefaultTimingSteps = 50;

// Everything `convnet train` decides from its flags and, when resuming, the checkpoint's contents.
struct TrainOptions {
  MeasureWindow window;
  bool resumed = false;
  std::string resume_path;
  TrainRecipe recipe;  // train_images stays 0 for a new run until the data is read
  RunSettings settings;
  Model model;          // a new run's; a resumed run's comes with resume_train_options
  TrainState start;     // where a resumed run goes on
  std::string checkpoint_path;  // "": only an interrupt writes one (new run)
  std::string device;           // "gpu" or "cpu"
  BackendConfig gpu;            // tf32, graphs, fused; graphs off for --timing
  bool sync_launches = false;
  std::string data_flag;        // --data as given ("" for the default folder)
};

// The flags alone. For --resume the recipe, settings and model wait for resume_train_options.
TrainOptions parse_train_options(const std::vector<std::string>& args, const GpuProbe& probe);

// A resumed run: the checkpoint (loaded by the caller) supplies the recipe, settings, model and
// position; a recipe flag that contradicts it is a usage error naming the flag, and so is an --epochs
// that ends before the checkpoint's position. Reads no file.
void resume_train_options(TrainOptions* options, const std::vector<std::string>& args, const Checkpoint& checkpoint);

// --dataset and --data of eval and show, which evaluate a trained model's test set. The dataset is
// --dataset when given, else the one the model file records, else mnist; the folder is --data when
// given, else that dataset's default (default_data_dir).
struct DataChoice {
  std::string dataset_flag, data_flag;  // "" when not given; a given --dataset is checked at parse
  std::string dataset(const std::string& recorded) const;
  std::string dir(const std::string& recorded) const;
};

struct EvalOptions {
  std::string model_path;
  int batch = 256;
  std::string device;
  bool graphs = true, fused = true, sync_launches = false;
  DataChoice data;
  std::string confusion_png;  // "" for none
};
EvalOptions parse_eval_options(const std::vector<std::string>& args, const GpuProbe& probe);

struct PredictOptions {
  std::string model_path;
  std::vector<std::string> images;
  bool json = false;
  std::string save_dir;  // --save-preprocessed, "" for none
  std::string device;
  bool sync_launches = false;
};
PredictOptions parse_predict_options(const std::vector<std::string>& args, const GpuProbe& probe);

struct ShowOptions {
  std::string model_path;
  std::string out = "predictions.png";
  int count = 64;
  uint64_t seed = 1;
  GridOptions grid;  // cols, scale, show_prob (--misclassified); the grid fits kMaxImageSide
  std::string device;
  bool sync_launches = false;
  DataChoice data;
};
ShowOptions parse_show_options(const std::vector<std::string>& args, const GpuProbe& probe);

// summary: the model --arch names (default seed).
Model parse_summary_options(const std::vector<std::string>& args);

// devices takes no flags and no arguments.
void parse_devices_options(const std::vector<std::string>& args);

}  // namespace convnet
