// The interface the trainer drives: one implementation per device (CPU reference, CUDA).
//
// A backend owns the parameter arenas (laid out by Model::params), the optimiser state, resident
// copies of the image sets, and the metric accumulators. The trainer decides WHAT to run (which
// samples, in what order, when to evaluate); the backend decides HOW. Metrics accumulate inside the
// backend and are read back only when asked (once per epoch), so a GPU step never waits on the host.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "idx.h"
#include "model.h"
#include "numeric_fault.h"

namespace convnet {

struct OptimizerConfig {
  std::string kind = "adam";  // "adam" or "sgd"
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-7f;  // Keras Adam defaults
  float momentum = 0.0f;                            // SGD
  bool nesterov = false;
};

struct Metrics {
  double loss_sum = 0.0;
  int64_t correct = 0;
  int64_t count = 0;
  double loss() const { return count ? loss_sum / static_cast<double>(count) : 0.0; }
  double accuracy() const { return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0; }
};

// The flat arenas a backend holds, all of Model::arena_size floats.
enum class Arena { Params, Grads, OptimizerM, OptimizerV };

class Backend {
 public:
  virtual ~Backend() = default;

  // One line naming the device, for the log ("cpu: OpenBLAS, 2 threads").
  virtual std::string describe() const = 0;

  // Keep a resident copy of an image set; returns the handle the step calls take.
  virtual int add_images(const ImageSet& set) = 0;

  // The sample order for the coming training steps (indices into the set given to train_step); the
  // next step starts at position `cursor` of it: 0 for a fresh epoch, step * batch for a run resumed
  // in the middle of one (the GPU keeps this cursor in device memory and advances it itself).
  virtual void set_order(const std::vector<int32_t>& order, int cursor = 0) = 0;

  // One optimisation step on the batch order[begin, begin + count) of image set `set`, with dropout
  // active. Adds the batch's loss and correct count to the training metrics.
  virtual void train_step(int set, int begin, int count) = 0;

  // Inference (dropout off) on samples [first, first + count) of `set` (count <= the batch capacity).
  // Adds to the evaluation metrics; writes softmax probabilities (count, 10) when probs is non-null.
  virtual void eval_batch(int set, int first, int count, float* probs) = 0;

  // Read and reset the accumulated metrics.
  virtual Metrics take_train_metrics() = 0;
  virtual Metrics take_eval_metrics() = 0;
  // Replace the accumulated training metrics: a run resumed in the middle of an epoch restores that
  // epoch's partial sums, so the epoch reports the same loss and accuracy as an uninterrupted run.
  virtual void set_train_metrics(const Metrics& metrics) = 0;

  // Copy an arena out or in (Model::arena_size floats), and the optimiser step counter.
  virtual std::vector<float> get_arena(Arena which) const = 0;
  virtual void set_arena(Arena which, const std::vector<float>& values) = 0;
  virtual int64_t step() const = 0;
  virtual void set_step(int64_t step) = 0;

  // The first training step whose loss or gradients were NaN or Inf, with the tensor and layer
  // (numeric_fault.h); nullopt while every step was finite. The backends check every step (the GPU
  // with one extra launch, recording on the device); reading the record waits for the device, so the
  // trainer asks only where it synchronises anyway: at the end of an epoch and before a checkpoint.
  // The default (test doubles) never reports one.
  virtual std::optional<NumericFault> numeric_fault() { return std::nullopt; }
};

struct BackendConfig {
  uint64_t seed = 1;       // dropout masks
  int max_batch = 128;     // activations are sized for this many samples
  OptimizerConfig optimizer;
  bool tf32 = false;       // GPU: let cuBLAS use TF32 tensor cores (default strict FP32)
  // GPU: capture each training and evaluation step shape once into a CUDA graph and replay it (one
  // launch per step instead of dozens); off means direct launches. Off anyway with sync launches.
  // Results are bit-identical either way.
  bool graphs = true;
  bool fused = true;       // GPU: fused kernels where host/fused_plan.h covers the model (--fusion)
};

// The CPU reference backend (host/cpu_backend.cpp).
std::unique_ptr<Backend> make_cpu_backend(const Model& model, const BackendConfig& config);

// The CUDA backend (host/gpu_backend.cpp; in the CUDA build, and in the simulator build of the
// tests). Uses the current CUDA device; throws when there is none.
std::unique_ptr<Backend> make_gpu_backend(const Model& model, const BackendConfig& config);

// Debug option of the CUDA backend (same build as make_gpu_backend): synchronise after every kernel
// launch, so a kernel that faults is reported by name at its launch instead of at a later
// synchronising call (kernels/cuda_check.h; also CONVNET_SYNC_LAUNCHES=1). Slow; `--sync-launches`.
void set_gpu_sync_launches(bool on);

// CUDA graphs the GPU backends of this process have captured (same build as make_gpu_backend). Tests
// read it before and after a run: each step shape is captured once, then replayed.
uint64_t gpu_graph_captures();

}  // namespace convnet
