// DeviceBuffer: the only type that calls cudaMalloc / cudaFree (STYLE.md: one allocation per
// lifetime, not per tensor). Move-only. Out of device memory throws ResourceError with the size
// asked for and what it was for; main() prints it as one line and exits 2.
// PinnedBuffer: the same for page-locked host memory (cudaMallocHost / cudaFreeHost), which a copy
// captured into a CUDA graph reads or writes when the graph runs (host/gpu_graph.h).
// Compiled in the GPU build and in the CUDA-on-CPU simulator build (kernels/cuda_compat.h).
#pragma once

#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

#include "cuda_check.h"
#include "errors.h"

namespace convnet {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(size_t count, const std::string& purpose) : count_(count) {
    if (count == 0) return;
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, count * sizeof(T));
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      char size[64];
      std::snprintf(size, sizeof size, "%.1f MiB", static_cast<double>(count * sizeof(T)) / (1024.0 * 1024.0));
      throw ResourceError("out of GPU memory allocating " + std::string(size) + " for " + purpose +
                           " (try a smaller --batch-size)");
    }
    CUDA_CHECK(err);
    ptr_ = static_cast<T*>(p);
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      if (ptr_) cudaFree(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(size_t count, const std::string& purpose) : count_(count) {
    if (count == 0) return;
    void* p = nullptr;
    const cudaError_t err = cudaMallocHost(&p, count * sizeof(T));
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw ResourceError("out of page-locked host memory allocating " + std::to_string(count * sizeof(T)) +
                          " bytes for " + purpose);
    }
    CUDA_CHECK(err);
    ptr_ = static_cast<T*>(p);
  }
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  PinnedBuffer(PinnedBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), count_(std::exchange(o.count_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
      if (ptr_) cudaFreeHost(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      count_ = std::exchange(o.count_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

}  // namespace convnet
