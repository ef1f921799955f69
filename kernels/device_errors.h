// Errors of the GPU build that the program maps to its own exit codes (host/main.cpp), in plain C++ so
// code built without CUDA can catch them.
#pragma once

#include <stdexcept>
#include <string>

namespace convnet {

// The GPU ran out of memory in a call other than the backend's own allocations (which throw
// ResourceError with the size): a graph's instantiation or upload, a stream, the cuBLAS handle, a
// kernel module loaded at its first launch. The user's to fix (a smaller --batch-size): exit 2.
class DeviceOutOfMemory : public std::runtime_error {
 public:
  explicit DeviceOutOfMemory(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace convnet
