// Launchers of the fused forward kernels and the fused classifier head, in plain C++ (no CUDA
// syntax): what host/gpu_backend.cpp calls on the fused path (issue #6: a training step of at most 15
// launches). The per-layer kernels of kernels.h stay: they are the path for architectures the fused
// plan does not cover.
//
// Each launcher is the GPU twin of a COMPOSITION of CPU reference functions (host/cpu_layers.h), named
// below; arguments keep the order of those functions, per-step scalars (cursor, step) are device
// pointers (kernels.h explains why), the stream comes last. All pointers are device pointers. Each
// call is exactly one kernel launch (none when n == 0 where that is allowed), made through
// convnet::launch; none allocates or synchronises. Layouts are those of host/cpu_layers.h:
//   x (n, 28*28); conv weight w (OC, C, K, K); conv output and y (N, OC, OH, OW) "NCHW";
//   pre (OC, N*OH*OW); argmax (N, OC, OH/2, OW/2) int32 flat index into the (N, OC, OH, OW) conv output;
//   next_col (OC*next_K*next_K, N*(YH-next_K+1)*(YW-next_K+1)) exactly as im2col_cpu(y) writes it,
//   where YH, YW are y's plane sizes (OH/2, OW/2 with the pool, else OH, OW); dense w (10, F).
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_fwd.h"
#include "device_state.h"

namespace convnet {

// The classifier head's width: dense10 (host/model.h kNumClasses; kernels/ sees no host/).
constexpr int kHeadClasses = 10;

// ---- first convolution (C = 1), straight from the resident u8 images -------------------------------
// CPU twin: gather_batch_cpu -> conv_forward_cpu (C = 1, H = W = 28) -> maxpool_forward_cpu when
// `pool` -> im2col_cpu(y, next_K) when next_col is non-null.
// images (count, 28, 28) u8, labels (count) u8, order (>= *cursor + n): as gather_batch_gpu.
// w (OC, 1, K, K), bias (OC). Writes x (n, 784) (kept for the weight gradient), batch_labels (n),
// y (n, OC, YH, YW), argmax (n, OC, YH, YW) when `pool` (may be null otherwise), next_col when
// non-null. K in [1, 28]; with the pool OH = 29 - K must be >= 2; with next_col YH >= next_K >= 1.
void conv_input_forward_gpu(const uint8_t* images, const uint8_t* labels, const int32_t* order,
                            const int32_t* cursor, int n, const float* w, const float* bias, int OC, int K,
                            bool pool, float* x, uint8_t* batch_labels, float* y, int32_t* argmax,
                            float* next_col, int next_K, cudaStream_t stream);

// ---- epilogue of a convolution done as im2col + GEMM ----------------------------------------------
// CPU twin: bias_relu_forward_cpu(pre, bias, -> (N, OC, OH*OW)) -> maxpool_forward_cpu when `pool`
// -> im2col_cpu(y, next_K) when next_col is non-null. Bit-exact. pre (OC, N*OH*OW), bias (OC);
// y, argmax, next_col as for conv_input_forward_gpu.
void conv_epilogue_forward_gpu(const float* pre, const float* bias, int N, int OC, int OH, int OW, bool pool,
                               float* y, int32_t* argmax, float* next_col, int next_K, cudaStream_t stream);

// ---- classifier head: [flatten] [dropout rate] dense10 + softmax cross-entropy ---------------------
// Bytes of device scratch head_train_gpu / head_eval_gpu need for batches of up to max_batch samples
// of F features. Carve it once, 256-byte aligned. ZERO IT ONCE before the first launch (zeroing the
// whole of it is simplest; only its first kScratchHeaderBytes must be zero: the ScratchHeader of
// kernels/scratch_header.h, whose ticket counts the blocks' arrivals). Every launch leaves the header
// zero again, so launches need no memset between them (CUDA Graph replay);
// everything else in the scratch is written before it is read. Training and evaluation may share
// one scratch: they run in stream order.
size_t head_scratch_bytes(int max_batch, int F);

// One launch. CPU twin: dropout_forward_cpu(h, rate, seed, step->step, layer) -> dense_forward_cpu
// (w, b) -> softmax_xent_cpu(labels) -> dense_backward_cpu -> dropout_backward_cpu.
// h (n, F): the flattened features; rate 0 means no dropout layer (seed and layer are then unused).
// w (10, F), b (10), labels (n) in [0, 10). Writes dw (10, F), db (10) (the batch sums of the
// gradient of the batch MEAN loss), dh (n, F) (the gradient into the head's input), and adds the
// batch's loss sum, correct count and n to *metrics, as softmax_xent_gpu. dw and db are reduced
// in a fixed order: bit-identical run to run. n >= 1, F >= 1, rate in [0, 1).
void head_train_gpu(const float* h, int F, float rate, uint64_t seed, const DeviceStep* step, uint32_t layer,
                    const float* w, const float* b, const uint8_t* labels, int n, DeviceMetrics* metrics,
                    float* dw, float* db, float* dh, void* scratch, cudaStream_t stream);

// One launch, inference (no dropout). CPU twin: dense_forward_cpu -> softmax_xent_cpu. Writes
// probs (n, 10) when non-null and adds loss sum, correct count and n to *metrics.
void head_eval_gpu(const float* h, int F, const float* w, const float* b, const uint8_t* labels, int n,
                   float* probs, DeviceMetrics* metrics, void* scratch, cudaStream_t stream);

}  // namespace convnet
