// CPU GEMM: OpenBLAS (through convnet::gemm_cpu<float>, what the CPU trainer calls) versus a
// straightforward hand-written loop, on every GEMM of one training step of the MNIST ConvNet at
// batch 128. The question it answers (issue: "GEMM through CBLAS unless a hand-written loop is
// within 2x of it, measured"): is the hand loop within 2x of OpenBLAS?
//
// Shapes (row-major, C (M, N) = op(A) (M, K) * op(B) (K, N); see host/cpu_layers.h):
//   conv forward   pre  (OC, N*P)  = w (OC, CKK)       * col (CKK, N*P)      NN
//   conv dW        dw   (OC, CKK)  = dpre (OC, N*P)    * col^T               NT
//   conv dcol      dcol (CKK, N*P) = w^T               * dpre (OC, N*P)      TN
//   dense fwd/dW/dx: y = x w^T (NT), dw = dy^T x (TN), dx = dy w (NN)
// conv1 has no dcol GEMM in a training step (the first layer needs no input gradient).
//
// The hand loop is the best *simple* form for each transposition: the innermost loop walks
// contiguous memory. NN and TN use i-k-j (a row of C += scalar * a row of B); NT would stride B in
// i-k-j, so it uses i-j-k (a dot product of two contiguous rows). Float accumulation, like sgemm.
// A float dot product cannot be vectorised without fast-math (it would reorder the sum), so NT
// shapes also get a second hand row, "B^T+ikj": copy B transposed (timed too), then i-k-j.
//
// Validation before timing, both at 1e-4: normwise, max |hand - blas| / max |blas|; and componentwise,
// |hand - blas| <= 1e-4 * (|op(A)| |op(B)|)(i, j) for every element, the bound a float sum of K
// products meets even where it cancels to ~0 (so a plain per-element relative error would not do).
// Float rounding measures ~1e-7 on both; any failure exits 1 before anything is timed.
//
// Timing: steady_clock, one warm-up call, then the median (and min, max) of kReps calls.
// Usage: gemm_cpu [reps]  (set OPENBLAS_NUM_THREADS to choose OpenBLAS's thread count).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cpu_layers.h"
#include "rng.h"

namespace {

struct Shape {
  const char* name;
  bool trans_a, trans_b;
  int M, N, K;
};

constexpr int kBatch = 128;
const Shape kShapes[] = {
    {"conv1 fwd", false, false, 32, kBatch * 26 * 26, 9},
    {"conv1 dW", false, true, 32, 9, kBatch * 26 * 26},
    {"conv2 fwd", false, false, 64, kBatch * 11 * 11, 288},
    {"conv2 dW", false, true, 64, 288, kBatch * 11 * 11},
    {"conv2 dcol", true, false, 288, kBatch * 11 * 11, 64},
    {"conv3 fwd", false, false, 64, kBatch * 3 * 3, 576},
    {"conv3 dW", false, true, 64, 576, kBatch * 3 * 3},
    {"conv3 dcol", true, false, 576, kBatch * 3 * 3, 64},
    {"dense fwd", false, true, kBatch, 10, 64},
    {"dense dW", true, false, 10, 64, kBatch},
    {"dense dx", false, false, kBatch, 64, 10},
};

// C (M, N) = op(A) op(B), A stored (M, K) or (K, M) if trans_a, B stored (K, N) or (N, K) if trans_b.
void hand_gemm(bool ta, bool tb, int M, int N, int K, const float* A, const float* B, float* C) {
  if (tb && !ta) {  // i-j-k: dot products of contiguous rows of A and B
    for (size_t i = 0; i < size_t(M); ++i)
      for (size_t j = 0; j < size_t(N); ++j) {
        float s = 0.0f;
        for (size_t k = 0; k < size_t(K); ++k) s += A[i * K + k] * B[j * K + k];
        C[i * N + j] = s;
      }
    return;
  }
  if (tb) {
    std::fprintf(stderr, "hand_gemm: trans_a && trans_b is not used by the network\n");
    std::exit(2);
  }
  for (size_t i = 0; i < size_t(M); ++i) {  // i-k-j
    float* c = C + i * N;
    std::fill(c, c + N, 0.0f);
    for (size_t k = 0; k < size_t(K); ++k) {
      const float a = ta ? A[k * M + i] : A[i * K + k];
      const float* b = B + k * N;
      for (size_t j = 0; j < size_t(N); ++j) c[j] += a * b[j];
    }
  }
}

// NT as a transpose of B into scratch (K, N) followed by the i-k-j loop.
void hand_gemm_nt_transposed(int M, int N, int K, const float* A, const float* B, float* C,
                             std::vector<float>& scratch) {
  scratch.resize(size_t(K) * N);
  for (size_t j = 0; j < size_t(N); ++j)
    for (size_t k = 0; k < size_t(K); ++k) scratch[k * N + j] = B[j * K + k];
  hand_gemm(false, false, M, N, K, A, scratch.data(), C);
}

std::vector<float> random_floats(size_t n, uint64_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = 2.0f * convnet::uniform01(convnet::hash4(12345, stream, 0, i)) - 1.0f;
  return v;
}

struct Errors {
  double normwise, componentwise;
  bool ok() const { return normwise <= 1e-4 && componentwise <= 1e-4; }  // false for NaN
};

// Normwise max |hand - blas| / max |blas|, and componentwise max |hand - blas| / (|op(A)| |op(B)|)(i, j)
// (the denominator from a double GEMM of the absolute values).
Errors compare(const Shape& s, const std::vector<float>& A, const std::vector<float>& B,
               const std::vector<float>& hand, const std::vector<float>& blas) {
  std::vector<double> absA(A.size()), absB(B.size()), bound(size_t(s.M) * s.N);
  for (size_t i = 0; i < A.size(); ++i) absA[i] = std::fabs(A[i]);
  for (size_t i = 0; i < B.size(); ++i) absB[i] = std::fabs(B[i]);
  convnet::gemm_cpu<double>(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0, absA.data(), absB.data(), 0.0,
                            bound.data());
  double worst = 0.0, max_diff = 0.0, max_ref = 0.0;
  for (size_t i = 0; i < bound.size(); ++i) {
    const double d = std::fabs(double(hand[i]) - double(blas[i]));
    const double e = d / std::max(bound[i], 1e-30);
    if (!(e <= worst)) worst = e;  // NaN propagates
    if (!(d <= max_diff)) max_diff = d;
    max_ref = std::max(max_ref, std::fabs(double(blas[i])));
  }
  return {max_diff / max_ref, worst};
}

struct Timing {
  double median_ms, min_ms, max_ms;
};

template <typename F>
Timing time_it(F&& f, int reps) {
  f();  // warm-up: page faults, OpenBLAS thread start-up, caches
  std::vector<double> ms(reps);
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    ms[r] = std::chrono::duration<double, std::milli>(t1 - t0).count();
  }
  std::sort(ms.begin(), ms.end());
  return {ms[reps / 2], ms.front(), ms.back()};
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::max(1, std::atoi(argv[1])) : 7;
  std::printf("OpenBLAS: %s; core %s; threads %d. Batch %d, median of %d (after 1 warm-up).\n",
              openblas_get_config(), openblas_get_corename(), openblas_get_num_threads(), kBatch, reps);
  std::printf("%-11s %2s %5s %6s %6s | %9s %17s %7s | %9s %17s %7s | %7s %8s %8s\n", "gemm", "op", "M", "N", "K",
              "blas ms", "(min-max)", "GFLOP/s", "hand ms", "(min-max)", "GFLOP/s", "hand/bl", "nw err", "cw err");
  double total_blas = 0.0, total_hand = 0.0, total_hand_best = 0.0;
  bool ok = true;
  std::vector<float> scratch;
  for (const Shape& s : kShapes) {
    const std::vector<float> A = random_floats(size_t(s.M) * s.K, 1), B = random_floats(size_t(s.K) * s.N, 2);
    std::vector<float> c_blas(size_t(s.M) * s.N, NAN), c_hand(size_t(s.M) * s.N, NAN);
    auto blas = [&] {
      convnet::gemm_cpu<float>(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), B.data(), 0.0f,
                               c_blas.data());
    };
    auto hand = [&] { hand_gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, A.data(), B.data(), c_hand.data()); };
    blas();
    hand();
    const Errors err = compare(s, A, B, c_hand, c_blas);
    if (!err.ok()) {
      std::fprintf(stderr, "%s: hand loop and OpenBLAS disagree: normwise %.3g, componentwise %.3g (limit 1e-4)\n",
                   s.name, err.normwise, err.componentwise);
      ok = false;
      continue;
    }
    const Timing tb = time_it(blas, reps), th = time_it(hand, reps);
    const double gflop = 2.0 * s.M * double(s.N) * s.K * 1e-9;
    total_blas += tb.median_ms;
    total_hand += th.median_ms;
    double best = th.median_ms;
    char op[3] = {s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N', 0};
    auto row = [&](const char* name, const Timing& h, Errors e) {
      std::printf("%-11s %2s %5d %6d %6d | %9.3f (%7.3f-%7.3f) %7.1f | %9.3f (%7.3f-%7.3f) %7.1f | %7.2f %8.1e %8.1e\n",
                  name, op, s.M, s.N, s.K, tb.median_ms, tb.min_ms, tb.max_ms, gflop / (tb.median_ms * 1e-3),
                  h.median_ms, h.min_ms, h.max_ms, gflop / (h.median_ms * 1e-3), h.median_ms / tb.median_ms, e.normwise,
                  e.componentwise);
    };
    row(s.name, th, err);
    if (s.trans_b) {
      std::fill(c_hand.begin(), c_hand.end(), NAN);
      auto hand_t = [&] { hand_gemm_nt_transposed(s.M, s.N, s.K, A.data(), B.data(), c_hand.data(), scratch); };
      hand_t();
      const Errors err_t = compare(s, A, B, c_hand, c_blas);
      if (!err_t.ok()) {
        std::fprintf(stderr, "%s B^T+ikj: disagrees with OpenBLAS: normwise %.3g, componentwise %.3g\n", s.name,
                     err_t.normwise, err_t.componentwise);
        ok = false;
        continue;
      }
      const Timing tt = time_it(hand_t, reps);
      row(" B^T+ikj", tt, err_t);
      best = std::min(best, tt.median_ms);
    }
    total_hand_best += best;
  }
  if (!ok) return 1;
  std::printf("step total: blas %.2f ms, hand %.2f ms (%.2fx), best hand variant per GEMM %.2f ms (%.2fx) -> %s\n",
              total_blas, total_hand, total_hand / total_blas, total_hand_best, total_hand_best / total_blas,
              total_hand_best <= 2.0 * total_blas ? "a hand loop is within 2x"
                                                  : "no hand loop within 2x: keep CBLAS");
  return 0;
}
