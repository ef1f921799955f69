// CUDA_CHECK and the launch check, one definition for the GPU build and the CUDA-on-CPU simulator.
//
// CUDA_CHECK(expr): evaluates a runtime call; on failure throws std::runtime_error naming the
// expression, file:line, the error's name and its description (the simulator's description also
// says which kernel, block and thread failed), or DeviceOutOfMemory (device_errors.h) when the
// device is out of memory. Tests then report the failing case; main() exits non-zero (2 for memory).
// check_launch(): after every launch (convnet::launch calls it). A launch reports configuration
// errors at once but faults only at the next synchronising call, so the debug option
// CONVNET_SYNC_LAUNCHES=1 (or set_sync_launches(true)) also synchronises after each launch: an
// asynchronous fault is then reported against the kernel that caused it.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cuda_compat.h"
#include "device_errors.h"

namespace convnet {

inline std::atomic<int>& sync_launches_flag() {
  static std::atomic<int> flag{[] {
    const char* v = std::getenv("CONVNET_SYNC_LAUNCHES");
    return (v && *v && std::strcmp(v, "0") != 0) ? 1 : 0;
  }()};
  return flag;
}
inline bool sync_launches() { return sync_launches_flag().load(std::memory_order_relaxed) != 0; }
inline void set_sync_launches(bool on) { sync_launches_flag().store(on ? 1 : 0); }

// Errors a kernel raises while it runs: they reach the host at a later call (the next launch check,
// cudaGraphLaunch, a synchronisation), not at the launch of the kernel that faulted.
inline bool is_kernel_fault(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorMisalignedAddress:
    case cudaErrorIllegalInstruction:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError:
    case cudaErrorLaunchTimeout:
      return true;
    default:
      return false;
  }
}

// Throws for a failed runtime call: DeviceOutOfMemory when the device is out of memory, else
// std::runtime_error. A kernel fault seen without sync launches says that an earlier kernel may be
// the one and how to find it.
[[noreturn]] inline void throw_cuda_error(cudaError_t err, const std::string& what, const char* file,
                                          int line) {
  // The failed call also set the runtime's last-error state; reset it (as reading it would), so the
  // next launch check does not blame an innocent kernel for an error that is reported here.
  cudaGetLastError();
  const std::string where = file ? std::string(file) + ":" + std::to_string(line) + ": " : std::string();
  const std::string error = std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation)
    throw DeviceOutOfMemory("out of GPU memory: " + error + " in " + what + " (try a smaller --batch-size)");
  std::string hint;
  if (is_kernel_fault(err) && !sync_launches())
    hint = "; a kernel fault is seen at a later call, so an earlier kernel may have caused it: rerun with "
           "--sync-launches (or CONVNET_SYNC_LAUNCHES=1) to name it";
  throw std::runtime_error(where + "CUDA error " + error + " in " + what + hint);
}

// Throws when the last launch failed (or, in sync mode, when the kernel faulted while running).
inline void check_launch(const std::string& what, const char* file = nullptr, int line = 0) {
  cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess && sync_launches()) err = cudaDeviceSynchronize();
  if (err != cudaSuccess) throw_cuda_error(err, what, file, line);
}

}  // namespace convnet

#define CUDA_CHECK(expr)                                                                 \
  do {                                                                                   \
    const cudaError_t convnet_cuda_err_ = (expr);                                        \
    if (convnet_cuda_err_ != cudaSuccess)                                                \
      ::convnet::throw_cuda_error(convnet_cuda_err_, "`" #expr "`", __FILE__, __LINE__); \
  } while (0)

// For a launch not made through convnet::launch (there should be none in kernels/).
#define CUDA_CHECK_LAUNCH(what) ::convnet::check_launch((what), __FILE__, __LINE__)
