// The subcommands of `convnet` and what they share. Each command lives in host/commands.cpp or a
// host/cmd_<name>.cpp of its own; all are compiled into the program (not convnet_core), so they see
// CONVNET_HAVE_CUDA. Each parses its arguments with parse_<command>_options (cli_options.h, in
// convnet_core, shared with the CLI fuzz target) before it touches a file. main.cpp maps their
// exceptions to exit codes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend.h"
#include "cli_options.h"
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

// The GpuProbe (cli_options.h) of the program: a CUDA device the runtime can use, or why there is
// none (also when this build has no CUDA).
bool probe_cuda_device(std::string* why);

// --sync-launches, once parse_*_options allowed it (device gpu): the GPU backend synchronises after
// every launch (set_gpu_sync_launches). Does nothing when off.
void enable_sync_launches(bool on);

// The backend for a resolved device.
std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, const BackendConfig& config);

// make_backend with a trained model's parameters (load_trained_model) in its Params arena: what eval,
// show and predict run their images through.
std::unique_ptr<Backend> make_trained_backend(const std::string& device, const Model& model,
                                              const std::vector<float>& params, const BackendConfig& config);

}  // namespace convnet
