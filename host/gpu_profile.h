// Profiler hooks of the CUDA backend: NVTX ranges that Nsight Systems and Nsight Compute show by name,
// and the cudaProfilerStart/Stop window of `convnet train --profile-steps` (host/cmd_train.cpp).
//
//   NvtxRange step("train_step");               // pushed here, popped at the end of the scope
//   NvtxRange layer(l.name, "forward");         // "conv2d_1 forward", built in a stack buffer
//
// Real NVTX (the toolkit's header-only nvtx3) in the CUDA build; a no-op in builds without CUDA and
// under the CUDA-on-CPU simulator (CONVNET_SIMT), where the CUDA headers may be absent. Without a
// tool attached, an NVTX call is a call through a function pointer that returns at once.
// Ranges are per thread and must nest: keep each NvtxRange a local of one scope.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>

#if defined(CONVNET_HAVE_CUDA) && !defined(CONVNET_SIMT)
#define CONVNET_NVTX 1
#include <nvtx3/nvToolsExt.h>
#endif

namespace convnet {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) { push(name); }
  // "<layer> <what>", truncated to 95 characters; no allocation.
  NvtxRange(const std::string& layer, const char* what) {
#ifdef CONVNET_NVTX
    char name[96];
    const size_t n = std::min(layer.size(), sizeof name - 2), m = std::min(std::strlen(what), sizeof name - 2 - n);
    std::memcpy(name, layer.data(), n);
    name[n] = ' ';
    std::memcpy(name + n + 1, what, m);
    name[n + 1 + m] = '\0';
    push(name);
#else
    (void)layer;
    (void)what;
#endif
  }
  ~NvtxRange() {
#ifdef CONVNET_NVTX
    nvtxRangePop();
#endif
  }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;

 private:
  static void push(const char* name) {
#ifdef CONVNET_NVTX
    nvtxRangePushA(name);
#else
    (void)name;
#endif
  }
};

// cudaProfilerStart / cudaProfilerStop (host/gpu_profile.cpp, CUDA build only): with
// `ncu --profile-from-start off` or `nsys profile --capture-range=cudaProfilerApi` only the work
// between them is profiled.
void cuda_profiler_start();
void cuda_profiler_stop();

}  // namespace convnet
