// What the CUDA runtime reports about this machine's GPUs (host/gpu_device.cpp, built with CUDA).
#pragma once

#include <string>

namespace convnet {

// Number of usable CUDA devices; 0 (with the runtime's reason in *why) when there is none.
int cuda_device_count(std::string* why);

// Multi-line report: runtime, driver and cuBLAS versions, then name, SMs, memory and compute
// capability of each device, or the reason there is none.
std::string cuda_device_report();

}  // namespace convnet
