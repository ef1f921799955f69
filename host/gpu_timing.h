// KernelTimer: the LaunchObserver of `convnet train --timing`. It records a CUDA event on the launch's
// stream just before and just after every kernel launch and GEMM (kernels/launch_observer.h), and
// reads the elapsed times once, at the end, into a TimingReport (host/timing_table.h).
//
//   KernelTimer timer;
//   ScopedLaunchObserver observe(&timer);
//   ... warm-up steps ...
//   timer.restart(timer.launches() / warmup_steps * steps);  // events made now, not in the steps
//   for each step: timer.begin_step(); backend.train_step(...); timer.end_step();
//   TimingReport r = timer.report(steps);                    // waits for the last event
//
// Events come from a pool that grows when a launch finds it full (cudaEventCreate; restart() sizes it
// ahead so timed steps create none) and is reused after restart(). A step's time is from its first
// launch's start event to its last launch's end event. Event timing works with CUDA graphs off only
// (launch_observer.h). Under the CUDA-on-CPU simulator the events measure the simulator on the host.
// Plain C++ header; host/gpu_timing.cpp is built into convnet_gpu and the simulator's backend.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "launch_observer.h"
#include "timing_table.h"

struct CUevent_st;

namespace convnet {

class KernelTimer final : public LaunchObserver {
 public:
  KernelTimer() = default;
  ~KernelTimer() override;
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;

  // Forget what was recorded; keep the events, and have at least `launches` pairs ready.
  void restart(size_t launches);
  // Launches recorded since the last restart.
  size_t launches() const { return used_; }
  // The launches between these two calls make one step.
  void begin_step();
  void end_step();
  // Waits for the device, then sums each kernel's event times (kernels in first-launch order) and the
  // steps' times. wall_us is left 0 for the caller, which owns the host clock.
  TimingReport report(int steps);

  void before_launch(const char* name, cudaStream_t stream) override;
  void after_launch(const char* name, cudaStream_t stream) override;

 private:
  struct Step {
    size_t first = 0, end = 0;  // launches [first, end)
  };
  void grow(size_t pairs);
  float elapsed_ms(CUevent_st* from, CUevent_st* to) const;

  std::vector<CUevent_st*> start_, stop_;
  std::vector<std::string> names_;  // per pair; assign() reuses each string's storage after restart()
  size_t used_ = 0;
  bool in_launch_ = false;
  bool in_step_ = false;
  std::vector<Step> steps_;
};

}  // namespace convnet
