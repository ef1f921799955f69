// convnet train: flags (or, with --resume, a checkpoint) -> recipe and run settings, the backend, the
// training loop with its JSON log, checkpoints and Ctrl-C handling, and the saved model. The flags are
// turned into settings by parse_train_options / resume_train_options (host/cli_options.h, which the
// CLI fuzz target calls too); this file does what reads or writes files.
//
// Resume: the recipe (arch, batch, optimiser, val split, limit, seed, dataset) comes from the
// checkpoint; a recipe flag that contradicts it is a usage error naming the flag, one that agrees is
// accepted. The run settings (--epochs, --checkpoint-every, --log, --save, --no-test) default to the
// checkpoint's and may be changed: --epochs raised trains longer. Checkpoints of a resumed run go to
// --checkpoint, else back to the file it resumed from.
//
// Ctrl-C / SIGTERM (interrupt.h): the step in progress finishes, a checkpoint is written to
// --checkpoint PATH or, when there is none, to convnet-interrupted.ckpt in the current folder, the
// resume command is printed and the exit code is kExitInterrupted (130).
//
// Failures after training began are one line that also names the last good checkpoint (or says none
// was written): a checkpoint write that fails (full disk: exit 2) leaves the previous file intact, and
// a run whose loss or gradients go NaN/Inf (exit 3, trainer.h) writes no checkpoint after the fault.
// The files of --save, --checkpoint and --log are checked before any data is read (check_destinations).
//
// Measuring instead of training (GPU only; host/step_window.h): --timing [N] runs W warm-up steps, then
// N timed steps with a CUDA event pair around every launch (host/gpu_timing.h), prints the per-kernel
// table (host/timing_table.h) and exits 0; --profile-steps N runs W warm-up steps, then N steps between
// cudaProfilerStart and cudaProfilerStop for `ncu --profile-from-start off` / `nsys profile
// --capture-range=cudaProfilerApi` (scripts/profile.sh), and exits 0. Neither saves, logs or
// checkpoints anything, so those flags (and --resume, --epochs) are usage errors with them
// (cli_options.cpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>
#include <utility>

#include "checkpoint.h"
#include "cli_options.h"
#include "commands.h"
#include "errors.h"
#include "interrupt.h"
#include "model_io.h"
#include "output_file.h"
#include "step_window.h"
#include "trainer.h"
#ifdef CONVNET_HAVE_CUDA
#include "gpu_profile.h"
#include "gpu_timing.h"
#endif

namespace convnet {
namespace {

constexpr const char* kInterruptCheckpoint = "convnet-interrupted.ckpt";

const char* const kTrainHelp =
    "usage: convnet train [flags]\n"
    "  --arch A            seed (default), seed96, keras, or a spec such as\n"
    "                      conv32-pool-conv64-pool-flatten-dropout0.5-dense10\n"
    "  --epochs N          epochs (default 15)\n"
    "  --batch-size N      mini-batch size (default 128)\n"
    "  --optimizer O       adam (default) or sgd\n"
    "  --lr X              learning rate (default 0.001 for adam, 0.01 for sgd)\n"
    "  --momentum X        SGD momentum in [0, 1) (default 0)\n"
    "  --nesterov          Nesterov momentum (SGD)\n"
    "  --val-split X       fraction of the training images held out for validation, the last ones\n"
    "                      (default 0.1; 0 disables validation)\n"
    "  --limit-train N     train on only the first N training images\n"
    "  --seed N            seed for initialisation, shuffling and dropout (default 1)\n"
    "  --device D          auto (default: the GPU when there is one), gpu or cpu\n"
    "  --tf32              let cuBLAS use TF32 tensor cores on the GPU (default: strict FP32)\n"
    "  --graphs on|off     GPU: capture each step into a CUDA graph once and replay it, one launch per\n"
    "                      step (default on; results are bit-identical either way)\n"
    "  --fusion on|off     GPU: fused kernels (14 launches a step for the seed net) where the model\n"
    "                      allows (default on); off: one kernel per layer (40 launches)\n"
    "  --sync-launches     GPU debugging: wait for every kernel, so a fault names its kernel (slow;\n"
    "                      turns graphs off)\n"
    "  --data DIR          dataset folder (default $MNIST_DIR, then data/mnist)\n"
    "  --dataset D         mnist (default) or fashion (/usr/share/datasets/fashion-mnist)\n"
    "  --save PATH         write the trained model to PATH (atomically)\n"
    "  --no-test           skip the final test-set evaluation\n"
    "  --log PATH          append one JSON line per epoch to PATH, a new file or an earlier log (plot\n"
    "                      with bench/plot_metrics.py)\n"
    "  --checkpoint PATH   write the full training state to PATH (atomically) every N epochs\n"
    "  --checkpoint-every N\n"
    "                      epochs between checkpoints (default 1 with --checkpoint)\n"
    "  --resume PATH       continue the run a checkpoint holds; its recipe flags come from the\n"
    "                      checkpoint (--epochs may be raised to train longer)\n"
    "  --timing [N]        GPU: time N training steps (default 50) with CUDA events around every\n"
    "                      kernel launch, print each kernel's share of the step and exit (no model)\n"
    "  --profile-steps N   GPU: run N training steps between cudaProfilerStart and cudaProfilerStop\n"
    "                      for Nsight (scripts/profile.sh) and exit (no model)\n"
    "  --warmup-steps W    steps before --timing or --profile-steps measure (default 5)\n"
    "Ctrl-C finishes the current step, writes a checkpoint (to --checkpoint PATH, else\n"
    "./convnet-interrupted.ckpt) and prints how to resume; a second Ctrl-C exits at once.\n"
    "A NaN or Inf loss or gradient stops the run with exit code 3, naming the step, layer and tensor;\n"
    "no checkpoint is written after it.\n";

// The files the run writes later (--save, --checkpoint, --log), checked before any data is read, so a
// typo does not cost a run's training first (output_file.h): folders that exist and accept a file, no
// device or FIFO, a --log that is a training log, and no two of them the same file. A resumed run's
// --save and --log default to the checkpoint's, and its --checkpoint to the file it resumed from, which
// it may overwrite. A full disk is only found when writing, and reported then.
void check_destinations(const TrainOptions& o) {
  refuse_same_output({{"save", o.settings.save}, {"checkpoint", o.checkpoint_path}, {"log", o.settings.log}},
                     o.resumed ? " (a resumed run's --save and --log default to the checkpoint's)" : "");
  // Without --checkpoint, Ctrl-C saves to ./convnet-interrupted.ckpt: it would replace that file.
  if (o.checkpoint_path.empty())
    for (const auto& [flag, path] : {std::pair{"save", o.settings.save}, std::pair{"log", o.settings.log}})
      if (!path.empty() && same_output_file(path, kInterruptCheckpoint))
        throw UsageError(std::string("--") + flag + ": " + path + " is where Ctrl-C saves a checkpoint when there is no " +
                         "--checkpoint; name another file, or give --checkpoint");
  if (!o.settings.save.empty()) check_output_file("save", o.settings.save);
  if (!o.checkpoint_path.empty()) check_output_file("checkpoint", o.checkpoint_path);
  if (!o.settings.log.empty()) check_log_file("log", o.settings.log);
}

// A path as a shell word: as it is when plain, else single-quoted.
std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+=:,") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// "epoch E step S/N": where a state stands, as the epoch lines count.
std::string position(const TrainState& st, int steps) {
  const bool mid = st.epoch_step > 0;
  return "epoch " + std::to_string(mid ? st.epochs_done + 1 : st.epochs_done) + " step " +
         std::to_string(mid ? st.epoch_step : steps) + "/" + std::to_string(steps);
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void save_trained_model(const TrainOptions& p, const Backend& backend, const TrainSummary& s) {
  std::vector<std::pair<std::string, std::string>> meta = {
      {"dataset", p.recipe.dataset},          {"epochs", std::to_string(p.settings.epochs)},
      {"batch_size", std::to_string(p.recipe.batch)}, {"optimizer", p.recipe.optimizer.kind},
      {"seed", std::to_string(p.recipe.seed)},        {"created", utc_now()},
      {"convnet_version", CONVNET_VERSION}};
  if (p.settings.test) {
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.4f", s.test.accuracy());
    meta.push_back({"test_accuracy", acc});
  }
  save_model_file(p.settings.save, make_model_file(p.model, backend.get_arena(Arena::Params), meta));
  std::cout << "Saved model to " << p.settings.save << "\n";
}

// The trainer's view of the plan; cmd_train adds the checkpoint and stop callbacks.
TrainConfig train_config(const TrainOptions& p, const Backend& backend) {
  TrainConfig tc;
  tc.epochs = p.settings.epochs;
  tc.batch = p.recipe.batch;
  tc.val_split = p.recipe.val_split;
  tc.seed = p.recipe.seed;
  tc.limit_train = p.recipe.limit_train;
  tc.test = p.settings.test;
  tc.progress = isatty(STDOUT_FILENO) != 0;
  tc.log_path = p.settings.log;
  tc.learning_rate = p.recipe.optimizer.lr;
  tc.device = backend.describe();
  return tc;
}

// The options bring the device and the GPU switches (tf32, graphs, fused); the recipe the rest.
std::unique_ptr<Backend> make_train_backend(const TrainOptions& p, const Checkpoint& checkpoint) {
  BackendConfig bc = p.gpu;
  bc.seed = p.recipe.seed;
  bc.max_batch = p.recipe.batch;
  bc.optimizer = p.recipe.optimizer;
  std::unique_ptr<Backend> backend = make_backend(p.device, p.model, bc);
  if (p.resumed) restore_checkpoint(*backend, checkpoint);
  return backend;
}

// Writes the run's checkpoints and remembers the last good one (this run's, or the one it resumed
// from), which the error of a run that fails later names: a failed write (full disk) leaves the
// previous file intact (temporary file + rename), and a diverged run writes none after the fault.
class Checkpointer {
 public:
  Checkpointer(const TrainOptions& p, const Backend& backend, std::string path)
      : p_(p), backend_(backend), path_(std::move(path)), steps_(steps_per_epoch(p.recipe)) {
    if (p.resumed) last_good_ = p.resume_path + " (" + position(p.start, steps_) + ")";
  }
  void operator()(const TrainState& st) {
    try {
      save_checkpoint(path_, p_.model, backend_, p_.recipe, p_.settings, st);
    } catch (const InputError& e) {
      throw InputError(std::string(e.what()) + "; " + last_good());
    }
    last_good_ = path_ + " (" + position(st, steps_) + ")";
    std::cout << "Saved checkpoint to " << last_good_ << "\n" << std::flush;
  }
  std::string last_good() const {
    return last_good_.empty() ? "no checkpoint was written" : "last good checkpoint: " + last_good_;
  }
  const std::string& path() const { return path_; }
  int steps() const { return steps_; }

 private:
  const TrainOptions& p_;
  const Backend& backend_;
  std::string path_;
  int steps_;
  std::string last_good_;
};

#ifdef CONVNET_HAVE_CUDA
using Clock = std::chrono::steady_clock;

// --timing: a KernelTimer observes every launch of the timed steps; CUDA graphs stay off, since a
// replayed graph makes no launches to observe.
int run_timing(const MeasureWindow& w, const TrainOptions& p, const Dataset& data, Backend& backend) {
  std::printf("Timing %d training steps of batch %d after %d warm-up steps: CUDA events around every launch "
              "(CUDA graphs off)\n", w.steps, p.recipe.batch, w.warmup);
  std::fflush(stdout);
  KernelTimer timer;
  ScopedLaunchObserver observe(&timer);
  Clock::time_point t0;
  double wall_us = 0.0;
  StepWindowHooks hooks;
  hooks.start = [&] {
    const size_t per_step = w.warmup > 0 ? timer.launches() / static_cast<size_t>(w.warmup) : 0;
    timer.restart(per_step * static_cast<size_t>(w.steps));  // the timed steps create no events
    t0 = Clock::now();
  };
  hooks.before_step = [&] { timer.begin_step(); };
  hooks.after_step = [&] { timer.end_step(); };
  hooks.stop = [&] { wall_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); };
  const Metrics m = run_step_window(backend, data.train, train_config(p, backend), w.warmup, w.steps, hooks);
  TimingReport report = timer.report(w.steps);
  report.wall_us = wall_us;
  std::printf("%s", format_timing_table(report, "Per kernel, mean over the timed steps (microseconds):").c_str());
  std::printf("Loss over the timed steps: %.4f\n", m.loss());
  return 0;
}

// --profile-steps: the window Nsight captures with --profile-from-start off / cudaProfilerApi.
int run_profile_window(const MeasureWindow& w, const TrainOptions& p, const Dataset& data, Backend& backend) {
  std::printf("Profiling %d training steps of batch %d after %d warm-up steps, between cudaProfilerStart and "
              "cudaProfilerStop\n", w.steps, p.recipe.batch, w.warmup);
  std::fflush(stdout);
  StepWindowHooks hooks;
  hooks.start = cuda_profiler_start;
  hooks.stop = cuda_profiler_stop;
  const Metrics m = run_step_window(backend, data.train, train_config(p, backend), w.warmup, w.steps, hooks);
  std::printf("Profiled %d steps (loss %.4f)\n", w.steps, m.loss());
  return 0;
}
#endif

int run_window(const TrainOptions& p, const Dataset& data, Backend& backend) {
  const MeasureWindow& w = p.window;
#ifdef CONVNET_HAVE_CUDA
  return w.kind == MeasureWindow::Kind::Timing ? run_timing(w, p, data, backend)
                                               : run_profile_window(w, p, data, backend);
#else
  (void)data, (void)backend;
  throw UsageError(std::string("--") + w.flag + ": this build has no CUDA support");
#endif
}

}  // namespace

int cmd_train(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kTrainHelp, 0;
  TrainOptions p = parse_train_options(args, probe_cuda_device);
  Checkpoint checkpoint;  // a resumed run's: the recipe, the model and the state to restore
  if (p.resumed) {
    checkpoint = load_checkpoint(p.resume_path);
    resume_train_options(&p, args, checkpoint);
  }
  check_destinations(p);
  enable_sync_launches(p.sync_launches);

  Dataset data = load_dataset(default_data_dir(p.data_flag, p.recipe.dataset), p.recipe.dataset,
                              p.settings.test ? Splits::TrainAndTest : Splits::TrainOnly);
  if (!p.resumed) p.recipe.train_images = data.train.count;
  if (data.train.count != p.recipe.train_images)
    throw InputError(data.dir + ": the training set has " + std::to_string(data.train.count) + " images, but " +
                     p.resume_path + " was trained on " + std::to_string(p.recipe.train_images));
  std::unique_ptr<Backend> backend = make_train_backend(p, checkpoint);
  std::cout << "Device: " << backend->describe() << "\n"
            << "Data: " << data.name << " from " << data.dir << "\n"
            << "Model: " << p.model.spec << " (" << p.model.param_count << " parameters)\n";
  if (p.resumed) std::cout << "Resumed from " << p.resume_path << "\n";
  if (p.window.kind != MeasureWindow::Kind::None) return std::cout << std::flush, run_window(p, data, *backend);

  TrainConfig tc = train_config(p, *backend);
  Checkpointer ckpt(p, *backend, p.checkpoint_path.empty() ? kInterruptCheckpoint : p.checkpoint_path);
  tc.checkpoint_every = p.checkpoint_path.empty() ? 0 : p.settings.checkpoint_every;
  tc.checkpoint = std::ref(ckpt);
  tc.stop_requested = &InterruptScope::requested;

  InterruptScope interrupts;
  TrainSummary s;
  try {
    s = train_model(*backend, data, tc, std::cout, p.start);
  } catch (const NumericError& e) {
    throw NumericError(std::string(e.what()) + "; " + ckpt.last_good());
  }
  if (s.interrupted) {
    std::cout << std::flush;
    std::cerr << "convnet: interrupted at " << position(s.stopped, ckpt.steps())
              << "; resume with: convnet train --resume " << shell_word(ckpt.path())
              << (p.data_flag.empty() ? "" : " --data " + shell_word(p.data_flag)) << "\n";  // not in the checkpoint
    return kExitInterrupted;
  }
  std::printf("Total time: %.3f s\n", s.seconds);  // ms: the GPU recipe target is < 0.5 s
  if (!p.settings.save.empty()) save_trained_model(p, *backend, s);
  return 0;
}

}  // namespace convnet
