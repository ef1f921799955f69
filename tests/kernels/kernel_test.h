// Base fixture of the kernel tests. The same test sources build kernel_tests_sim (the simulator always
// has its one fake device) and kernel_tests_gpu (the real runtime): there, on a machine without a GPU,
// every test skips and says why instead of passing silently.
//
//   class DropoutKernel : public KernelTest {};
//   TEST_F(DropoutKernel, MatchesCpu) { ... }
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "cuda_check.h"

// Empty when a CUDA device is usable, else why not (the runtime's error name and text).
inline std::string no_device_reason() {
  int devices = 0;
  const cudaError_t err = cudaGetDeviceCount(&devices);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not an error of the test: clear it for the launch checks
    return std::string("no CUDA device: cudaGetDeviceCount returned ") + cudaGetErrorName(err) + " (" +
           cudaGetErrorString(err) + ")";
  }
  return devices == 0 ? "no CUDA device: cudaGetDeviceCount found none" : "";
}

class KernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string why = no_device_reason();
    if (!why.empty()) GTEST_SKIP() << why;
  }
};
