// CPU reference layers: the specification every CUDA kernel is tested against.
//
// Plain loops that are obviously right (GEMMs go to CBLAS), reductions accumulated in double, no
// fast-math. Each function takes the same arguments in the same order as its GPU twin
// (`<op>_<direction>_gpu` in kernels/). Templated on the scalar type and instantiated for float (the
// trainer) and double (the central-difference gradient checks in tests/).
//
// Layouts (row-major everywhere):
//   activations          x, y        (N, C, H, W)           "NCHW"
//   im2col buffer        col         (C*K*K, N*OH*OW)       row r = (c*K + ki)*K + kj,
//                                                           column = n*OH*OW + oh*OW + ow
//   conv GEMM output     pre         (OC, N*OH*OW)          "CNHW": one GEMM for the whole batch
//   conv weight          w           (OC, C, K, K)  ==  (OC, C*K*K)
//   dense weight         w           (O, I)          (Keras stores (I, O); ours is its transpose)
//   pool argmax          argmax      (N, C, OH, OW)  int32 flat index into the pool's input tensor
// Convolution is valid padding, stride 1: OH = H - K + 1. Max-pool is 2x2 stride 2, floor: OH = H / 2;
// ties pick the first maximum in row-major window order. Dense y = x w^T + b.
#pragma once

#include <cstddef>
#include <cstdint>

#include "device_state.h"

namespace convnet {

// x (n, 784) = images[order[cursor + b]] / 255 as float; batch_labels[b] = labels[order[cursor + b]].
void gather_batch_cpu(const uint8_t* images, const uint8_t* labels, const int32_t* order, int32_t cursor, int n,
                      float* x, uint8_t* batch_labels);

// Row-major C (M, N) = alpha * op(A) op(B) + beta * C, with op(A) (M, K) and op(B) (K, N).
// trans_a: A is stored (K, M); trans_b: B is stored (N, K). CBLAS sgemm / dgemm.
template <typename T>
void gemm_cpu(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, const T* B, T beta,
              T* C);

// x (N, C, H, W) -> col (C*K*K, N*OH*OW).
template <typename T>
void im2col_cpu(const T* x, T* col, int N, int C, int H, int W, int K);

// Gather form of col2im: dx[n,c,h,w] = sum of the dcol entries that im2col copied x[n,c,h,w] into.
// dcol (C*K*K, N*OH*OW) -> dx (N, C, H, W), every element written (no accumulation into dx).
template <typename T>
void col2im_cpu(const T* dcol, T* dx, int N, int C, int H, int W, int K);

// pre (OC, N*P) + bias (OC), ReLU, transposed to y (N, OC, P).  P = OH*OW.
template <typename T>
void bias_relu_forward_cpu(const T* pre, const T* bias, T* y, int N, int OC, int P);

// Backward of bias_relu_forward: dpre (OC, N*P) = dy (N, OC, P) * [y > 0], transposed back.
template <typename T>
void bias_relu_backward_cpu(const T* y, const T* dy, T* dpre, int N, int OC, int P);

// dbias (R) = row sums of d (R, M), accumulated in double. Used for conv (R=OC, M=N*P) bias grads.
template <typename T>
void bias_backward_cpu(const T* d, T* dbias, int R, int M);

// Elementwise ReLU in place on n values, and its backward dx = dy * [y > 0] (dense hidden layers);
// dx may be dy (in place). NaN stays NaN through ReLU so the trainer's divergence check sees it.
template <typename T>
void relu_forward_cpu(T* x, size_t n);
template <typename T>
void relu_backward_cpu(const T* y, const T* dy, T* dx, size_t n);

// Full convolution layer built from the pieces above.
//   forward:  col = im2col(x); pre = w (OC, CKK) * col; y = relu(pre + b) as NCHW.
//   backward: dpre = relu'(dy); dw = dpre * col^T; db = rowsum(dpre); dcol = w^T * dpre;
//             dx = col2im(dcol) (skipped when dx is null: the first layer needs no input gradient).
// col (C*K*K, N*P) and pre/dpre (OC, N*P) are caller-provided workspaces.
template <typename T>
void conv_forward_cpu(const T* x, const T* w, const T* b, T* col, T* pre, T* y, int N, int C, int H,
                      int W, int K, int OC);
template <typename T>
void conv_backward_cpu(const T* col, const T* w, const T* y, const T* dy, T* dpre, T* dcol, T* dw,
                       T* db, T* dx, int N, int C, int H, int W, int K, int OC);

// Max-pool 2x2 stride 2 (floor). x (N*C planes of H x W) -> y (N*C, H/2, W/2), argmax as above.
template <typename T>
void maxpool_forward_cpu(const T* x, T* y, int32_t* argmax, int NC, int H, int W);
// Gather: dx[i] = dy[o] if argmax[o] == i for the window o containing i, else 0. Writes all of dx.
template <typename T>
void maxpool_backward_cpu(const T* dy, const int32_t* argmax, T* dx, int NC, int H, int W);

// Inverted dropout over n values: y = x / (1 - rate) where dropout_keep(seed, step, layer, i, rate),
// else 0 (kernels/rng.h). backward: dx = dy / (1 - rate) where kept, else 0 (mask recomputed).
template <typename T>
void dropout_forward_cpu(const T* x, T* y, size_t n, float rate, uint64_t seed, uint64_t step,
                         uint32_t layer);
template <typename T>
void dropout_backward_cpu(const T* dy, T* dx, size_t n, float rate, uint64_t seed, uint64_t step,
                          uint32_t layer);

// Dense: y (N, O) = x (N, I) w^T + b.  Backward: dw (O, I) = dy^T x; db (O) = column sums of dy
// (double); dx (N, I) = dy w (skipped when dx is null).
template <typename T>
void dense_forward_cpu(const T* x, const T* w, const T* b, T* y, int N, int I, int O);
template <typename T>
void dense_backward_cpu(const T* x, const T* w, const T* dy, T* dw, T* db, T* dx, int N, int I, int O);

// Softmax + categorical cross-entropy, forward and backward fused, from logits via log-sum-exp.
// logits (N, C), labels (N) in [0, C). Writes dlogits (N, C) = (softmax - onehot) / N (gradient of the
// batch MEAN loss); probs (N, C) is written when non-null. Returns the SUM of per-sample losses and the
// number of samples whose first arg-max equals the label.
struct XentResult {
  double loss_sum = 0.0;
  int64_t correct = 0;
};
template <typename T>
XentResult softmax_xent_cpu(const T* logits, const uint8_t* labels, T* dlogits, T* probs, int N, int C);

// Optimisers over a flat arena of n parameters, Keras semantics.
// Adam (Keras' epsilon-hat form), step t >= 1:
//   lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t); m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2);
//   p -= lr_t * m / (sqrt(v) + eps)
template <typename T>
void adam_update_cpu(T* p, const T* g, T* m, T* v, size_t n, float lr, float beta1, float beta2, float eps,
                     int64_t t);
// SGD with momentum: vel = momentum * vel - lr * g; p += vel (Nesterov: p += momentum * vel - lr * g).
// momentum 0 is plain SGD.
template <typename T>
void sgd_update_cpu(T* p, const T* g, T* vel, size_t n, float lr, float momentum, bool nesterov);

// The divergence check of a training step (GPU twin finite_check_gpu, kernels/finite_check.cu), with
// the step by value: unless *fault already holds an earlier step's record, when *loss (the training
// loss accumulator) or any of g (n) (the gradient arena) is NaN or Inf, records step, the smallest
// flat index of a non-finite gradient ((i << 1) | inf) and what the loss was.
void finite_check_cpu(const float* g, size_t n, const double* loss, int64_t step, DeviceFault* fault);

}  // namespace convnet
