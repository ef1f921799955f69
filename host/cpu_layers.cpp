// CPU reference layers (declared and documented in cpu_layers.h): the specification the CUDA kernels
// are tested against, and the CPU backend of the trainer.
//
// Plain loops written to be checked by eye; GEMMs go to CBLAS (OpenBLAS). Every sum of more than a
// couple of terms (bias gradients, col2im, log-sum-exp) accumulates in double and is rounded to T
// once. Index arithmetic is done in size_t: the im2col buffer of a 128-image batch has ~4.5M
// entries and larger batches would overflow int products.
//
// Gotchas
//   - ReLU is written `v < 0 ? 0 : v` so a NaN pre-activation stays NaN (std::max(0, NaN) would hide
//     it and the trainer's NaN check would miss a diverged run).
//   - Max-pool compares with `>`, so the first maximum in row-major window order wins ties.
//   - Dropout recomputes the mask from (seed, step, layer, flat index) in backward; no mask is stored.
#include "cpu_layers.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "errors.h"
#include "idx.h"
#include "rng.h"

namespace convnet {
namespace {

// CBLAS gemm with the same signature for both precisions.
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float* A,
                int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, double alpha, const double* A,
                int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
T relu(T v) {
  return v < T(0) ? T(0) : v;
}

void check_dims(int N, int C, int H, int W, int K) {
  CONVNET_CHECK(N >= 0 && C >= 0 && K >= 1 && H >= K && W >= K,
                "conv shape N=" + std::to_string(N) + " C=" + std::to_string(C) + " H=" + std::to_string(H) +
                    " W=" + std::to_string(W) + " K=" + std::to_string(K) + " (need K >= 1, H >= K, W >= K)");
}

void check_rate(float rate) {
  CONVNET_CHECK(rate >= 0.0f && rate < 1.0f, "dropout rate " + std::to_string(rate) + " outside [0, 1)");
}

}  // namespace

void gather_batch_cpu(const uint8_t* images, const uint8_t* labels, const int32_t* order, int32_t cursor, int n,
                      float* x, uint8_t* batch_labels) {
  for (size_t b = 0; b < size_t(n); ++b) {
    const size_t src = size_t(order[size_t(cursor) + b]);
    const uint8_t* img = images + src * kImagePixels;
    for (size_t p = 0; p < size_t(kImagePixels); ++p) x[b * kImagePixels + p] = img[p] / 255.0f;
    batch_labels[b] = labels[src];
  }
}

template <typename T>
void gemm_cpu(bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, const T* B, T beta,
              T* C) {
  CONVNET_CHECK(M >= 0 && N >= 0 && K >= 0, "negative GEMM dimension");
  if (M == 0 || N == 0) return;
  // Leading dimensions of the row-major operands as stored; CBLAS rejects 0 even when K == 0.
  const int lda = std::max(1, trans_a ? M : K);
  const int ldb = std::max(1, trans_b ? K : N);
  cblas_gemm(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
             lda, B, ldb, beta, C, N);
}

template <typename T>
void im2col_cpu(const T* x, T* col, int N, int C, int H, int W, int K) {
  check_dims(N, C, H, W, K);
  const size_t OH = H - K + 1, OW = W - K + 1, P = OH * OW, NP = size_t(N) * P;
  for (size_t c = 0; c < size_t(C); ++c)
    for (size_t ki = 0; ki < size_t(K); ++ki)
      for (size_t kj = 0; kj < size_t(K); ++kj) {
        T* row = col + ((c * K + ki) * K + kj) * NP;
        for (size_t n = 0; n < size_t(N); ++n)
          for (size_t oh = 0; oh < OH; ++oh)
            for (size_t ow = 0; ow < OW; ++ow)
              row[n * P + oh * OW + ow] = x[((n * C + c) * H + oh + ki) * W + ow + kj];
      }
}

template <typename T>
void col2im_cpu(const T* dcol, T* dx, int N, int C, int H, int W, int K) {
  check_dims(N, C, H, W, K);
  const long OH = H - K + 1, OW = W - K + 1;
  const size_t P = size_t(OH) * OW, NP = size_t(N) * P;
  for (long n = 0; n < N; ++n)
    for (long c = 0; c < C; ++c)
      for (long h = 0; h < H; ++h)
        for (long w = 0; w < W; ++w) {
          // x[n,c,h,w] was copied to row (c,ki,kj), column (n, oh=h-ki, ow=w-kj) for every
          // kernel offset that keeps (oh, ow) inside the output.
          double sum = 0.0;
          for (long ki = 0; ki < K; ++ki)
            for (long kj = 0; kj < K; ++kj) {
              const long oh = h - ki, ow = w - kj;
              if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
              sum += dcol[size_t((c * K + ki) * K + kj) * NP + size_t(n) * P + size_t(oh * OW + ow)];
            }
          dx[((size_t(n) * C + c) * H + h) * W + w] = T(sum);
        }
}

template <typename T>
void bias_relu_forward_cpu(const T* pre, const T* bias, T* y, int N, int OC, int P) {
  const size_t NP = size_t(N) * P;
  for (size_t n = 0; n < size_t(N); ++n)
    for (size_t oc = 0; oc < size_t(OC); ++oc)
      for (size_t p = 0; p < size_t(P); ++p)
        y[(n * OC + oc) * P + p] = relu(pre[oc * NP + n * P + p] + bias[oc]);
}

template <typename T>
void bias_relu_backward_cpu(const T* y, const T* dy, T* dpre, int N, int OC, int P) {
  const size_t NP = size_t(N) * P;
  for (size_t n = 0; n < size_t(N); ++n)
    for (size_t oc = 0; oc < size_t(OC); ++oc)
      for (size_t p = 0; p < size_t(P); ++p) {
        const size_t i = (n * OC + oc) * P + p;
        dpre[oc * NP + n * P + p] = y[i] > T(0) ? dy[i] : T(0);
      }
}

template <typename T>
void bias_backward_cpu(const T* d, T* dbias, int R, int M) {
  for (size_t r = 0; r < size_t(R); ++r) {
    double sum = 0.0;
    for (size_t m = 0; m < size_t(M); ++m) sum += d[r * M + m];
    dbias[r] = T(sum);
  }
}

template <typename T>
void relu_forward_cpu(T* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = relu(x[i]);
}

template <typename T>
void relu_backward_cpu(const T* y, const T* dy, T* dx, size_t n) {
  for (size_t i = 0; i < n; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
}

template <typename T>
void conv_forward_cpu(const T* x, const T* w, const T* b, T* col, T* pre, T* y, int N, int C, int H,
                      int W, int K, int OC) {
  const int P = (H - K + 1) * (W - K + 1), CKK = C * K * K;
  im2col_cpu(x, col, N, C, H, W, K);
  gemm_cpu<T>(false, false, OC, N * P, CKK, T(1), w, col, T(0), pre);  // (OC,CKK)(CKK,NP)
  bias_relu_forward_cpu(pre, b, y, N, OC, P);
}

template <typename T>
void conv_backward_cpu(const T* col, const T* w, const T* y, const T* dy, T* dpre, T* dcol, T* dw,
                       T* db, T* dx, int N, int C, int H, int W, int K, int OC) {
  check_dims(N, C, H, W, K);
  const int P = (H - K + 1) * (W - K + 1), CKK = C * K * K;
  bias_relu_backward_cpu(y, dy, dpre, N, OC, P);
  gemm_cpu<T>(false, true, OC, CKK, N * P, T(1), dpre, col, T(0), dw);  // (OC,NP)(NP,CKK)
  bias_backward_cpu(dpre, db, OC, N * P);
  if (dx == nullptr) return;
  gemm_cpu<T>(true, false, CKK, N * P, OC, T(1), w, dpre, T(0), dcol);  // (CKK,OC)(OC,NP)
  col2im_cpu(dcol, dx, N, C, H, W, K);
}

template <typename T>
void maxpool_forward_cpu(const T* x, T* y, int32_t* argmax, int NC, int H, int W) {
  CONVNET_CHECK(size_t(NC) * H * W <= size_t(std::numeric_limits<int32_t>::max()),
                "max-pool input has more elements than an int32 argmax can index");
  const size_t OH = H / 2, OW = W / 2;
  for (size_t pl = 0; pl < size_t(NC); ++pl)
    for (size_t oh = 0; oh < OH; ++oh)
      for (size_t ow = 0; ow < OW; ++ow) {
        size_t best = (pl * H + 2 * oh) * W + 2 * ow;
        for (size_t di = 0; di < 2; ++di)
          for (size_t dj = 0; dj < 2; ++dj) {
            const size_t i = (pl * H + 2 * oh + di) * W + 2 * ow + dj;
            if (x[i] > x[best]) best = i;  // strict: the first maximum wins a tie
          }
        const size_t o = (pl * OH + oh) * OW + ow;
        y[o] = x[best];
        argmax[o] = int32_t(best);
      }
}

template <typename T>
void maxpool_backward_cpu(const T* dy, const int32_t* argmax, T* dx, int NC, int H, int W) {
  const size_t OH = H / 2, OW = W / 2;
  for (size_t pl = 0; pl < size_t(NC); ++pl)
    for (size_t h = 0; h < size_t(H); ++h)
      for (size_t w = 0; w < size_t(W); ++w) {
        const size_t i = (pl * H + h) * W + w;
        T g = T(0);
        if (h / 2 < OH && w / 2 < OW) {  // rows/columns cut off by the floor get no gradient
          const size_t o = (pl * OH + h / 2) * OW + w / 2;
          if (size_t(argmax[o]) == i) g = dy[o];
        }
        dx[i] = g;
      }
}

template <typename T>
void dropout_forward_cpu(const T* x, T* y, size_t n, float rate, uint64_t seed, uint64_t step,
                         uint32_t layer) {
  check_rate(rate);
  if (rate == 0.0f) {
    std::copy(x, x + n, y);
    return;
  }
  const T scale = T(1) / (T(1) - T(rate));
  for (size_t i = 0; i < n; ++i) y[i] = dropout_keep(seed, step, layer, i, rate) ? x[i] * scale : T(0);
}

template <typename T>
void dropout_backward_cpu(const T* dy, T* dx, size_t n, float rate, uint64_t seed, uint64_t step,
                          uint32_t layer) {
  // Same code as forward on purpose: the gradient of y = x * scale * mask is dy * scale * mask.
  dropout_forward_cpu(dy, dx, n, rate, seed, step, layer);
}

template <typename T>
void dense_forward_cpu(const T* x, const T* w, const T* b, T* y, int N, int I, int O) {
  gemm_cpu<T>(false, true, N, O, I, T(1), x, w, T(0), y);  // (N,I)(I,O)
  for (size_t n = 0; n < size_t(N); ++n)
    for (size_t o = 0; o < size_t(O); ++o) y[n * O + o] += b[o];
}

template <typename T>
void dense_backward_cpu(const T* x, const T* w, const T* dy, T* dw, T* db, T* dx, int N, int I, int O) {
  gemm_cpu<T>(true, false, O, I, N, T(1), dy, x, T(0), dw);  // (O,N)(N,I)
  for (size_t o = 0; o < size_t(O); ++o) {
    double sum = 0.0;
    for (size_t n = 0; n < size_t(N); ++n) sum += dy[n * O + o];
    db[o] = T(sum);
  }
  if (dx != nullptr) gemm_cpu<T>(false, false, N, I, O, T(1), dy, w, T(0), dx);  // (N,O)(O,I)
}

template <typename T>
XentResult softmax_xent_cpu(const T* logits, const uint8_t* labels, T* dlogits, T* probs, int N, int C) {
  CONVNET_CHECK(N >= 0 && C >= 1, "softmax_xent needs C >= 1, got C=" + std::to_string(C));
  XentResult r;
  for (size_t n = 0; n < size_t(N); ++n) {
    const T* z = logits + n * C;
    const int label = labels[n];
    CONVNET_CHECK(label < C, "label " + std::to_string(label) + " of sample " + std::to_string(n) +
                                 " is not below the class count " + std::to_string(C));
    size_t first_max = 0;
    for (size_t c = 1; c < size_t(C); ++c)
      if (z[c] > z[first_max]) first_max = c;
    const double zmax = z[first_max];
    double sum = 0.0;
    for (size_t c = 0; c < size_t(C); ++c) sum += std::exp(double(z[c]) - zmax);
    const double lse = zmax + std::log(sum);
    r.loss_sum += lse - double(z[label]);
    r.correct += first_max == size_t(label) ? 1 : 0;
    for (size_t c = 0; c < size_t(C); ++c) {
      const double p = std::exp(double(z[c]) - lse);
      dlogits[n * C + c] = T((p - (c == size_t(label) ? 1.0 : 0.0)) / N);
      if (probs != nullptr) probs[n * C + c] = T(p);
    }
  }
  return r;
}

template <typename T>
void adam_update_cpu(T* p, const T* g, T* m, T* v, size_t n, float lr, float beta1, float beta2, float eps,
                     int64_t t) {
  CONVNET_CHECK(t >= 1, "Adam step t must be >= 1, got " + std::to_string(t));
  const double lr_t_d = double(lr) * std::sqrt(1.0 - std::pow(double(beta2), double(t))) /
                        (1.0 - std::pow(double(beta1), double(t)));
  const T lr_t = T(lr_t_d), one_m_b1 = T(1) - T(beta1), one_m_b2 = T(1) - T(beta2), e = T(eps);
  for (size_t i = 0; i < n; ++i) {
    m[i] += (g[i] - m[i]) * one_m_b1;
    v[i] += (g[i] * g[i] - v[i]) * one_m_b2;
    p[i] -= (m[i] * lr_t) / (std::sqrt(v[i]) + e);  // Keras order: (m * alpha) / (sqrt(v) + eps)
  }
}

template <typename T>
void sgd_update_cpu(T* p, const T* g, T* vel, size_t n, float lr, float momentum, bool nesterov) {
  const T mu = T(momentum), a = T(lr);
  for (size_t i = 0; i < n; ++i) {
    vel[i] = mu * vel[i] - a * g[i];
    p[i] += nesterov ? mu * vel[i] - a * g[i] : vel[i];
  }
}

#define CONVNET_INSTANTIATE(T)                                                                            \
  template void gemm_cpu<T>(bool, bool, int, int, int, T, const T*, const T*, T, T*);                     \
  template void im2col_cpu<T>(const T*, T*, int, int, int, int, int);                                     \
  template void col2im_cpu<T>(const T*, T*, int, int, int, int, int);                                     \
  template void bias_relu_forward_cpu<T>(const T*, const T*, T*, int, int, int);                          \
  template void bias_relu_backward_cpu<T>(const T*, const T*, T*, int, int, int);                         \
  template void bias_backward_cpu<T>(const T*, T*, int, int);                                             \
  template void relu_forward_cpu<T>(T*, size_t);                                                          \
  template void relu_backward_cpu<T>(const T*, const T*, T*, size_t);                                     \
  template void conv_forward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, int, int, int, int, int,    \
                                    int);                                                                 \
  template void conv_backward_cpu<T>(const T*, const T*, const T*, const T*, T*, T*, T*, T*, T*, int, int, \
                                     int, int, int, int);                                                 \
  template void maxpool_forward_cpu<T>(const T*, T*, int32_t*, int, int, int);                            \
  template void maxpool_backward_cpu<T>(const T*, const int32_t*, T*, int, int, int);                     \
  template void dropout_forward_cpu<T>(const T*, T*, size_t, float, uint64_t, uint64_t, uint32_t);        \
  template void dropout_backward_cpu<T>(const T*, T*, size_t, float, uint64_t, uint64_t, uint32_t);       \
  template void dense_forward_cpu<T>(const T*, const T*, const T*, T*, int, int, int);                    \
  template void dense_backward_cpu<T>(const T*, const T*, const T*, T*, T*, T*, int, int, int);           \
  template XentResult softmax_xent_cpu<T>(const T*, const uint8_t*, T*, T*, int, int);                    \
  template void adam_update_cpu<T>(T*, const T*, T*, T*, size_t, float, float, float, float, int64_t);    \
  template void sgd_update_cpu<T>(T*, const T*, T*, size_t, float, float, bool);

CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

void finite_check_cpu(const float* g, size_t n, const double* loss, int64_t step, DeviceFault* fault) {
  if (fault->step < step) return;  // the first faulty step's record is kept
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(g[i])) continue;
    const unsigned long long key = (static_cast<unsigned long long>(i) << 1) | (std::isinf(g[i]) ? 1u : 0u);
    fault->grad = std::min(fault->grad, key);
    fault->step = std::min<long long>(fault->step, step);
    break;
  }
  if (!std::isfinite(*loss)) {
    fault->loss = std::isnan(*loss) ? kValueNaN : kValueInf;
    fault->step = std::min<long long>(fault->step, step);
  }
}

}  // namespace convnet
