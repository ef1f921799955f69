// One sample's softmax cross-entropy on the device, operation for operation as softmax_xent_cpu
// (host/cpu_layers.cpp): first arg-max with `>`, max-subtracted log-sum-exp in double, loss = lse -
// z[label], p = exp(z - lse) in double, dlogits = (p - onehot) / N rounded to float once (the
// gradient of the batch MEAN loss). Shared by softmax_xent.cu (the per-layer kernel) and the fused
// head (fused_forward.cu), so the two paths cannot drift apart. Include only from .cu files.
#pragma once

#include "cuda_compat.h"

namespace convnet {

// One sample's logits z (C): writes its dlogits/probs rows (when non-null), adds its loss and correctness
// to the sums. Labels are validated at load time: one out of range is a broken invariant, so it traps.
__device__ inline void xent_sample(const float* z, int label, float* dlogits, float* probs, int N, int C,
                                   double* loss, long long* correct) {
  if (label >= C) __trap();
  int first_max = 0;
  for (int c = 1; c < C; ++c)
    if (z[c] > z[first_max]) first_max = c;
  const double zmax = z[first_max];
  double sum = 0.0;
  for (int c = 0; c < C; ++c) sum += exp(static_cast<double>(z[c]) - zmax);
  const double lse = zmax + log(sum);
  *loss += lse - static_cast<double>(z[label]);
  *correct += first_max == label ? 1 : 0;
  if (dlogits == nullptr && probs == nullptr) return;
  for (int c = 0; c < C; ++c) {
    const double p = exp(static_cast<double>(z[c]) - lse);
    if (dlogits != nullptr) dlogits[c] = static_cast<float>((p - (c == label ? 1.0 : 0.0)) / N);
    if (probs != nullptr) probs[c] = static_cast<float>(p);
  }
}

}  // namespace convnet
