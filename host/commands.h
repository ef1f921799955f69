// The subcommands of `convnet` and what they share. Each command lives in host/commands.cpp or a
// host/cmd_<name>.cpp of its own; all are compiled into the program (not convnet_core), so they see
// CONVNET_HAVE_CUDA. main.cpp maps their exceptions to exit codes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "flags.h"
#include "idx.h"
#include "model.h"

namespace convnet {

// Runs `convnet <args...>` (args excludes the program name). Returns the exit code; throws
// UsageError / InputError / NumericError / ResourceError for failures main() reports as one line.
int run_command(const std::vector<std::string>& args);

int cmd_train(const std::vector<std::string>& args);
int cmd_eval(const std::vector<std::string>& args);
int cmd_summary(const std::vector<std::string>& args);
int cmd_devices(const std::vector<std::string>& args);
int cmd_predict(const std::vector<std::string>& args);  // host/cmd_predict.cpp
int cmd_show(const std::vector<std::string>& args);     // host/cmd_show.cpp

// --help or -h anywhere among the arguments.
bool wants_help(const std::vector<std::string>& args);

// --device auto|gpu|cpu resolved to "gpu" or "cpu" before any data is read; gpu without a usable
// device is a UsageError ("no CUDA device: ...; use --device cpu").
std::string parse_device(const Flags& flags);

// Path flags given an empty value ("--save ''", often an unset shell variable) are usage errors naming
// the flag, rather than silently meaning "none" or the default.
void refuse_empty_paths(const Flags& flags, const std::vector<std::string>& names);

// --sync-launches (train, eval, predict, show): the GPU backend synchronises after every kernel
// launch, so a kernel that faults is reported by name at its launch (set_gpu_sync_launches). A usage
// error when the resolved device is not the GPU.
void apply_sync_launches(const Flags& flags, const std::string& device);

// The GPU backend's on|off switches (train, eval), default on:
//   --graphs  capture each step shape into a CUDA graph and replay it (BackendConfig::graphs)
//   --fusion  fused kernels where host/fused_plan.h covers the model (BackendConfig::fused)
// A usage error naming the flag for a value other than on or off, when the resolved device is not the
// GPU, and for `--graphs on` together with --sync-launches (a synchronisation inside a capture is
// illegal: sync launches turn graphs off by themselves).
bool parse_gpu_switch(const Flags& flags, const std::string& name, const std::string& device);

// The backend for a resolved device.
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, const BackendConfig& config);

// make_backend with a trained model's parameters (load_trained_model) in its Params arena: what eval,
// show and predict run their images through.
std::unique_ptr<Backend> make_trained_backend(const std::string& device, const Model& model,
                                              const std::vector<float>& params, const BackendConfig& config);

// The dataset --dataset / --data name (default MNIST from $MNIST_DIR or data/mnist).
Dataset load_data(const Flags& flags);

}  // namespace convnet
