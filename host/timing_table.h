// The table `convnet train --timing` prints, after `caffe time`: per kernel (GEMMs by shape), calls per
// step, mean microseconds per call, microseconds per step and share of the summed kernel time, then
// the sum and the measured time of a whole step.
//
// Plain C++: the numbers come from host/gpu_timing.h's KernelTimer (a CUDA event pair around every
// launch) or from a test. The sum of the kernels is less than a step: what is left is the device idle
// between launches (launch overhead, host work) plus the events' own cost.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

struct KernelTime {
  std::string name;     // kernel name as launched ("im2col_kernel") or "sgemm NT 32x6272x9"
  int64_t calls = 0;    // over all timed steps
  double total_us = 0;  // summed event time over all timed steps
};

struct TimingReport {
  int steps = 0;                  // timed training steps
  std::vector<KernelTime> kernels;
  double step_events_us = 0.0;    // summed over steps: first launch's start event to last launch's end event
  double wall_us = 0.0;           // host clock over the timed steps, the device idle at both ends
};

// Summed kernel time over all steps, and each kernel's share of it in percent (in kernels' order;
// the shares sum to 100 when any time was measured).
double kernel_sum_us(const TimingReport& report);
std::vector<double> kernel_shares(const TimingReport& report);

// The table, heaviest kernel first; `title` is its first line.
std::string format_timing_table(const TimingReport& report, const std::string& title);

}  // namespace convnet
