// Launchers of the fused backward pass and the one-launch optimiser step (issue #6), in plain C++.
//
// The backward pass of the seed network conv32-pool-conv64-pool-conv64-pool-flatten-dropout0.6-dense10
// becomes, after the head (kernels/fused_forward.h: dropout + dense + softmax-CE + their gradients + dh):
//   conv_epilogue_backward (conv3, from dh)   GEMM dW3   GEMM dcol3
//   conv_epilogue_backward (conv2, from dcol3) GEMM dW2  GEMM dcol2
//   conv_input_backward    (conv1, from dcol2)           one launch, dW1 and db1 included
//   adam_step / sgd_step                                 finite check + update + step advance
// The per-layer kernels of kernels/kernels.h stay: they are the path for architectures this plan does
// not cover.
//
// Layouts (host/cpu_layers.h): a conv block is conv (valid, stride 1) + bias + ReLU [+ 2x2 max-pool].
//   conv output / dpre   (OC, N*OH*OW)   row oc, column n*OH*OW + oh*OW + ow
//   block output y, dy   (N, OC, YH, YW) YH = OH / 2, YW = OW / 2 with the pool, else OH, OW
//   argmax               (N, OC, YH, YW) int32 flat index into the pre-pool tensor (N, OC, OH, OW),
//                        as maxpool_forward_cpu writes it
//   next layer's dcol    (OC*K*K, N*QH*QW), QH = YH - K + 1, QW = YW - K + 1: the GEMM W^T dpre of the
//                        conv layer that reads y (its im2col rows (c, ki, kj), as im2col_cpu)
// y and argmax are what the forward pass kept; the ReLU mask comes from y (a pooled element's value is
// the value of its window's argmax, so y > 0 there is exactly the pre-pool ReLU output > 0).
//
// Scratch: the conv launchers reduce the bias (and weight) gradients deterministically through
// per-block partial sums in `scratch`; the last block to finish sums them in a fixed order. The first
// 16 bytes of every scratch are a header (a completion counter, the optimiser's fault slot) that must
// be ZERO before the first launch (cudaMemset once, e.g. with the rest of the workspace); every launch
// leaves it zero again, so launches stay replayable in a CUDA Graph, and launches serialised on one
// stream may share one scratch region sized for the largest of them. Scratch must be 16-byte aligned.
// All pointers are device pointers; every launcher makes exactly one launch and never synchronises.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda_fwd.h"
#include "device_state.h"
#include "scratch_header.h"

namespace convnet {

// Where the gradient of a conv block's output y comes from: exactly one of the two.
struct BlockOutputGrad {
  const float* dy = nullptr;         // (N, OC, YH, YW), given directly (the head's dh for the last block)
  const float* next_dcol = nullptr;  // the next conv layer's dcol (OC*K*K, N*QH*QW), summed as col2im does
  int next_K = 0;                    // that layer's kernel size K
};
inline BlockOutputGrad grad_from_dy(const float* dy) { return BlockOutputGrad{dy, nullptr, 0}; }
inline BlockOutputGrad grad_from_next_dcol(const float* dcol, int K) { return BlockOutputGrad{nullptr, dcol, K}; }

// Shape of a conv block's output before the pool: N samples, OC channels, OH x OW; pool: 2x2 max-pool.
struct ConvBlockShape {
  int N, OC, OH, OW;
  bool pool;
};

// ---- conv blocks done by im2col + GEMM (fused_backward.cu) ---------------------------------------
// From the gradient of the block output: [col2im gather] -> max-pool backward -> ReLU backward:
// dpre (OC, N*OH*OW), and db (OC) = row sums of dpre. CPU twin: the composition col2im_cpu ->
// maxpool_backward_cpu -> bias_relu_backward_cpu -> bias_backward_cpu.
void conv_epilogue_backward_gpu(const BlockOutputGrad& grad, const float* y, const int32_t* argmax, float* dpre,
                                float* db, const ConvBlockShape& shape, void* scratch, cudaStream_t stream);
size_t conv_epilogue_backward_scratch_bytes(int OC);

// ---- the first conv layer, C = 1 (fused_backward.cu) ---------------------------------------------
// The same from the gradient of the block output, but dpre is not stored: the weight and bias
// gradients are reduced directly, dw (OC, 1, K, K) = sum over n, oh, ow of dpre * x[n, oh+ki, ow+kj]
// and db (OC) = row sums of dpre. x (N, H, W) is the forward's input (OH = H - K + 1). K in 1..5.
// CPU twin: col2im_cpu -> maxpool_backward_cpu -> conv_backward_cpu's dw and db (dx not needed).
void conv_input_backward_gpu(const float* x, const BlockOutputGrad& grad, const float* y, const int32_t* argmax,
                             float* dw, float* db, int H, int W, int K, const ConvBlockShape& shape, void* scratch,
                             cudaStream_t stream);
size_t conv_input_backward_scratch_bytes(int OC, int K);

// ---- the optimiser step (fused_optimizer.cu) -------------------------------------------------------
// One launch doing finite_check_gpu + adam_update_gpu (resp. sgd_update_gpu) + step_advance_gpu over
// the flat arenas: the update with t = step->step + 1 (Adam), the divergence record into *fault as
// finite_check_gpu writes it (loss: the training DeviceMetrics::loss_sum), then step->step += 1 and
// step->cursor += batch. Arguments as the three launches they replace; n == 0 still records and advances.
void adam_step_gpu(float* p, const float* g, float* m, float* v, size_t n, float lr, float beta1, float beta2,
                   float eps, const double* loss, DeviceStep* step, DeviceFault* fault, int batch, void* scratch,
                   cudaStream_t stream);
void sgd_step_gpu(float* p, const float* g, float* vel, size_t n, float lr, float momentum, bool nesterov,
                  const double* loss, DeviceStep* step, DeviceFault* fault, int batch, void* scratch,
                  cudaStream_t stream);
size_t optimizer_step_scratch_bytes();

}  // namespace convnet
