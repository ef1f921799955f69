// Helpers for the simulator's own tests: device arrays, launching through convnet::launch (so the
// launch check is exercised too), and the thread orders every order-sensitive test runs in.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "device_array.h"
#include "launch.h"
#include "simt.h"

inline std::vector<simt::ThreadOrder> all_orders() {
  return {simt::ThreadOrder::forward(), simt::ThreadOrder::reverse(), simt::ThreadOrder::shuffle(7),
          simt::ThreadOrder::shuffle(12345), simt::ThreadOrder::interleave(3)};
}

// A stream for the length of a test.
class Stream {
 public:
  explicit Stream(unsigned flags = cudaStreamDefault) { CUDA_CHECK(cudaStreamCreateWithFlags(&s_, flags)); }
  ~Stream() { cudaStreamDestroy(s_); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

// Pinned host memory (cudaMallocHost) for the length of a test.
template <typename T>
class Pinned {
 public:
  explicit Pinned(size_t n) { CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p_), n * sizeof(T))); }
  ~Pinned() { cudaFreeHost(p_); }
  Pinned(const Pinned&) = delete;
  Pinned& operator=(const Pinned&) = delete;
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

inline bool is_poison(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits == 0xFFFFFFFFu;
}

// The message of the exception that `fn` throws, or "" when it throws none.
template <typename F>
std::string thrown_message(F&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
