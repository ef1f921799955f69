// One include for kernel files and GPU host code: the real CUDA runtime or the CUDA-on-CPU simulator.
//
// Every kernels/*.cu is compiled twice: by nvcc into convnet_gpu, and by g++ as C++17 into
// kernels_sim (tests/simt/CMakeLists.txt), which defines CONVNET_SIMT=1 and puts tests/simt on the
// include path. This header is the only place that chooses. The choice is CONVNET_SIMT, not
// __CUDACC__, so that g++-compiled host files of the GPU build (host/gpu_*.cpp) get the real runtime.
//
// Kernel files write CUDA as usual with three conventions, so the same text runs in both worlds:
//   - launches go through convnet::launch (kernels/launch.h), never `<<<>>>`;
//   - dynamic shared memory is declared with DYNAMIC_SHARED(T, name), never `extern __shared__`;
//   - static `__shared__` variables live inside functions (the simulator makes them `static`).
// What the simulator does and does not model: tests/simt/README.md.
#pragma once

#if defined(CONVNET_SIMT) && !defined(__CUDACC__)
#include "simt.h"
// The simulator hands every block a fresh buffer of the launch's dynamic size, filled with NaN bytes.
#define DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::simt::dynamic_shared_memory())
#else
#include <cuda_runtime.h>
// One untyped extern array (aligned for float4/double2) viewed as T: templated kernels with different
// T would otherwise declare conflicting `extern __shared__ T name[]`.
#define DYNAMIC_SHARED(T, name)                                                 \
  extern __shared__ __align__(16) unsigned char name##_dynamic_shared_bytes_[]; \
  T* name = reinterpret_cast<T*>(name##_dynamic_shared_bytes_)
#endif

#include "cuda_fwd.h"
