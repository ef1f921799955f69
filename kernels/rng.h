// Counter-based random numbers shared by the CPU reference and the CUDA kernels.
//
// Everything random that must agree between backends (dropout masks, shuffling, initialisation) is
// a pure function of its coordinates (seed, step, layer, index): no generator state to carry, so a
// GPU thread and a CPU loop compute the identical bit pattern for the same element. The mixer is
// SplitMix64's finaliser applied to each coordinate in turn (a bijective 64-bit avalanche).
// Header-only, plain integer arithmetic: compiles under g++, nvcc and the CUDA-on-CPU simulator.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define CONVNET_HD __host__ __device__ __forceinline__
#else
#define CONVNET_HD inline
#endif

namespace convnet {

CONVNET_HD uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Hash of four coordinates; distinct tuples give independent-looking 64-bit values.
CONVNET_HD uint64_t hash4(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

// Uniform float in [0, 1) with 24 random bits: exactly representable, so CPU and GPU agree.
CONVNET_HD float uniform01(uint64_t h) { return static_cast<float>(h >> 40) * (1.0f / 16777216.0f); }

// Streams that use hash4, so two uses of one seed never share numbers.
enum RngStream : uint64_t { kStreamDropout = 1, kStreamShuffle = 2, kStreamInit = 3 };

// Dropout keep decision for element `index` of dropout layer `layer` at training step `step`.
// Keras semantics: an element is dropped with probability `rate`, kept ones are scaled 1/(1-rate).
CONVNET_HD bool dropout_keep(uint64_t seed, uint64_t step, uint32_t layer, uint64_t index, float rate) {
  uint64_t h = hash4(seed ^ (kStreamDropout << 56), step, layer, index);
  return uniform01(h) >= rate;
}

}  // namespace convnet
