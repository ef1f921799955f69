// Device helpers that classify a value as kValueFinite, kValueNaN or kValueInf (kernels/device_state.h)
// from its bits, so no fast-math flag can fold the test away. Used by the divergence check of a
// training step: finite_check.cu and the fused optimiser step (fused_optimizer.cu), whose records
// must agree. Include only from .cu files (device code).
#pragma once

#include "cuda_compat.h"
#include "device_state.h"

namespace convnet {

__device__ inline int float_kind(float v) {
  const unsigned bits = __float_as_uint(v);
  if ((bits & 0x7f800000u) != 0x7f800000u) return kValueFinite;  // exponent not all ones
  return (bits & 0x007fffffu) != 0 ? kValueNaN : kValueInf;
}

__device__ inline int double_kind(double v) {
  const unsigned long long bits = static_cast<unsigned long long>(__double_as_longlong(v));
  if ((bits & 0x7ff0000000000000ull) != 0x7ff0000000000000ull) return kValueFinite;
  return (bits & 0x000fffffffffffffull) != 0 ? kValueNaN : kValueInf;
}

}  // namespace convnet
