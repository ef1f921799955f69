// Shared GoogleTest helpers: comparison with tolerance classes, seeded random data, NaN poisoning,
// and the central-difference gradient check.
//
// Header-only and everything `inline` or a template: several test files in the one convnet_tests
// binary include it.
//
// Comparison rule (expect_close): element i matches when got == ref (covers equal infinities) or
// |got - ref| <= atol + rtol * |ref|. A NaN on either side never matches, so an output poisoned with
// NaN before the run and left unwritten fails. On failure one message reports the mismatch count,
// the first bad index with both values, and the largest absolute and relative errors.
//
// Random data is a pure function of (seed, index) through rng.h's mixer, so a seed printed by a
// failing test reproduces the same numbers on any machine and compiler (std:: distributions do not
// promise that). Tests put the seed in a SCOPED_TRACE (seed_trace) so every failure prints it; the
// environment variable CONVNET_TEST_SEED overrides the default seed of tests that use test_seed().
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "rng.h"

namespace convnet::test {

// Tolerance classes (STYLE.md). Each looser class says why it is loose.
struct Tol {
  double atol;
  double rtol;
};
// Copies and selections: im2col, pooling, dropout masks, argmax.
inline constexpr Tol kExact{0.0, 0.0};
// One rounding or a short fixed-order expression per element (bias+ReLU, optimiser steps).
inline constexpr Tol kElementwise{1e-6, 1e-5};
// Sums over many terms in float, in whatever order the BLAS or kernel picks: error grows with the
// length of the sum, so it is compared at 1e-4 (TF32 tensor cores would need ~1e-3).
inline constexpr Tol kReduction{1e-4, 1e-4};

// ---- comparison --------------------------------------------------------------------------------

template <typename R, typename G>
::testing::AssertionResult check_close(const R* ref, const G* got, size_t n, double atol, double rtol,
                                       const std::string& what) {
  size_t bad = 0, first_bad = n, max_abs_i = 0, max_rel_i = 0;
  double max_abs = 0.0, max_rel = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double r = static_cast<double>(ref[i]), g = static_cast<double>(got[i]);
    const bool ok = g == r || std::fabs(g - r) <= atol + rtol * std::fabs(r);  // false for NaN
    const double abs_err = g == r ? 0.0 : std::fabs(g - r);
    const double rel_err = abs_err == 0.0 ? 0.0 : abs_err / std::max(std::fabs(r), 1e-300);
    if (!ok) {
      if (bad == 0) first_bad = i;
      ++bad;
    }
    // NaN compares false, so track it explicitly: it is the worst possible error.
    if (std::isnan(abs_err) ? !std::isnan(max_abs) : abs_err > max_abs) max_abs = abs_err, max_abs_i = i;
    if (std::isnan(rel_err) ? !std::isnan(max_rel) : rel_err > max_rel) max_rel = rel_err, max_rel_i = i;
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  std::ostringstream os;
  os.precision(9);
  os << what << ": " << bad << " of " << n << " elements differ (atol " << atol << ", rtol " << rtol
     << "); first bad index " << first_bad << ": ref " << static_cast<double>(ref[first_bad]) << ", got "
     << static_cast<double>(got[first_bad]) << "; max abs error " << max_abs << " at " << max_abs_i
     << ", max rel error " << max_rel << " at " << max_rel_i;
  return ::testing::AssertionFailure() << os.str();
}

// EXPECT-style: records a non-fatal failure and returns whether everything matched. The failure is
// reported at the caller's file:line (the defaulted __builtin_FILE/__builtin_LINE arguments, which
// g++ and clang evaluate at the call site).
template <typename R, typename G>
bool expect_close(const R* ref, const G* got, size_t n, double atol, double rtol, const std::string& what,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::testing::AssertionResult r = check_close(ref, got, n, atol, rtol, what);
  if (!r) ADD_FAILURE_AT(file, line) << r.message();
  return static_cast<bool>(r);
}
template <typename R, typename G>
bool expect_close(const std::vector<R>& ref, const std::vector<G>& got, double atol, double rtol,
                  const std::string& what, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  if (ref.size() != got.size())
    ADD_FAILURE_AT(file, line) << what << ": size " << got.size() << ", expected " << ref.size();
  return expect_close(ref.data(), got.data(), std::min(ref.size(), got.size()), atol, rtol, what, file, line) &&
         ref.size() == got.size();
}
template <typename R, typename G>
bool expect_close(const std::vector<R>& ref, const std::vector<G>& got, Tol tol, const std::string& what,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return expect_close(ref, got, tol.atol, tol.rtol, what, file, line);
}

// The exact class, and the same bits too (expect_close lets -0 match +0): for kernels whose
// arithmetic is the CPU twin's. Failures are reported at the caller's line.
template <typename T>
void expect_exact(const std::vector<T>& ref, const std::vector<T>& got, const std::string& what,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  if (!expect_close(ref, got, kExact, what, file, line)) return;
  for (size_t i = 0; i < ref.size(); ++i)
    if (std::memcmp(&ref[i], &got[i], sizeof(T)) != 0) {
      ADD_FAILURE_AT(file, line) << what << ": element " << i << " has other bits: cpu " << ref[i] << ", gpu "
                                 << got[i];
      return;
    }
}

// ---- seeds -------------------------------------------------------------------------------------

// The default seed of a test, unless CONVNET_TEST_SEED is set in the environment.
inline uint64_t test_seed(uint64_t fallback) {
  const char* s = std::getenv("CONVNET_TEST_SEED");
  return s != nullptr && *s != '\0' ? std::strtoull(s, nullptr, 0) : fallback;
}
inline std::string seed_msg(uint64_t seed) {
  return "seed " + std::to_string(seed) + " (rerun with CONVNET_TEST_SEED=" + std::to_string(seed) + ")";
}
// Prints the seed with every failure in the enclosing scope.
#define CONVNET_SEED_TRACE(seed) SCOPED_TRACE(::convnet::test::seed_msg(seed))

// ---- random data -------------------------------------------------------------------------------

// Uniform double in [0, 1) with 53 random bits, a pure function of (seed, stream, index).
inline double uniform_double(uint64_t seed, uint64_t stream, uint64_t index) {
  return static_cast<double>(hash4(seed, 0x7e57'0000ull + stream, 0, index) >> 11) * 0x1.0p-53;
}

// p[i] = lo + (hi - lo) * u(seed, i), rounded to T. Different `stream`s give independent data.
template <typename T>
void fill_uniform(T* p, size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0, uint64_t stream = 0) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<T>(lo + (hi - lo) * uniform_double(seed, stream, i));
}
template <typename T>
std::vector<T> random_vector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0, uint64_t stream = 0) {
  std::vector<T> v(n);
  fill_uniform(v.data(), n, seed, lo, hi, stream);
  return v;
}

// Labels uniform in [0, classes).
inline std::vector<uint8_t> random_labels(size_t n, int classes, uint64_t seed, uint64_t stream = 0) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>(std::min<double>(classes - 1, uniform_double(seed, stream, i) * classes));
  return v;
}

// A seeded permutation of {offset + gap * k : k < n}: all values distinct, any two at least `gap`
// apart, so max-pool has no ties and a finite-difference step below gap/2 cannot reorder them.
template <typename T>
std::vector<T> distinct_values(size_t n, uint64_t seed, double gap, double offset, uint64_t stream = 0) {
  std::vector<T> v(n);
  for (size_t k = 0; k < n; ++k) v[k] = static_cast<T>(offset + gap * static_cast<double>(k));
  for (size_t k = n; k > 1; --k) {  // Fisher-Yates with the seeded uniform
    const size_t j = std::min(k - 1, static_cast<size_t>(uniform_double(seed, stream + 1, k) * k));
    std::swap(v[k - 1], v[j]);
  }
  return v;
}

template <typename To, typename From>
std::vector<To> convert(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

// ---- poisoning ---------------------------------------------------------------------------------

// Fill an output with values no correct code writes: quiet NaN for floating point, the most
// negative value for integers (an impossible argmax/index). Unwritten elements then fail a compare.
template <typename T>
void poison(T* p, size_t n) {
  if constexpr (std::is_floating_point_v<T>)
    std::fill(p, p + n, std::numeric_limits<T>::quiet_NaN());
  else
    std::fill(p, p + n, std::numeric_limits<T>::min());
}
template <typename T>
void poison(std::vector<T>& v) {
  poison(v.data(), v.size());
}
// A vector of n poisoned elements.
template <typename T>
std::vector<T> poisoned(size_t n) {
  std::vector<T> v(n);
  poison(v);
  return v;
}

// ---- gradient check ----------------------------------------------------------------------------

// Central-difference check of an analytic gradient, in double.
//   loss():    recomputes the scalar loss from the current contents of param[] (and whatever else
//              the closure captures);
//   param:     the n inputs to perturb, restored exactly after each probe;
//   analytic:  dloss/dparam[i] computed by the code under test before calling this.
// Passes element i when |analytic - numeric| <= tol * max(|analytic|, |numeric|, 1).
// Reports the number of failures, the first one and the worst ratio. Returns true when all pass.
inline bool expect_gradient(const std::function<double()>& loss, double* param, const double* analytic,
                            size_t n, const std::string& what, double h = 1e-5, double tol = 1e-6,
                            const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  size_t bad = 0, first_bad = n, worst_i = 0;
  double worst = 0.0, first_num = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double saved = param[i];
    param[i] = saved + h;
    const double lp = loss();
    param[i] = saved - h;
    const double lm = loss();
    param[i] = saved;
    const double numeric = (lp - lm) / (2.0 * h);
    const double scale = std::max({std::fabs(analytic[i]), std::fabs(numeric), 1.0});
    const double ratio = std::fabs(analytic[i] - numeric) / scale;
    if (!(ratio <= tol)) {  // NaN fails too
      if (bad == 0) first_bad = i, first_num = numeric;
      ++bad;
    }
    if (!(ratio <= worst)) worst = ratio, worst_i = i;
  }
  if (bad == 0) return true;
  std::ostringstream os;
  os << what << ": gradient check failed for " << bad << " of " << n << " inputs (h " << h << ", tol " << tol
     << "); first at index " << first_bad;
  os.precision(12);
  os << ": analytic " << analytic[first_bad] << ", numeric " << first_num << "; worst scaled error " << worst
     << " at index " << worst_i;
  ADD_FAILURE_AT(file, line) << os.str();
  return false;
}

}  // namespace convnet::test
