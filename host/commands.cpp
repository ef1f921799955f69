// convnet eval | summary | devices and the dispatch (see commands.h and README.md for the user's view);
// convnet train lives in cmd_train.cpp.
#include "commands.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <stdexcept>

#include "backend.h"
#include "errors.h"
#include "flags.h"
#include "idx.h"
#include "image_io.h"
#include "model.h"
#include "checkpoint.h"
#include "model_io.h"
#include "output_file.h"
#include "render.h"
#include "trainer.h"
#ifdef CONVNET_HAVE_CUDA
#include "gpu_device.h"
#endif

namespace convnet {

bool probe_cuda_device(std::string* why) {
#ifdef CONVNET_HAVE_CUDA
  return cuda_device_count(why) > 0;
#else
  *why = "this build has no CUDA support (configure with nvcc installed)";
  return false;
#endif
}

void enable_sync_launches(bool on) {
#ifdef CONVNET_HAVE_CUDA
  if (on) set_gpu_sync_launches(true);
#else
  (void)on;  // parse_*_options refuse --sync-launches without a GPU
#endif
}

std::unique_ptr<Backend> make_backend(const std::string& device, const Model& model, const BackendConfig& config) {
#ifdef CONVNET_HAVE_CUDA
  if (device == "gpu") return make_gpu_backend(model, config);
#endif
  CONVNET_CHECK(device == "cpu", "unknown device " + device);
  return make_cpu_backend(model, config);
}

std::unique_ptr<Backend> make_trained_backend(const std::string& device, const Model& model,
                                              const std::vector<float>& params, const BackendConfig& config) {
  std::unique_ptr<Backend> backend = make_backend(device, model, config);
  backend->set_arena(Arena::Params, params);
  return backend;
}

namespace {

const char* const kUsage =
    "usage: convnet <command> [flags]\n"
    "\n"
    "commands:\n"
    "  train     train a network on MNIST (the Keras recipe by default) and report test accuracy\n"
    "  eval      evaluate a saved model on the test set: loss, accuracy, per-class accuracy, confusion matrix\n"
    "  summary   print the layers, output shapes and parameter counts of an architecture\n"
    "  devices   list the CUDA devices this build can see\n"
    "  predict   classify images of handwritten digits (PNG, JPEG, BMP, PGM/PPM, GIF) with a saved model\n"
    "  show      draw test digits with a saved model's predictions (right green, wrong red) into a PNG grid\n"
    "\n"
    "Run 'convnet <command> --help' for the flags of one command.\n";

const char* const kEvalHelp =
    "usage: convnet eval --model PATH [flags]\n"
    "  --model PATH        a model from 'convnet train --save', or a --checkpoint file\n"
    "  --batch-size N      evaluation batch size (default 256)\n"
    "  --device D          auto (default: the GPU when there is one), gpu or cpu\n"
    "  --data DIR          folder of the dataset's test files (default: $MNIST_DIR, then data/mnist,\n"
    "                      for mnist; /usr/share/datasets/fashion-mnist for fashion)\n"
    "  --dataset D         mnist or fashion (default: the one the model was trained on)\n"
    "  --confusion-png P   also draw the confusion matrix as a heat map (rows normalised) into PNG P\n"
    "  --graphs on|off     GPU: replay each batch shape as a captured CUDA graph (default on)\n"
    "  --fusion on|off     GPU: fused kernels where the model allows (default on); off: one kernel per layer\n"
    "  --sync-launches     GPU debugging: wait for every kernel, so a fault names its kernel (slow;\n"
    "                      turns graphs off)\n";

const char* const kSummaryHelp =
    "usage: convnet summary [--arch A]\n"
    "  --arch A            seed (default), seed96, keras, or a spec string (see convnet train --help)\n";

const char* const kDevicesHelp =
    "usage: convnet devices\n"
    "  lists the CUDA devices this build can see (no flags)\n";

void print_confusion(const std::vector<std::vector<int64_t>>& cm) {
  std::printf("\nConfusion matrix (rows: true digit, columns: predicted)\n      ");
  for (int c = 0; c < kNumClasses; ++c) std::printf("%6d", c);
  std::printf("\n");
  for (int r = 0; r < kNumClasses; ++r) {
    std::printf("%6d", r);
    for (int c = 0; c < kNumClasses; ++c) std::printf("%6lld", static_cast<long long>(cm[r][c]));
    std::printf("\n");
  }
}

}  // namespace

int cmd_eval(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kEvalHelp, 0;
  const EvalOptions o = parse_eval_options(args, probe_cuda_device);
  if (!o.confusion_png.empty()) {  // before evaluating; the PNG must not replace the model
    refuse_same_output({{"model", o.model_path}, {"confusion-png", o.confusion_png}});
    check_output_file("confusion-png", o.confusion_png);
  }
  enable_sync_launches(o.sync_launches);
  auto [model, params, trained_on] = load_model_or_checkpoint(o.model_path);
  Dataset data = load_dataset(o.data.dir(trained_on), o.data.dataset(trained_on), Splits::TestOnly);
  BackendConfig bc;
  bc.max_batch = o.batch;
  bc.graphs = o.graphs;
  bc.fused = o.fused;
  std::unique_ptr<Backend> backend = make_trained_backend(o.device, model, params, bc);
  const int set = backend->add_images(data.test);
  std::vector<float> probs(static_cast<size_t>(data.test.count) * kNumClasses);
  Metrics m = evaluate(*backend, set, 0, data.test.count, o.batch, probs.data());

  std::vector<std::vector<int64_t>> cm(kNumClasses, std::vector<int64_t>(kNumClasses, 0));
  for (int i = 0; i < data.test.count; ++i) {
    const float* p = probs.data() + static_cast<size_t>(i) * kNumClasses;
    int pred = 0;
    for (int c = 1; c < kNumClasses; ++c)
      if (p[c] > p[pred]) pred = c;
    ++cm[data.test.labels[static_cast<size_t>(i)]][pred];
  }
  std::printf("Model: %s (%s)\nData: %s test set, %d images from %s\n", o.model_path.c_str(),
              model.spec.c_str(), data.name.c_str(), data.test.count, data.dir.c_str());
  std::printf("Test loss: %.4f\nTest accuracy: %.4f\n\nPer-class accuracy\n", m.loss(), m.accuracy());
  for (int c = 0; c < kNumClasses; ++c) {
    int64_t total = 0;
    for (int p = 0; p < kNumClasses; ++p) total += cm[c][p];
    if (total == 0) {  // no test image of this class: there is no accuracy to report
      std::printf("  %d: -       (0/0)\n", c);
      continue;
    }
    std::printf("  %d: %.4f  (%lld/%lld)\n", c, static_cast<double>(cm[c][c]) / total,
                static_cast<long long>(cm[c][c]), static_cast<long long>(total));
  }
  print_confusion(cm);
  if (!o.confusion_png.empty()) {
    write_png(o.confusion_png, render_confusion(cm));
    std::printf("wrote %s\n", o.confusion_png.c_str());
  }
  return 0;
}

int cmd_summary(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kSummaryHelp, 0;
  std::cout << summary_table(parse_summary_options(args));
  return 0;
}

int cmd_devices(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kDevicesHelp, 0;
  parse_devices_options(args);
#ifdef CONVNET_HAVE_CUDA
  std::cout << cuda_device_report();
#else
  std::cout << "this build has no CUDA support (configured with CONVNET_CUDA=OFF or without nvcc)\n";
#endif
  return 0;
}

int run_command(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string& cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "train") return cmd_train(rest);
  if (cmd == "eval") return cmd_eval(rest);
  if (cmd == "summary") return cmd_summary(rest);
  if (cmd == "devices") return cmd_devices(rest);
  if (cmd == "predict") return cmd_predict(rest);
  if (cmd == "show") return cmd_show(rest);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") return std::cout << kUsage, 0;
  if (cmd == "--version") return std::cout << "convnet " << CONVNET_VERSION << "\n", 0;
  command_flags(cmd);  // throws: the unknown-command error
  throw std::logic_error("command '" + cmd + "' has a flag table but no dispatch");
}

}  // namespace convnet
