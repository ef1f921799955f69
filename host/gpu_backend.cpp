// The CUDA backend: the training step as a list of kernel launches and cuBLAS GEMMs.
//
// Memory (STYLE.md): one allocation each for parameters, gradients, optimiser state (m and v) and
// activations + workspace, all made when the backend is created; the resident image sets and the
// sample-order buffer are allocated by add_images, outside any step. A step allocates nothing and
// never waits for the device: its per-step scalars (step count, batch cursor) live in device memory
// (kernels/device_state.h), loss and accuracy accumulate on the device and are read back by
// take_*_metrics once per epoch. The launch sequence of a step is therefore identical every step.
// Divergence: after backward, one finite_check_gpu launch records the first NaN/Inf loss or gradient
// in a DeviceFault on the device; numeric_fault() reads it where the trainer synchronises anyway.
//
// Two ways to run a step. Fused (BackendConfig::fused, on by default, for the models host/fused_plan.h
// covers, the presets among them): a conv block is one or two fused launches around a cuBLAS GEMM, the
// classifier head one launch, the optimiser + divergence check + step advance one launch
// (kernels/fused_forward.h, fused_backward.h): 14 launches for the seed network instead of 40.
// Layer by layer (every other model, or --fusion off): the per-layer kernels of kernels/kernels.h.
// Both are tested against the CPU reference; the fused one also against the layered one.
//
// CUDA graphs (BackendConfig::graphs, on by default): because a step is the same launch sequence with
// the same arguments every time, train_step captures it once per (image set, batch count) into a graph
// and then replays it with one cudaGraphLaunch; eval_batch likewise. What a capture needs and why the
// backend's calls are legal in one: host/gpu_graph.h. Why each call that writes device state outside a
// step leaves the graphs valid: the comment above GpuBackend::add_images.
//
// NVTX ranges (host/gpu_profile.h) name the train step, the evaluation batch, each layer's forward
// and backward ("conv2d_1 forward") and the optimiser for Nsight; they cost nothing without a tool.
//
// The same file is compiled for the real GPU (convnet_gpu) and, with CONVNET_SIMT, against the
// CUDA-on-CPU simulator and the cuBLAS shim, so the whole backend trains in CI.
#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "backend.h"
#include "cuda_check.h"
#include "errors.h"
#include "gpu_blas.h"
#include "gpu_buffer.h"
#include "fused_backward.h"
#include "fused_forward.h"
#include "fused_plan.h"
#include "gpu_graph.h"
#include "gpu_profile.h"
#include "kernels.h"
#include "launch_observer.h"

namespace convnet {
namespace {

// Carves one device allocation into aligned pieces: plan() sizes, then assign() hands out pointers.
class Carver {
 public:
  template <typename T>
  size_t reserve(size_t count) {
    size_t at = (size_ + 255) / 256 * 256;
    size_ = at + count * sizeof(T);
    return at;
  }
  size_t size() const { return size_; }

 private:
  size_t size_ = 0;
};

struct ResidentSet {
  DeviceBuffer<uint8_t> images, labels;
  int count = 0;
};

class GpuBackend final : public Backend {
 public:
  GpuBackend(const Model& model, const BackendConfig& config);
  ~GpuBackend() override;

  std::string describe() const override {
    return description_ + (plan_ ? ", fused kernels" : ", per-layer kernels") + (use_graphs() ? ", CUDA graphs" : "");
  }
  int add_images(const ImageSet& set) override;
  void set_order(const std::vector<int32_t>& order, int cursor = 0) override;
  void train_step(int set, int begin, int count) override;
  void eval_batch(int set, int first, int count, float* probs) override;
  Metrics take_train_metrics() override { return take_metrics(0); }
  Metrics take_eval_metrics() override { return take_metrics(1); }
  void set_train_metrics(const Metrics& metrics) override;
  std::vector<float> get_arena(Arena which) const override;
  void set_arena(Arena which, const std::vector<float>& values) override;
  int64_t step() const override { return step_; }
  void set_step(int64_t step) override;
  std::optional<NumericFault> numeric_fault() override;

 private:
  void setup();
  void destroy_handles();
  // Graphs are off with --sync-launches (its synchronisation after every launch is illegal in a
  // capture) and while a launch observer is installed (--timing records events around each launch; in
  // a capture they would become graph nodes, timed once at capture instead of at every step).
  bool use_graphs() const { return config_.graphs && !sync_launches() && launch_observer() == nullptr; }
  void enqueue_train_step(const ResidentSet& r, int count);
  void enqueue_eval_batch(const ResidentSet& r, int count, bool with_probs);
  void plan_workspace();
  float* arena_ptr(Arena which) const;
  const float* param(int index) const { return index < 0 ? nullptr : params_.get() + model_.params[index].offset; }
  float* grad(int index) const { return index < 0 ? nullptr : grads_.get() + model_.params[index].offset; }
  const ResidentSet& resident(int set) const;
  void forward(int n, bool training, float* probs_out);
  void backward(int n);
  void forward_fused(const ResidentSet& r, const int32_t* order, const int32_t* cursor, int n, bool training,
                     float* probs_out);
  void backward_fused(int n);
  void optimizer_step_fused(int n);
  Metrics take_metrics(int which);

  Model model_;
  BackendConfig config_;
  std::string description_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;

  DeviceBuffer<float> params_, grads_, opt_state_;  // opt_state_: m then v
  DeviceBuffer<unsigned char> workspace_;
  std::vector<ResidentSet> sets_;
  DeviceBuffer<int32_t> indices_;  // [0, capacity): the epoch's order; [capacity, 2 capacity): 0, 1, 2, ...
  int index_capacity_ = 0;

  // Pointers into workspace_ (act_[i]: input of layer i; act_[L]: logits; dact_ alike).
  std::vector<float*> act_, dact_, col_;
  std::vector<int32_t*> argmax_;
  float *pre_ = nullptr, *dcol_ = nullptr, *probs_ = nullptr;
  uint8_t* batch_labels_ = nullptr;
  DeviceStep* step_state_ = nullptr;
  int32_t* eval_cursor_ = nullptr;
  DeviceMetrics* metrics_ = nullptr;  // [0] training, [1] evaluation
  DeviceFault* fault_ = nullptr;      // the first non-finite loss or gradient (finite_check_gpu)
  void* blas_workspace_ = nullptr;    // cuBLAS's workspace (cublasSetWorkspace), part of workspace_
  std::optional<FusedPlan> plan_;     // the fused plan, or nullopt: layer by layer
  void* fused_scratch_ = nullptr;     // the fused backward and optimiser kernels' reductions (zeroed once)
  void* head_scratch_ = nullptr;      // the fused head's reductions (zeroed once)
  size_t blas_workspace_bytes_ = 0;

  StepGraphs graphs_;                  // captured steps: train (set, count) and eval (set, count, probs)
  PinnedBuffer<int32_t> eval_first_;   // eval_batch's `first`, read by the (captured) copy to eval_cursor_

  int64_t step_ = 0;   // host mirror of step_state_->step
  int32_t cursor_ = 0; // host mirror of step_state_->cursor
  int order_size_ = 0;
};

std::string device_description() {
  int device = 0, runtime = 0, driver = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  char buf[512];
  std::snprintf(buf, sizeof buf, "gpu %d: %s, %d SMs, %.1f GiB, compute %d.%d, driver %d.%d, runtime %d.%d", device,
                p.name, p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1 << 30), p.major, p.minor,
                driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
  return buf;
}

// The workspace cuBLAS recommends for cublasSetWorkspace: 32 MiB on Hopper and later, 4 MiB before.
size_t cublas_workspace_bytes() {
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  return size_t{p.major >= 9 ? 32u : 4u} << 20;
}

GpuBackend::GpuBackend(const Model& model, const BackendConfig& config)
    : model_(model),
      config_(config),
      description_(device_description()),
      params_(model.arena_size, "parameters"),
      grads_(model.arena_size, "gradients"),
      opt_state_(2 * model.arena_size, "optimizer state"),
      plan_(config.fused ? fused_plan(model, config.max_batch) : std::nullopt) {
  // A constructor that throws (out of device memory for the workspace: a clear ResourceError) runs
  // no destructor: release the stream and cuBLAS handle here, as the destructor would.
  try {
    setup();
  } catch (...) {
    destroy_handles();
    throw;
  }
}

// The constructor's work after the arenas: handles, workspace, initial parameters.
void GpuBackend::setup() {
  CUDA_CHECK(cudaStreamCreate(&stream_));
  CUBLAS_CHECK(cublasCreate(&blas_));
  CUBLAS_CHECK(cublasSetStream(blas_, stream_));
  // Strict FP32 unless asked: results then compare tightly with the CPU reference.
  CUBLAS_CHECK(cublasSetMathMode(blas_, config_.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
  if (config_.tf32) description_ += ", TF32 GEMMs";
  blas_workspace_bytes_ = cublas_workspace_bytes();
  plan_workspace();
  // After cublasSetStream, which resets the workspace to cuBLAS's default pool: with a workspace of its
  // own the handle never allocates one while a step is being captured (host/gpu_graph.h).
  CUBLAS_CHECK(cublasSetWorkspace(blas_, blas_workspace_, blas_workspace_bytes_));
  eval_first_ = PinnedBuffer<int32_t>(1, "evaluation cursor");
  std::vector<float> init = init_params(model_, config_.seed);
  CUDA_CHECK(cudaMemcpy(params_.get(), init.data(), init.size() * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemset(grads_.get(), 0, grads_.size() * sizeof(float)));
  CUDA_CHECK(cudaMemset(opt_state_.get(), 0, opt_state_.size() * sizeof(float)));
}

GpuBackend::~GpuBackend() {
  graphs_.clear();  // before the handles: the graphs refer to buffers and work on the stream
  destroy_handles();
}

void GpuBackend::destroy_handles() {
  if (blas_) cublasDestroy(std::exchange(blas_, nullptr));
  if (stream_) cudaStreamDestroy(std::exchange(stream_, nullptr));
}

// Sizes every activation, gradient and workspace tensor for max_batch samples, makes the one
// allocation, then hands out the pointers. A flatten layer's output aliases its input.
void GpuBackend::plan_workspace() {
  const size_t n = static_cast<size_t>(config_.max_batch);
  const size_t layers = model_.layers.size();
  Carver c;
  std::vector<size_t> act(layers + 1), dact(layers + 1), col(layers, SIZE_MAX), argmax(layers, SIZE_MAX);
  act[0] = c.reserve<float>(n * model_.layers[0].in.size());
  dact[0] = c.reserve<float>(n * model_.layers[0].in.size());
  size_t pre = 0, dcol = 0;
  for (size_t i = 0; i < layers; ++i) {
    const Layer& l = model_.layers[i];
    if (l.spec.kind == LayerKind::Flatten) {
      act[i + 1] = act[i];
      dact[i + 1] = dact[i];
      continue;
    }
    act[i + 1] = c.reserve<float>(n * l.out.size());
    dact[i + 1] = c.reserve<float>(n * l.out.size());
    if (l.spec.kind == LayerKind::Conv) {
      size_t rows = static_cast<size_t>(l.in.c) * l.spec.kernel * l.spec.kernel, cols = n * l.out.h * l.out.w;
      col[i] = c.reserve<float>(rows * cols);
      dcol = std::max(dcol, rows * cols);
      pre = std::max(pre, static_cast<size_t>(l.out.c) * cols);
    } else if (l.spec.kind == LayerKind::Pool) {
      argmax[i] = c.reserve<int32_t>(n * l.out.size());
    }
  }
  const size_t pre_at = c.reserve<float>(pre), dcol_at = c.reserve<float>(dcol);
  const size_t probs_at = c.reserve<float>(n * kNumClasses), labels_at = c.reserve<uint8_t>(n);
  const size_t step_at = c.reserve<DeviceStep>(1), cursor_at = c.reserve<int32_t>(1);
  const size_t metrics_at = c.reserve<DeviceMetrics>(2), fault_at = c.reserve<DeviceFault>(1);
  const size_t blas_at = c.reserve<unsigned char>(blas_workspace_bytes_);  // 256-byte aligned, as cuBLAS asks
  size_t fused_bytes = 0, head_bytes = 0;
  if (plan_) {  // one region for all backward launches and the optimiser: they run in stream order
    const FusedConvBlock& b0 = plan_->blocks.front();
    fused_bytes = std::max(optimizer_step_scratch_bytes(), conv_input_backward_scratch_bytes(b0.OC, b0.K));
    for (const FusedConvBlock& b : plan_->blocks) fused_bytes = std::max(fused_bytes, conv_epilogue_backward_scratch_bytes(b.OC));
    head_bytes = head_scratch_bytes(config_.max_batch, plan_->features);
  }
  const size_t fused_at = c.reserve<unsigned char>(fused_bytes), head_at = c.reserve<unsigned char>(head_bytes);

  workspace_ = DeviceBuffer<unsigned char>(c.size(), "activations and workspace");
  CUDA_CHECK(cudaMemset(workspace_.get(), 0, c.size()));
  unsigned char* base = workspace_.get();
  auto f = [base](size_t at) { return reinterpret_cast<float*>(base + at); };
  for (size_t i = 0; i <= layers; ++i) {
    act_.push_back(f(act[i]));
    dact_.push_back(f(dact[i]));
  }
  for (size_t i = 0; i < layers; ++i) {
    col_.push_back(col[i] == SIZE_MAX ? nullptr : f(col[i]));
    argmax_.push_back(argmax[i] == SIZE_MAX ? nullptr : reinterpret_cast<int32_t*>(base + argmax[i]));
  }
  pre_ = f(pre_at);
  dcol_ = f(dcol_at);
  probs_ = f(probs_at);
  batch_labels_ = base + labels_at;
  step_state_ = reinterpret_cast<DeviceStep*>(base + step_at);
  eval_cursor_ = reinterpret_cast<int32_t*>(base + cursor_at);
  metrics_ = reinterpret_cast<DeviceMetrics*>(base + metrics_at);
  fault_ = reinterpret_cast<DeviceFault*>(base + fault_at);
  blas_workspace_ = base + blas_at;
  fused_scratch_ = base + fused_at;  // zero, as the fused kernels need before their first launch
  head_scratch_ = base + head_at;
  const DeviceFault none = no_device_fault();
  CUDA_CHECK(cudaMemcpy(fault_, &none, sizeof none, cudaMemcpyHostToDevice));
}

float* GpuBackend::arena_ptr(Arena which) const {
  switch (which) {
    case Arena::Params: return params_.get();
    case Arena::Grads: return grads_.get();
    case Arena::OptimizerM: return opt_state_.get();
    case Arena::OptimizerV: return opt_state_.get() + model_.arena_size;
  }
  throw std::logic_error("unknown arena");
}

std::vector<float> GpuBackend::get_arena(Arena which) const {
  std::vector<float> out(model_.arena_size);
  CUDA_CHECK(cudaMemcpy(out.data(), arena_ptr(which), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

void GpuBackend::set_arena(Arena which, const std::vector<float>& values) {
  CONVNET_CHECK(values.size() == model_.arena_size, "arena size mismatch");
  CUDA_CHECK(cudaMemcpy(arena_ptr(which), values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice));
}

void GpuBackend::set_step(int64_t step) {
  CUDA_CHECK(cudaMemcpy(&step_state_->step, &step, sizeof step, cudaMemcpyHostToDevice));
  step_ = step;
}

// The graphs bake in every pointer and scalar of the steps they captured. The calls that write device
// state outside a step, and why each leaves them valid:
//   set_arena, set_step, set_train_metrics, take_*_metrics, set_order: they change the CONTENTS of
//     buffers allocated once (arenas, DeviceStep, DeviceMetrics, the order in indices_), which the
//     captured kernels read through pointers at every replay; the pointers stay the same.
//   add_images: a new set gets buffers of its own and, being a new set index, graphs of its own
//     (ResidentSet's buffers keep their addresses when sets_ grows). But when it has to reallocate
//     indices_, the order and identity-order pointers of every graph go stale: it drops them all, and
//     the next step of each shape captures anew.
//   The optimiser settings, seed and model are fixed for the backend's life. The grid cap (tests'
//     ScopedGridCap) is read at capture, so a graph keeps the grids of its capture.
int GpuBackend::add_images(const ImageSet& set) {
  CONVNET_CHECK(set.count > 0, "empty image set");
  ResidentSet r;
  r.count = set.count;
  r.images = DeviceBuffer<uint8_t>(set.images.size(), "resident images");
  r.labels = DeviceBuffer<uint8_t>(set.labels.size(), "resident labels");
  CUDA_CHECK(cudaMemcpy(r.images.get(), set.images.data(), set.images.size(), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(r.labels.get(), set.labels.data(), set.labels.size(), cudaMemcpyHostToDevice));
  sets_.push_back(std::move(r));
  if (set.count > index_capacity_) {  // room for an order over this set, and the identity order
    index_capacity_ = set.count;
    indices_ = DeviceBuffer<int32_t>(2 * static_cast<size_t>(set.count), "sample order");
    std::vector<int32_t> iota(static_cast<size_t>(set.count));
    for (int i = 0; i < set.count; ++i) iota[static_cast<size_t>(i)] = i;
    CUDA_CHECK(cudaMemcpy(indices_.get() + set.count, iota.data(), iota.size() * sizeof(int32_t),
                          cudaMemcpyHostToDevice));
    order_size_ = 0;  // a previous order did not survive the reallocation
    graphs_.clear();  // nor did the pointers the graphs captured
  }
  return static_cast<int>(sets_.size()) - 1;
}

const ResidentSet& GpuBackend::resident(int set) const {
  CONVNET_CHECK(set >= 0 && set < static_cast<int>(sets_.size()), "unknown image set");
  return sets_[static_cast<size_t>(set)];
}

// Outside any step: the order and the starting cursor go to the device (DeviceStep::cursor, which
// step_advance_gpu then moves on by itself) and to the host mirror train_step checks calls against.
void GpuBackend::set_order(const std::vector<int32_t>& order, int cursor) {
  CONVNET_CHECK(static_cast<int>(order.size()) <= index_capacity_, "order longer than any resident set");
  CONVNET_CHECK(cursor >= 0 && static_cast<size_t>(cursor) <= order.size(), "cursor outside the sample order");
  CUDA_CHECK(cudaMemcpy(indices_.get(), order.data(), order.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
  const int32_t start = cursor;
  CUDA_CHECK(cudaMemcpy(&step_state_->cursor, &start, sizeof start, cudaMemcpyHostToDevice));
  order_size_ = static_cast<int>(order.size());
  cursor_ = cursor;
}

void GpuBackend::forward(int n, bool training, float* probs_out) {
  const float* in = act_[0];
  for (size_t i = 0; i < model_.layers.size(); ++i) {
    const Layer& l = model_.layers[i];
    NvtxRange range(l.name, "forward");
    float* out = act_[i + 1];
    const size_t out_n = static_cast<size_t>(n) * l.out.size();
    switch (l.spec.kind) {
      case LayerKind::Conv: {
        const int P = l.out.h * l.out.w, CKK = l.in.c * l.spec.kernel * l.spec.kernel;
        im2col_gpu(in, col_[i], n, l.in.c, l.in.h, l.in.w, l.spec.kernel, stream_);
        gemm_gpu(blas_, false, false, l.out.c, n * P, CKK, 1.0f, param(l.weight), col_[i], 0.0f, pre_);
        bias_relu_forward_gpu(pre_, param(l.bias), out, n, l.out.c, P, stream_);
        break;
      }
      case LayerKind::Pool:
        maxpool_forward_gpu(in, out, argmax_[i], n * l.in.c, l.in.h, l.in.w, stream_);
        break;
      case LayerKind::Flatten:
        break;  // out aliases in
      case LayerKind::Dropout:
        if (!training) {
          out = const_cast<float*>(in);  // identity at inference: the next layer reads the input
          break;
        }
        dropout_forward_gpu(in, out, out_n, l.spec.rate, config_.seed, &step_state_->step, static_cast<uint32_t>(i),
                            stream_);
        break;
      case LayerKind::Dense:
        gemm_gpu(blas_, false, true, n, l.out.c, l.in.c, 1.0f, in, param(l.weight), 0.0f, out);
        dense_bias_forward_gpu(out, param(l.bias), n, l.out.c, stream_);
        if (l.spec.relu) relu_forward_gpu(out, out_n, stream_);
        break;
    }
    in = out;
  }
  NvtxRange range("softmax_xent");
  softmax_xent_gpu(in, batch_labels_, training ? dact_.back() : nullptr, probs_out, n, kNumClasses,
                   metrics_ + (training ? 0 : 1), stream_);
}

void GpuBackend::backward(int n) {
  for (size_t i = model_.layers.size(); i-- > 0;) {
    const Layer& l = model_.layers[i];
    NvtxRange range(l.name, "backward");
    const float* dy = dact_[i + 1];
    float* dx = i == 0 ? nullptr : dact_[i];  // the input image needs no gradient
    const size_t out_n = static_cast<size_t>(n) * l.out.size();
    switch (l.spec.kind) {
      case LayerKind::Conv: {
        const int P = l.out.h * l.out.w, CKK = l.in.c * l.spec.kernel * l.spec.kernel;
        bias_relu_backward_gpu(act_[i + 1], dy, pre_, n, l.out.c, P, stream_);
        gemm_gpu(blas_, false, true, l.out.c, CKK, n * P, 1.0f, pre_, col_[i], 0.0f, grad(l.weight));
        bias_backward_gpu(pre_, grad(l.bias), l.out.c, n * P, stream_);
        if (dx) {
          gemm_gpu(blas_, true, false, CKK, n * P, l.out.c, 1.0f, param(l.weight), pre_, 0.0f, dcol_);
          col2im_gpu(dcol_, dx, n, l.in.c, l.in.h, l.in.w, l.spec.kernel, stream_);
        }
        break;
      }
      case LayerKind::Pool:
        if (dx) maxpool_backward_gpu(dy, argmax_[i], dx, n * l.in.c, l.in.h, l.in.w, stream_);
        break;
      case LayerKind::Flatten:
        break;  // dx aliases dy
      case LayerKind::Dropout:
        if (dx)
          dropout_backward_gpu(dy, dx, out_n, l.spec.rate, config_.seed, &step_state_->step,
                               static_cast<uint32_t>(i), stream_);
        break;
      case LayerKind::Dense: {
        float* dz = dact_[i + 1];
        if (l.spec.relu) relu_backward_gpu(act_[i + 1], dz, dz, out_n, stream_);
        gemm_gpu(blas_, true, false, l.out.c, l.in.c, n, 1.0f, dz, act_[i], 0.0f, grad(l.weight));
        dense_bias_backward_gpu(dz, grad(l.bias), n, l.out.c, stream_);
        if (dx) gemm_gpu(blas_, false, false, n, l.in.c, l.out.c, 1.0f, dz, param(l.weight), 0.0f, dx);
        break;
      }
    }
  }
}

// ---- the fused plan ---------------------------------------------------------------------------------
// Forward: block 0 from the resident images (it also gathers the batch into act_[0] and batch_labels_,
// kept for conv1's weight gradient and the loss), each later block as GEMM + epilogue; a block that has
// a successor writes that conv's im2col (col_) itself. Then the head: training or inference.
void GpuBackend::forward_fused(const ResidentSet& r, const int32_t* order, const int32_t* cursor, int n, bool training,
                               float* probs_out) {
  const std::vector<FusedConvBlock>& blocks = plan_->blocks;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const FusedConvBlock& k = blocks[b];
    const Layer& conv = model_.layers[static_cast<size_t>(k.conv)];
    NvtxRange range(conv.name, "forward");
    const FusedConvBlock* next = b + 1 < blocks.size() ? &blocks[b + 1] : nullptr;
    float* next_col = next ? col_[static_cast<size_t>(next->conv)] : nullptr;
    const int next_K = next ? next->K : 0;
    float* y = act_[static_cast<size_t>(k.out) + 1];
    int32_t* argmax = k.has_pool() ? argmax_[static_cast<size_t>(k.pool)] : nullptr;
    if (b == 0) {
      conv_input_forward_gpu(r.images.get(), r.labels.get(), order, cursor, n, param(conv.weight), param(conv.bias),
                             k.OC, k.K, k.has_pool(), act_[0], batch_labels_, y, argmax, next_col, next_K, stream_);
      continue;
    }
    const int P = k.OH * k.OW, CKK = k.C * k.K * k.K;
    gemm_gpu(blas_, false, false, k.OC, n * P, CKK, 1.0f, param(conv.weight), col_[static_cast<size_t>(k.conv)], 0.0f,
             pre_);
    conv_epilogue_forward_gpu(pre_, param(conv.bias), n, k.OC, k.OH, k.OW, k.has_pool(), y, argmax, next_col, next_K,
                              stream_);
  }
  const Layer& dense = model_.layers[static_cast<size_t>(plan_->dense)];
  const float* h = act_[static_cast<size_t>(blocks.back().out) + 1];
  NvtxRange range("head");
  if (training) {
    head_train_gpu(h, plan_->features, plan_->rate, config_.seed, step_state_, static_cast<uint32_t>(plan_->dropout),
                   param(dense.weight), param(dense.bias), batch_labels_, n, metrics_, grad(dense.weight),
                   grad(dense.bias), dact_[static_cast<size_t>(blocks.back().out) + 1], head_scratch_, stream_);
  } else {
    head_eval_gpu(h, plan_->features, param(dense.weight), param(dense.bias), batch_labels_, n, probs_out,
                  metrics_ + 1, head_scratch_, stream_);
  }
}

// Backward from the head's dh: each later block (last first) to dpre and db in one launch, then its two
// GEMMs (dW = dpre col^T, dcol = W^T dpre, the col2im of which the block before gathers itself), and
// block 0 straight to its dW and db.
void GpuBackend::backward_fused(int n) {
  const std::vector<FusedConvBlock>& blocks = plan_->blocks;
  const float* dh = dact_[static_cast<size_t>(blocks.back().out) + 1];
  for (size_t b = blocks.size(); b-- > 0;) {
    const FusedConvBlock& k = blocks[b];
    const Layer& conv = model_.layers[static_cast<size_t>(k.conv)];
    NvtxRange range(conv.name, "backward");
    const BlockOutputGrad dy = b + 1 == blocks.size() ? grad_from_dy(dh) : grad_from_next_dcol(dcol_, blocks[b + 1].K);
    const float* y = act_[static_cast<size_t>(k.out) + 1];
    const int32_t* argmax = k.has_pool() ? argmax_[static_cast<size_t>(k.pool)] : nullptr;
    const ConvBlockShape shape{n, k.OC, k.OH, k.OW, k.has_pool()};
    if (b == 0) {
      conv_input_backward_gpu(act_[0], dy, y, argmax, grad(conv.weight), grad(conv.bias), k.H, k.W, k.K, shape,
                              fused_scratch_, stream_);
      break;
    }
    const int P = k.OH * k.OW, CKK = k.C * k.K * k.K;
    const float* col = col_[static_cast<size_t>(k.conv)];
    conv_epilogue_backward_gpu(dy, y, argmax, pre_, grad(conv.bias), shape, fused_scratch_, stream_);
    gemm_gpu(blas_, false, true, k.OC, CKK, n * P, 1.0f, pre_, col, 0.0f, grad(conv.weight));
    gemm_gpu(blas_, true, false, CKK, n * P, k.OC, 1.0f, param(conv.weight), pre_, 0.0f, dcol_);
  }
}

// Divergence check + update + step advance, one launch (the layered path's last three).
void GpuBackend::optimizer_step_fused(int n) {
  NvtxRange range("optimizer");
  const OptimizerConfig& o = config_.optimizer;
  float* m = arena_ptr(Arena::OptimizerM);
  const double* loss = &metrics_[0].loss_sum;
  if (o.kind == "adam")
    adam_step_gpu(params_.get(), grads_.get(), m, arena_ptr(Arena::OptimizerV), model_.arena_size, o.lr, o.beta1,
                  o.beta2, o.eps, loss, step_state_, fault_, n, fused_scratch_, stream_);
  else
    sgd_step_gpu(params_.get(), grads_.get(), m, model_.arena_size, o.lr, o.momentum, o.nesterov, loss, step_state_,
                 fault_, n, fused_scratch_, stream_);
}

void GpuBackend::train_step(int set, int begin, int count) {
  NvtxRange step("train_step");
  const ResidentSet& r = resident(set);
  CONVNET_CHECK(count > 0 && count <= config_.max_batch, "batch larger than the backend's capacity");
  CONVNET_CHECK(begin == cursor_ && begin + count <= order_size_, "batches must follow the order in sequence");
  if (use_graphs())
    graphs_.launch({0, set, count, 0}, stream_, [&] { enqueue_train_step(r, count); });
  else
    enqueue_train_step(r, count);
  cursor_ += count;
  ++step_;
}

// The training step as launches on stream_: the same sequence, with the same arguments, every step of
// `count` samples (the batch position and step count are read from DeviceStep).
void GpuBackend::enqueue_train_step(const ResidentSet& r, int count) {
  if (plan_) {
    forward_fused(r, indices_.get(), &step_state_->cursor, count, true, nullptr);
    backward_fused(count);
    optimizer_step_fused(count);
    return;
  }
  gather_batch_gpu(r.images.get(), r.labels.get(), indices_.get(), &step_state_->cursor, count, act_[0],
                   batch_labels_, stream_);
  forward(count, true, nullptr);
  backward(count);
  finite_check_gpu(grads_.get(), model_.arena_size, &metrics_[0].loss_sum, step_state_, fault_, stream_);
  const OptimizerConfig& o = config_.optimizer;
  float* m = arena_ptr(Arena::OptimizerM);
  {
    NvtxRange update("optimizer");
    if (o.kind == "adam")
      adam_update_gpu(params_.get(), grads_.get(), m, arena_ptr(Arena::OptimizerV), model_.arena_size, o.lr,
                      o.beta1, o.beta2, o.eps, step_state_, stream_);
    else
      sgd_update_gpu(params_.get(), grads_.get(), m, model_.arena_size, o.lr, o.momentum, o.nesterov, stream_);
  }
  step_advance_gpu(step_state_, count, stream_);
}

void GpuBackend::eval_batch(int set, int first, int count, float* probs) {
  NvtxRange batch("eval_batch");
  const ResidentSet& r = resident(set);
  CONVNET_CHECK(count > 0 && count <= config_.max_batch, "batch larger than the backend's capacity");
  CONVNET_CHECK(first >= 0 && first + count <= r.count, "evaluation range outside the image set");
  // Read by the batch's first copy when it runs; the previous eval_batch synchronised, so none of its
  // copies can still be reading the old value.
  *eval_first_.get() = first;
  const bool with_probs = probs != nullptr;
  if (use_graphs())
    graphs_.launch({1, set, count, with_probs ? 1 : 0}, stream_, [&] { enqueue_eval_batch(r, count, with_probs); });
  else
    enqueue_eval_batch(r, count, with_probs);
  if (probs) {  // into the caller's (pageable) memory: outside the graph
    CUDA_CHECK(cudaMemcpyAsync(probs, probs_, static_cast<size_t>(count) * kNumClasses * sizeof(float),
                               cudaMemcpyDeviceToHost, stream_));
  }
  // The probabilities are the caller's once this returns, and eval_first_ is rewritten by the next call.
  CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// Inference on `count` samples from position *eval_first_ of the identity order, on stream_.
void GpuBackend::enqueue_eval_batch(const ResidentSet& r, int count, bool with_probs) {
  CUDA_CHECK(cudaMemcpyAsync(eval_cursor_, eval_first_.get(), sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  if (plan_) return forward_fused(r, indices_.get() + index_capacity_, eval_cursor_, count, false,
                                  with_probs ? probs_ : nullptr);
  gather_batch_gpu(r.images.get(), r.labels.get(), indices_.get() + index_capacity_, eval_cursor_, count, act_[0],
                   batch_labels_, stream_);
  forward(count, false, with_probs ? probs_ : nullptr);
}

Metrics GpuBackend::take_metrics(int which) {
  DeviceMetrics d{};
  CUDA_CHECK(cudaMemcpyAsync(&d, metrics_ + which, sizeof d, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaMemsetAsync(metrics_ + which, 0, sizeof d, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  Metrics m;
  m.loss_sum = d.loss_sum;
  m.correct = d.correct;
  m.count = d.count;
  return m;
}

// Waits for the device: called by the trainer only where it synchronises anyway (backend.h).
std::optional<NumericFault> GpuBackend::numeric_fault() {
  DeviceFault f{};
  CUDA_CHECK(cudaMemcpyAsync(&f, fault_, sizeof f, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return numeric_fault_from(model_, f);
}

void GpuBackend::set_train_metrics(const Metrics& metrics) {
  const DeviceMetrics d{metrics.loss_sum, static_cast<long long>(metrics.correct),
                        static_cast<long long>(metrics.count)};
  CUDA_CHECK(cudaMemcpy(metrics_, &d, sizeof d, cudaMemcpyHostToDevice));
}

}  // namespace

void set_gpu_sync_launches(bool on) { set_sync_launches(on); }

uint64_t gpu_graph_captures() { return step_graph_captures().load(); }

std::unique_ptr<Backend> make_gpu_backend(const Model& model, const BackendConfig& config) {
  if (config.optimizer.kind != "adam" && config.optimizer.kind != "sgd")
    throw UsageError("--optimizer: unknown optimizer '" + config.optimizer.kind + "' (expected adam or sgd)");
  return std::make_unique<GpuBackend>(model, config);
}

}  // namespace convnet
