// Kernel launches: the one place that turns (kernel, grid, block, shared bytes, stream, args) into a
// launch. Under nvcc it is `kernel<<<grid, block, shmem, stream>>>(args...)`; under the CUDA-on-CPU
// simulator (CONVNET_SIMT) it is the simulator's scheduler. Either way the launch is counted and then
// checked (kernels/cuda_check.h), so kernel files contain no `<<<>>>` and no unchecked launch.
//
//   convnet::launch("dropout_forward_kernel", dropout_forward_kernel, grid, block, 0, stream, x, y, n);
//
// Arguments are converted to the kernel's parameter types at the call, as `<<<>>>` does. An installed
// LaunchObserver (kernels/launch_observer.h; `convnet train --timing`) is told before and after.
// grid_for(n, block) sizes a grid-stride launch: ceil(n / block) blocks, at most grid_cap();
// tests lower the cap (ScopedGridCap) to exercise the stride loop with a deliberately small grid.
// Include only from .cu files (the nvcc branch needs the CUDA compiler).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "cuda_check.h"
#include "launch_observer.h"

namespace convnet {

// Launches made through launch() in this process (both worlds). A test can bound the number of
// launches per training step by reading it before and after.
inline std::atomic<uint64_t>& launch_counter() {
  static std::atomic<uint64_t> count{0};
  return count;
}
inline uint64_t kernel_launch_count() { return launch_counter().load(std::memory_order_relaxed); }

// 4096 blocks of 256 threads is several waves on an H100 (132 SMs x 2048 resident threads); more
// blocks only add scheduling work to a grid-stride loop.
constexpr unsigned kDefaultGridCap = 4096;
inline std::atomic<unsigned>& grid_cap_storage() {
  static std::atomic<unsigned> cap{kDefaultGridCap};
  return cap;
}
inline unsigned grid_cap() { return grid_cap_storage().load(std::memory_order_relaxed); }

// Caps grid_for() for its lifetime (tests only: a tiny grid forces every thread to stride).
class ScopedGridCap {
 public:
  explicit ScopedGridCap(unsigned cap) : saved_(grid_cap()) { grid_cap_storage().store(std::max(cap, 1u)); }
  ~ScopedGridCap() { grid_cap_storage().store(saved_); }
  ScopedGridCap(const ScopedGridCap&) = delete;
  ScopedGridCap& operator=(const ScopedGridCap&) = delete;

 private:
  unsigned saved_;
};

// Blocks for a grid-stride loop over n elements: ceil(n / block), between 1 and grid_cap().
inline unsigned grid_for(size_t n, unsigned block) {
  size_t blocks = (n + block - 1) / block;
  return static_cast<unsigned>(std::clamp<size_t>(blocks, 1, grid_cap()));
}

inline std::string launch_description(const char* name, dim3 grid, dim3 block, size_t shmem) {
  auto d3 = [](dim3 d) {
    return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
  };
  return std::string("launch of ") + name + " grid " + d3(grid) + " block " + d3(block) + " shared " +
         std::to_string(shmem) + " B";
}

template <typename... P, typename... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t shmem, cudaStream_t stream,
            A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "launch: argument count differs from the kernel's parameters");
  launch_counter().fetch_add(1, std::memory_order_relaxed);
  LaunchObserver* const observer = launch_observer();
  if (observer) observer->before_launch(name, stream);
#if defined(CONVNET_SIMT) && !defined(__CUDACC__)
  ::simt::launch_kernel(name, kernel, grid, block, shmem, stream, std::forward<A>(args)...);
#elif defined(__CUDACC__)
  kernel<<<grid, block, shmem, stream>>>(std::forward<A>(args)...);
#else
  static_assert(sizeof(kernel) == 0, "convnet::launch needs nvcc or the simulator: call it from a .cu file");
#endif
  // Before the check, which may throw: the observer always sees a before/after pair.
  if (observer) observer->after_launch(name, stream);
  if (cudaPeekAtLastError() != cudaSuccess || sync_launches())
    check_launch(launch_description(name, grid, block, shmem));
}

}  // namespace convnet
