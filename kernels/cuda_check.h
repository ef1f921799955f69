// CUDA_CHECK and the launch check, one definition for the GPU build and the CUDA-on-CPU simulator.
//
// CUDA_CHECK(expr): evaluates a runtime call; on failure throws std::runtime_error naming the
// expression, file:line, the error's name and its description (the simulator's description also
// says which kernel, block and thread failed). Tests then report the failing case; main() exits
// non-zero.
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

namespace convnet {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const std::string& what, const char* file,
                                          int line) {
  // The failed call also set the runtime's last-error state; reset it (as reading it would), so the
  // next launch check does not blame an innocent kernel for an error that is reported here.
  cudaGetLastError();
  std::string where = file ? std::string(file) + ":" + std::to_string(line) + ": " : std::string();
  throw std::runtime_error(where + "CUDA error " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                           ") in " + what);
}

inline std::atomic<int>& sync_launches_flag() {
  static std::atomic<int> flag{[] {
    const char* v = std::getenv("CONVNET_SYNC_LAUNCHES");
    return (v && *v && std::strcmp(v, "0") != 0) ? 1 : 0;
  }()};
  return flag;
}
inline bool sync_launches() { return sync_launches_flag().load(std::memory_order_relaxed) != 0; }
inline void set_sync_launches(bool on) { sync_launches_flag().store(on ? 1 : 0); }

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
