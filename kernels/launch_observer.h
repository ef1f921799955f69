// An optional observer of every kernel launch and cuBLAS GEMM: the hook `convnet train --timing`
// (host/gpu_timing.h) uses to put a CUDA event pair around each launch, and tests use to check what
// a step launches. Plain C++ (no CUDA syntax), so host code can install one.
//
// convnet::launch (kernels/launch.h) and gemm_gpu (host/gpu_blas.h) call before_launch(name, stream)
// just before they enqueue the work and after_launch(name, stream) just after, whether or not the
// launch then fails its check. A GEMM's name is its row-major shape, "sgemm NT 32x6272x9" (op flags of
// A and B, then M x N x K as gemm_gpu takes them); everything cuBLAS enqueues for it falls between the
// two calls. `name` is valid only during the call: an observer that keeps it copies it.
//
// Cost when none is installed: one relaxed atomic load per launch. One observer at a time, installed
// with ScopedLaunchObserver around the code it watches; it is called on the launching thread.
//
// CUDA graphs: a replayed graph makes no launch() calls, and an event recorded during stream capture
// becomes a graph node, so code that captures graphs must not do so while launch_observer() is set
// (timing runs with graphs off).
#pragma once

#include <atomic>

#include "cuda_fwd.h"

namespace convnet {

class LaunchObserver {
 public:
  virtual ~LaunchObserver() = default;
  virtual void before_launch(const char* name, cudaStream_t stream) = 0;
  virtual void after_launch(const char* name, cudaStream_t stream) = 0;
};

inline std::atomic<LaunchObserver*>& launch_observer_slot() {
  static std::atomic<LaunchObserver*> observer{nullptr};
  return observer;
}

// The installed observer, or nullptr.
inline LaunchObserver* launch_observer() { return launch_observer_slot().load(std::memory_order_relaxed); }

// Installs `observer` for its lifetime, then puts back whatever was installed before.
class ScopedLaunchObserver {
 public:
  explicit ScopedLaunchObserver(LaunchObserver* observer) : saved_(launch_observer_slot().exchange(observer)) {}
  ~ScopedLaunchObserver() { launch_observer_slot().store(saved_); }
  ScopedLaunchObserver(const ScopedLaunchObserver&) = delete;
  ScopedLaunchObserver& operator=(const ScopedLaunchObserver&) = delete;

 private:
  LaunchObserver* saved_;
};

}  // namespace convnet
