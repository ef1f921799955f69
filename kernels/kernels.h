// Launchers of the training kernels, in plain C++ (no CUDA syntax): what host/gpu_backend.cpp calls.
//
// Each launcher is the GPU twin of the CPU reference function of the same name in host/cpu_layers.h
// (`<op>_<direction>_cpu`): same arguments in the same order, same layouts, plus the stream last.
// All pointers are device pointers. Every launcher computes its grid, launches on `stream` through
// convnet::launch (kernels/launch.h) and checks the launch; none allocates or synchronises.
//
// Per-step scalars live in DEVICE memory (DeviceStep below) rather than in kernel arguments, so one
// training step is the same sequence of launches with the same arguments every time: it can be
// captured once into a CUDA Graph and replayed. Where a CPU twin takes such a scalar by value, the
// GPU launcher takes a pointer to it; that is the one deliberate difference in argument lists.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_fwd.h"
#include "device_state.h"
#include "dropout.h"

namespace convnet {

// ---- input (gather.cu) -----------------------------------------------------------------------------
// x (n, 784) = images[order[*cursor + b]] / 255 and batch_labels (n) = labels[order[*cursor + b]].
// images (count, 28, 28) u8 and labels (count) u8 are the whole resident set; order (>= *cursor + n).
void gather_batch_gpu(const uint8_t* images, const uint8_t* labels, const int32_t* order, const int32_t* cursor,
                      int n, float* x, uint8_t* batch_labels, cudaStream_t stream);
// step->step += 1; step->cursor += batch. One thread.
void step_advance_gpu(DeviceStep* step, int batch, cudaStream_t stream);

// ---- convolution pieces (im2col.cu, bias_relu.cu) ---------------------------------------------------
void im2col_gpu(const float* x, float* col, int N, int C, int H, int W, int K, cudaStream_t stream);
void col2im_gpu(const float* dcol, float* dx, int N, int C, int H, int W, int K, cudaStream_t stream);
void bias_relu_forward_gpu(const float* pre, const float* bias, float* y, int N, int OC, int P, cudaStream_t stream);
void bias_relu_backward_gpu(const float* y, const float* dy, float* dpre, int N, int OC, int P, cudaStream_t stream);
// dbias (R) = row sums of d (R, M): one block per row, fixed-order tree: deterministic.
void bias_backward_gpu(const float* d, float* dbias, int R, int M, cudaStream_t stream);

// ---- dense pieces (bias_relu.cu) --------------------------------------------------------------------
// y (N, O) += b (O) broadcast over rows (the GEMM wrote x w^T). CPU twin: part of dense_forward_cpu.
void dense_bias_forward_gpu(float* y, const float* b, int N, int O, cudaStream_t stream);
// db (O) = column sums of dy (N, O), fixed order: deterministic. CPU twin: part of dense_backward_cpu.
void dense_bias_backward_gpu(const float* dy, float* db, int N, int O, cudaStream_t stream);
void relu_forward_gpu(float* x, size_t n, cudaStream_t stream);
void relu_backward_gpu(const float* y, const float* dy, float* dx, size_t n, cudaStream_t stream);

// ---- pooling (maxpool.cu) ---------------------------------------------------------------------------
void maxpool_forward_gpu(const float* x, float* y, int32_t* argmax, int NC, int H, int W, cudaStream_t stream);
void maxpool_backward_gpu(const float* dy, const int32_t* argmax, float* dx, int NC, int H, int W,
                          cudaStream_t stream);

// ---- loss (softmax_xent.cu) -------------------------------------------------------------------------
// Fused softmax + cross-entropy forward and backward, as softmax_xent_cpu. dlogits and probs may each
// be null (evaluation needs no gradient). Adds the batch's loss sum, correct count and N to *metrics.
void softmax_xent_gpu(const float* logits, const uint8_t* labels, float* dlogits, float* probs, int N, int C,
                      DeviceMetrics* metrics, cudaStream_t stream);

// ---- divergence check (finite_check.cu), one launch per training step -----------------------------
// Unless *fault already holds an earlier step's record: when *loss (the training DeviceMetrics'
// loss_sum) or any of g (n) (the gradient arena) is NaN or Inf, records step->step, the smallest flat
// index of a non-finite gradient and what the loss was into *fault (DeviceFault, device_state.h).
void finite_check_gpu(const float* g, size_t n, const double* loss, const DeviceStep* step, DeviceFault* fault,
                      cudaStream_t stream);

// ---- optimisers (optimizer.cu), one launch over the whole flat arena --------------------------------
// Adam with t = step->step + 1 read on the device; lr_t computed in double as adam_update_cpu does.
void adam_update_gpu(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
                     float eps, const DeviceStep* step, cudaStream_t stream);
void sgd_update_gpu(float* p, const float* g, float* vel, size_t n, float lr, float momentum, bool nesterov,
                    cudaStream_t stream);

}  // namespace convnet
