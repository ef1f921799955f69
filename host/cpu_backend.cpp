// The CPU reference backend: the training step written as a list of CPU reference layer calls.
//
// Buffers are sized once, for BackendConfig::max_batch samples, when the backend is made: the step
// itself allocates nothing. act[i] is the input of layer i (act[0] the normalised batch, act[L] the
// logits), dact[i] its gradient. Each conv layer keeps its im2col buffer from forward for the weight
// gradient; pre/dpre and dcol are workspaces shared by all conv layers.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <utility>

#include "backend.h"
#include "cpu_layers.h"
#include "errors.h"

namespace convnet {
namespace {

std::string gib(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return text;
}

// What the CPU backend holds: the model's parameters with their gradients and optimiser moments
// (4 arenas), and the per-batch activations and workspace.
struct HostFootprint {
  size_t model_bytes = 0, batch_bytes = 0;
  int batch = 0;
  // "X GiB (Y GiB of parameters, gradients and optimiser state, Z GiB for batches of N)", and what
  // to make smaller: the model when its part alone is most of it, else the batch.
  std::string what() const {
    return gib(model_bytes + batch_bytes) + " (" + gib(model_bytes) +
           " of parameters, gradients and optimiser state, " + gib(batch_bytes) + " for batches of " +
           std::to_string(batch) + ")";
  }
  std::string advice() const {
    // eval and predict read the network from a model file and have no --arch: name what each can do.
    return model_bytes >= batch_bytes ? "use a smaller --arch when training, or a machine with more memory"
                                      : "use a smaller --batch-size";
  }
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(const Model& model, const BackendConfig& config);

  std::string describe() const override { return "cpu: reference layers, OpenBLAS GEMM"; }
  int add_images(const ImageSet& set) override;
  void set_order(const std::vector<int32_t>& order, int cursor = 0) override;
  void train_step(int set, int begin, int count) override;
  void eval_batch(int set, int first, int count, float* probs) override;
  Metrics take_train_metrics() override { return std::exchange(train_metrics_, Metrics{}); }
  Metrics take_eval_metrics() override { return std::exchange(eval_metrics_, Metrics{}); }
  void set_train_metrics(const Metrics& metrics) override { train_metrics_ = metrics; }
  std::vector<float> get_arena(Arena which) const override { return arena(which); }
  void set_arena(Arena which, const std::vector<float>& values) override;
  int64_t step() const override { return step_; }
  void set_step(int64_t step) override { step_ = step; }
  std::optional<NumericFault> numeric_fault() override { return numeric_fault_from(model_, fault_); }

 private:
  // Element counts of the per-batch buffers for max_batch samples.
  struct BufferSizes {
    std::vector<size_t> act, col, argmax;  // per layer (act: layers + 1)
    size_t pre = 0, dcol = 0;
  };
  BufferSizes buffer_sizes() const;
  HostFootprint footprint() const;
  void allocate();
  std::vector<float>& arena(Arena which);
  const std::vector<float>& arena(Arena which) const { return const_cast<CpuBackend*>(this)->arena(which); }
  void load_batch(int set, const int32_t* indices, int count);
  XentResult forward(int n, bool training, float* probs);
  void backward(int n);
  void update();
  const float* param(int index) const { return index < 0 ? nullptr : params_.data() + model_.params[index].offset; }
  float* grad(int index) { return index < 0 ? nullptr : grads_.data() + model_.params[index].offset; }

  Model model_;
  BackendConfig config_;
  std::vector<ImageSet> sets_;
  std::vector<int32_t> order_;
  std::vector<int32_t> batch_index_;
  std::vector<uint8_t> labels_;
  std::vector<float> params_, grads_, opt_m_, opt_v_;
  std::vector<std::vector<float>> act_, dact_, col_;
  std::vector<std::vector<int32_t>> argmax_;
  std::vector<float> pre_, dcol_;
  Metrics train_metrics_, eval_metrics_;
  int64_t step_ = 0;
  DeviceFault fault_ = no_device_fault();
};

// Host memory this machine can still give (MemAvailable), or SIZE_MAX when /proc does not say.
size_t host_memory_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024;
  return SIZE_MAX;
}

// Refuses a model and batch whose buffers cannot fit in host memory BEFORE touching them: with
// overcommit the allocation itself would succeed and the kernel's OOM killer end the run without a word.
void check_host_memory(const HostFootprint& need) {
  const size_t available = host_memory_available();
  if (need.model_bytes + need.batch_bytes > available)
    throw ResourceError("out of host memory: the CPU backend needs " + need.what() + ", " + gib(available) +
                        " available; " + need.advice());
}

CpuBackend::CpuBackend(const Model& model, const BackendConfig& config) : model_(model), config_(config) {
  const HostFootprint need = footprint();
  check_host_memory(need);
  try {
    params_ = init_params(model, config.seed);
    allocate();
  } catch (const std::bad_alloc&) {  // an address-space limit (ulimit -v) rather than overcommit
    throw ResourceError("out of host memory: cannot allocate the CPU backend's " + need.what() + "; " + need.advice());
  }
}

CpuBackend::BufferSizes CpuBackend::buffer_sizes() const {
  const Model& model = model_;
  const size_t n = static_cast<size_t>(config_.max_batch);
  const size_t layers = model.layers.size();
  BufferSizes b;
  b.act.assign(layers + 1, 0);
  b.col.assign(layers, 0);
  b.argmax.assign(layers, 0);
  b.act[0] = n * model.layers[0].in.size();
  for (size_t i = 0; i < layers; ++i) {
    const Layer& l = model.layers[i];
    b.act[i + 1] = n * l.out.size();
    if (l.spec.kind == LayerKind::Conv) {
      const size_t rows = static_cast<size_t>(l.in.c) * l.spec.kernel * l.spec.kernel;
      const size_t cols = n * l.out.h * l.out.w;
      b.col[i] = rows * cols;
      b.dcol = std::max(b.dcol, rows * cols);
      b.pre = std::max(b.pre, static_cast<size_t>(l.out.c) * cols);
    } else if (l.spec.kind == LayerKind::Pool) {
      b.argmax[i] = n * l.out.size();
    }
  }
  return b;
}

HostFootprint CpuBackend::footprint() const {
  const BufferSizes b = buffer_sizes();
  size_t floats = b.pre + b.dcol;
  for (size_t a : b.act) floats += 2 * a;  // act and dact
  for (size_t c : b.col) floats += c;
  size_t ints = 0;
  for (size_t a : b.argmax) ints += a;
  HostFootprint f;
  f.model_bytes = 4 * model_.arena_size * sizeof(float);  // params, grads, m, v
  f.batch_bytes = floats * sizeof(float) + ints * sizeof(int32_t) + 5 * static_cast<size_t>(config_.max_batch);
  f.batch = config_.max_batch;
  return f;
}

// Allocates every buffer for max_batch samples, at the sizes footprint() counted: act/dact per
// layer, col per conv layer, argmax per pool layer, shared pre and dcol.
void CpuBackend::allocate() {
  const Model& model = model_;
  const size_t n = static_cast<size_t>(config_.max_batch);
  const size_t layers = model.layers.size();
  const BufferSizes b = buffer_sizes();
  grads_.assign(model.arena_size, 0.0f);
  opt_m_.assign(model.arena_size, 0.0f);
  opt_v_.assign(model.arena_size, 0.0f);
  batch_index_.resize(n);
  labels_.resize(n);
  act_.resize(layers + 1);
  dact_.resize(layers + 1);
  col_.resize(layers);
  argmax_.resize(layers);
  for (size_t i = 0; i <= layers; ++i) {
    act_[i].resize(b.act[i]);
    dact_[i].resize(b.act[i]);
  }
  for (size_t i = 0; i < layers; ++i) {
    col_[i].resize(b.col[i]);
    argmax_[i].resize(b.argmax[i]);
  }
  pre_.resize(b.pre);
  dcol_.resize(b.dcol);
}

std::vector<float>& CpuBackend::arena(Arena which) {
  switch (which) {
    case Arena::Params: return params_;
    case Arena::Grads: return grads_;
    case Arena::OptimizerM: return opt_m_;
    case Arena::OptimizerV: return opt_v_;
  }
  throw std::logic_error("unknown arena");
}

void CpuBackend::set_arena(Arena which, const std::vector<float>& values) {
  CONVNET_CHECK(values.size() == model_.arena_size, "arena size mismatch");
  arena(which) = values;
}

// The CPU step takes its batch position as an argument (train_step's begin), so the cursor is only
// checked here; the GPU keeps it in device memory.
void CpuBackend::set_order(const std::vector<int32_t>& order, int cursor) {
  CONVNET_CHECK(cursor >= 0 && static_cast<size_t>(cursor) <= order.size(), "cursor outside the sample order");
  order_ = order;
}

int CpuBackend::add_images(const ImageSet& set) {
  sets_.push_back(set);
  return static_cast<int>(sets_.size()) - 1;
}

// Gather the batch and normalise x / 255 into act_[0]; labels into labels_.
void CpuBackend::load_batch(int set, const int32_t* indices, int count) {
  CONVNET_CHECK(set >= 0 && set < static_cast<int>(sets_.size()), "unknown image set");
  CONVNET_CHECK(count > 0 && count <= config_.max_batch, "batch larger than the backend's capacity");
  const ImageSet& s = sets_[static_cast<size_t>(set)];
  for (int b = 0; b < count; ++b)
    CONVNET_CHECK(indices[b] >= 0 && indices[b] < s.count, "sample index out of range");
  // The same normalisation code as the GPU's twin (gather_batch_cpu is what its kernel is tested against).
  gather_batch_cpu(s.images.data(), s.labels.data(), indices, 0, count, act_[0].data(), labels_.data());
}

XentResult CpuBackend::forward(int n, bool training, float* probs) {
  for (size_t i = 0; i < model_.layers.size(); ++i) {
    const Layer& l = model_.layers[i];
    const float* in = act_[i].data();
    float* out = act_[i + 1].data();
    const size_t out_n = static_cast<size_t>(n) * l.out.size();
    switch (l.spec.kind) {
      case LayerKind::Conv:
        conv_forward_cpu(in, param(l.weight), param(l.bias), col_[i].data(), pre_.data(), out, n, l.in.c, l.in.h,
                         l.in.w, l.spec.kernel, l.out.c);
        break;
      case LayerKind::Pool:
        maxpool_forward_cpu(in, out, argmax_[i].data(), n * l.in.c, l.in.h, l.in.w);
        break;
      case LayerKind::Flatten:
        std::memcpy(out, in, out_n * sizeof(float));
        break;
      case LayerKind::Dropout:
        if (training)
          dropout_forward_cpu(in, out, out_n, l.spec.rate, config_.seed, static_cast<uint64_t>(step_),
                              static_cast<uint32_t>(i));
        else
          std::memcpy(out, in, out_n * sizeof(float));
        break;
      case LayerKind::Dense:
        dense_forward_cpu(in, param(l.weight), param(l.bias), out, n, l.in.c, l.out.c);
        if (l.spec.relu) relu_forward_cpu(out, out_n);
        break;
    }
  }
  return softmax_xent_cpu(act_.back().data(), labels_.data(), dact_.back().data(), probs, n, kNumClasses);
}

void CpuBackend::backward(int n) {
  for (size_t i = model_.layers.size(); i-- > 0;) {
    const Layer& l = model_.layers[i];
    float* dy = dact_[i + 1].data();
    float* dx = i == 0 ? nullptr : dact_[i].data();  // the input image needs no gradient
    const size_t out_n = static_cast<size_t>(n) * l.out.size();
    switch (l.spec.kind) {
      case LayerKind::Conv:
        conv_backward_cpu(col_[i].data(), param(l.weight), act_[i + 1].data(), dy, pre_.data(), dcol_.data(),
                          grad(l.weight), grad(l.bias), dx, n, l.in.c, l.in.h, l.in.w, l.spec.kernel, l.out.c);
        break;
      case LayerKind::Pool:
        if (dx) maxpool_backward_cpu(dy, argmax_[i].data(), dx, n * l.in.c, l.in.h, l.in.w);
        break;
      case LayerKind::Flatten:
        if (dx) std::memcpy(dx, dy, out_n * sizeof(float));
        break;
      case LayerKind::Dropout:
        if (dx)
          dropout_backward_cpu(dy, dx, out_n, l.spec.rate, config_.seed, static_cast<uint64_t>(step_),
                               static_cast<uint32_t>(i));
        break;
      case LayerKind::Dense:
        if (l.spec.relu) relu_backward_cpu(act_[i + 1].data(), dy, dy, out_n);
        dense_backward_cpu(act_[i].data(), param(l.weight), dy, grad(l.weight), grad(l.bias), dx, n, l.in.c,
                           l.out.c);
        break;
    }
  }
}

void CpuBackend::update() {
  const OptimizerConfig& o = config_.optimizer;
  if (o.kind == "adam")
    adam_update_cpu(params_.data(), grads_.data(), opt_m_.data(), opt_v_.data(), params_.size(), o.lr, o.beta1,
                    o.beta2, o.eps, step_ + 1);
  else
    sgd_update_cpu(params_.data(), grads_.data(), opt_m_.data(), params_.size(), o.lr, o.momentum, o.nesterov);
}

void CpuBackend::train_step(int set, int begin, int count) {
  CONVNET_CHECK(begin >= 0 && count > 0 && static_cast<size_t>(begin) + count <= order_.size(),
                "batch outside the sample order");
  load_batch(set, order_.data() + begin, count);
  XentResult r = forward(count, true, nullptr);
  train_metrics_.loss_sum += r.loss_sum;
  train_metrics_.correct += r.correct;
  train_metrics_.count += count;
  backward(count);
  finite_check_cpu(grads_.data(), grads_.size(), &train_metrics_.loss_sum, step_, &fault_);
  update();
  ++step_;
}

void CpuBackend::eval_batch(int set, int first, int count, float* probs) {
  CONVNET_CHECK(count > 0 && count <= config_.max_batch, "batch larger than the backend's capacity");
  for (int b = 0; b < count; ++b) batch_index_[static_cast<size_t>(b)] = first + b;
  load_batch(set, batch_index_.data(), count);
  XentResult r = forward(count, false, probs);
  eval_metrics_.loss_sum += r.loss_sum;
  eval_metrics_.correct += r.correct;
  eval_metrics_.count += count;
}

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const Model& model, const BackendConfig& config) {
  if (config.optimizer.kind != "adam" && config.optimizer.kind != "sgd")
    throw UsageError("--optimizer: unknown optimizer '" + config.optimizer.kind + "' (expected adam or sgd)");
  return std::make_unique<CpuBackend>(model, config);
}

}  // namespace convnet
