// convnet train: flags (or, with --resume, a checkpoint) -> recipe and run settings, the backend, the
// training loop with its JSON log, checkpoints and Ctrl-C handling, and the saved model.
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
// The folders of --save, --checkpoint and --log are checked before any data is read.
//
// Measuring instead of training (GPU only; host/step_window.h): --timing [N] runs W warm-up steps, then
// N timed steps with a CUDA event pair around every launch (host/gpu_timing.h), prints the per-kernel
// table (host/timing_table.h) and exits 0; --profile-steps N runs W warm-up steps, then N steps between
// cudaProfilerStart and cudaProfilerStop for `ncu --profile-from-start off` / `nsys profile
// --capture-range=cudaProfilerApi` (scripts/profile.sh), and exits 0. Neither saves, logs or
// checkpoints anything, so those flags (and --resume, --epochs) are usage errors with them.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <utility>

#include "checkpoint.h"
#include "commands.h"
#include "errors.h"
#include "interrupt.h"
#include "model_io.h"
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
    "  --log PATH          append one JSON line per epoch to PATH (plot with bench/plot_metrics.py)\n"
    "  --checkpoint PATH   write the full training state to PATH (atomically) every N epochs\n"
    "  --checkpoint-every N  epochs between checkpoints (default 1 with --checkpoint)\n"
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

constexpr int kDefaultTimingSteps = 50;
constexpr int kDefaultWarmupSteps = 5;

// --timing / --profile-steps: a measuring window instead of a training run.
struct Window {
  enum class Kind { None, Timing, Profile } kind = Kind::None;
  int steps = 0;
  int warmup = kDefaultWarmupSteps;
  const char* flag = "";
};

// Checked before anything is read, so a conflict costs nothing and names the flags.
Window window_from_flags(const Flags& f) {
  Window w;
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
  w.kind = timing ? Window::Kind::Timing : Window::Kind::Profile;
  w.steps = static_cast<int>(f.get_int(w.flag, kDefaultTimingSteps, 1, 1000000));
  w.warmup = static_cast<int>(f.get_int("warmup-steps", kDefaultWarmupSteps, 0, 1000000));
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

// Everything cmd_train decided from its flags before reading any data.
struct Plan {
  Model model;
  TrainRecipe recipe;
  RunSettings settings;
  TrainState start;
  bool resumed = false;
  Checkpoint checkpoint;       // when resumed
  std::string resume_path;
  std::string checkpoint_path;  // "" : only an interrupt writes one, to kInterruptCheckpoint
};

// A file the run writes later (--save, --checkpoint, --log): its folder must exist now, so a typo does not
// cost a run's training first. A full disk is only found when writing, and reported then.
void check_destination(const char* flag, const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw UsageError(std::string("--") + flag + ": " + path + " is a directory, expected a file name");
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (stat(dir.c_str(), &st) != 0)
    throw UsageError(std::string("--") + flag + ": cannot write " + path + ": " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode))
    throw UsageError(std::string("--") + flag + ": cannot write " + path + ": " + dir + " is not a directory");
}

Plan with_checked_destinations(Plan p) {
  if (!p.settings.save.empty()) check_destination("save", p.settings.save);
  if (!p.checkpoint_path.empty()) check_destination("checkpoint", p.checkpoint_path);
  if (!p.settings.log.empty()) check_destination("log", p.settings.log);
  return p;
}

Plan plan_from_flags(const Flags& f) {
  Plan p;
  p.resumed = f.has("resume");
  if (!p.resumed) {
    if (f.has("checkpoint-every") && !f.has("checkpoint"))
      throw UsageError("--checkpoint-every: needs --checkpoint PATH");
    p.recipe = recipe_from_flags(f, TrainRecipe{}, false);
    p.settings = settings_from_flags(f, RunSettings{});
    p.model = build_model(p.recipe.arch);
    p.checkpoint_path = f.get("checkpoint", "");
    return with_checked_destinations(p);
  }
  p.resume_path = f.get("resume", "");
  p.checkpoint = load_checkpoint(p.resume_path);
  refuse_contradictions(f, recipe_from_flags(f, p.checkpoint.recipe, true), p.checkpoint.recipe);
  p.recipe = p.checkpoint.recipe;
  p.settings = settings_from_flags(f, p.checkpoint.settings);
  p.model = p.checkpoint.model;
  p.start = p.checkpoint.state;
  p.checkpoint_path = f.get("checkpoint", p.resume_path);
  const int needed = p.start.epochs_done + (p.start.epoch_step > 0 ? 1 : 0);
  if (p.settings.epochs < needed)
    throw UsageError("--epochs: " + std::to_string(p.settings.epochs) + " ends before the checkpoint's position (" +
                     std::to_string(p.start.epochs_done) + " epochs and " + std::to_string(p.start.epoch_step) +
                     " steps done)");
  return with_checked_destinations(p);
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

void save_trained_model(const Plan& p, const Backend& backend, const TrainSummary& s) {
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
TrainConfig train_config(const Plan& p, const Backend& backend) {
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

// `bc` brings the GPU switches (tf32, graphs, fused); the recipe the rest.
std::unique_ptr<Backend> make_train_backend(const Plan& p, const std::string& device, BackendConfig bc) {
  bc.seed = p.recipe.seed;
  bc.max_batch = p.recipe.batch;
  bc.optimizer = p.recipe.optimizer;
  std::unique_ptr<Backend> backend = make_backend(device, p.model, bc);
  if (p.resumed) restore_checkpoint(*backend, p.checkpoint);
  return backend;
}

// Writes the run's checkpoints and remembers the last good one (this run's, or the one it resumed
// from), which the error of a run that fails later names: a failed write (full disk) leaves the
// previous file intact (temporary file + rename), and a diverged run writes none after the fault.
class Checkpointer {
 public:
  Checkpointer(const Plan& p, const Backend& backend, std::string path)
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
  const Plan& p_;
  const Backend& backend_;
  std::string path_;
  int steps_;
  std::string last_good_;
};

#ifdef CONVNET_HAVE_CUDA
using Clock = std::chrono::steady_clock;

// --timing: a KernelTimer observes every launch of the timed steps; CUDA graphs stay off, since a
// replayed graph makes no launches to observe.
int run_timing(const Window& w, const Plan& p, const Dataset& data, Backend& backend) {
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
int run_profile_window(const Window& w, const Plan& p, const Dataset& data, Backend& backend) {
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

int run_window(const Window& w, const Plan& p, const Dataset& data, Backend& backend) {
#ifdef CONVNET_HAVE_CUDA
  return w.kind == Window::Kind::Timing ? run_timing(w, p, data, backend) : run_profile_window(w, p, data, backend);
#else
  (void)p, (void)data, (void)backend;
  throw UsageError(std::string("--") + w.flag + ": this build has no CUDA support");
#endif
}

}  // namespace

int cmd_train(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kTrainHelp, 0;
  Flags f("train", args,
          {"arch", "epochs", "batch-size", "optimizer", "lr", "momentum", "val-split", "limit-train", "seed", "device",
           "data", "dataset", "save", "log", "checkpoint", "checkpoint-every", "resume", "graphs",
           "fusion", "profile-steps", "warmup-steps"},
          {"nesterov", "no-test", "tf32", "sync-launches"}, {"timing"});
  if (!f.positional().empty()) throw UsageError("train: unexpected argument '" + f.positional()[0] + "'");
  refuse_empty_paths(f, {"data", "save", "log", "checkpoint", "resume"});
  const Window window = window_from_flags(f);
  Plan p = plan_from_flags(f);
  const std::string device = parse_device(f);
  BackendConfig gpu_switches;
  gpu_switches.tf32 = f.has("tf32");
  if (gpu_switches.tf32 && device != "gpu") throw UsageError("--tf32: only applies to --device gpu");
  if (window.kind != Window::Kind::None && device != "gpu")
    throw UsageError(std::string("--") + window.flag + ": only applies to --device gpu");
  gpu_switches.graphs = parse_gpu_switch(f, "graphs", device);
  gpu_switches.fused = parse_gpu_switch(f, "fusion", device);
  // --timing times each launch between CUDA events: a replayed graph makes no launches to observe,
  // and events recorded during a capture would land inside the graph. So graphs are off for it.
  if (window.kind == Window::Kind::Timing) {
    if (f.has("graphs") && gpu_switches.graphs)
      throw UsageError("--graphs: 'on' contradicts --timing, which times every launch directly (graphs off)");
    gpu_switches.graphs = false;
  }
  apply_sync_launches(f, device);

  Dataset data = load_dataset(default_data_dir(f.get("data", ""), p.recipe.dataset), p.recipe.dataset);
  if (!p.resumed) p.recipe.train_images = data.train.count;
  if (data.train.count != p.recipe.train_images)
    throw InputError(data.dir + ": the training set has " + std::to_string(data.train.count) + " images, but " +
                     p.resume_path + " was trained on " + std::to_string(p.recipe.train_images));
  std::unique_ptr<Backend> backend = make_train_backend(p, device, gpu_switches);
  std::cout << "Device: " << backend->describe() << "\n"
            << "Data: " << data.name << " from " << data.dir << "\n"
            << "Model: " << p.model.spec << " (" << p.model.param_count << " parameters)\n";
  if (p.resumed) std::cout << "Resumed from " << p.resume_path << "\n";
  if (window.kind != Window::Kind::None) return std::cout << std::flush, run_window(window, p, data, *backend);

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
              << "; resume with: convnet train --resume " << shell_word(ckpt.path()) << "\n";
    return kExitInterrupted;
  }
  std::printf("Total time: %.3f s\n", s.seconds);  // ms: the GPU recipe target is < 0.5 s
  if (!p.settings.save.empty()) save_trained_model(p, *backend, s);
  return 0;
}

}  // namespace convnet
