// DeviceArray<T>: a move-only cudaMalloc'd array for tests, with whole-array upload and download.
// Works against the real CUDA runtime and the simulator alike (kernels/cuda_check.h picks).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cuda_check.h"

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) { CUDA_CHECK(cudaMalloc(&ptr_, n * sizeof(T))); }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceArray(DeviceArray&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)), n_(other.n_) {}
  DeviceArray& operator=(DeviceArray&& other) noexcept {
    std::swap(ptr_, other.ptr_);
    std::swap(n_, other.n_);
    return *this;
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T>& host) {
    check_size(host.size());
    CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    CUDA_CHECK(cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  // Every byte 0xFF: NaN as float/double, -1 as an integer, so elements a kernel never writes stand out.
  void poison() { CUDA_CHECK(cudaMemset(ptr_, 0xFF, n_ * sizeof(T))); }

 private:
  void check_size(size_t n) const {
    if (n != n_) throw std::logic_error("DeviceArray: host vector has " + std::to_string(n) + " elements, device " +
                                        std::to_string(n_));
  }
  T* ptr_ = nullptr;
  size_t n_ = 0;
};
