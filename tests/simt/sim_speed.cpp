// simt_bench: speed of the CUDA-on-CPU simulator (bench/sim_speed.sh runs it and records the numbers).
//
//   raw fiber switch          ping-pong between two fibers (ns per switch), and the same with
//                             ucontext's swapcontext for comparison (it makes a system call per switch)
//   barrier-free 1M threads   y = a*x + b, 4096 blocks x 256 threads: the fast path, no per-thread fiber
//   same kernel, fibers       the identical work with one __syncthreads per thread: every thread waits
//   block reduction           1024 blocks x 256 threads, shared-memory tree + warp-shuffle stage
// Each result is validated before it is timed; the program exits non-zero on a mismatch. Reported:
// median and min..max over the repetitions, steady-state host clock, after one warm-up launch.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <ucontext.h>

#include "cuda_check.h"
#include "device_array.h"
#include "launch.h"

namespace {

template <bool kBarrier>
__global__ void axpb_kernel(const float* x, float* y, float a, float b, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (kBarrier) __syncthreads();
  if (i < n) y[i] = a * x[i] + b;
}

__global__ void block_sum_kernel(const float* x, float* partial) {
  DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  s[t] = x[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride >= 32; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t < 32) {
    float v = s[t];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(offset));
    if (t == 0) partial[blockIdx.x] = v;
  }
}

#if !defined(__SANITIZE_ADDRESS__)
ucontext_t g_main_ctx, g_peer_ctx;
void ucontext_peer() {
  for (;;) swapcontext(&g_peer_ctx, &g_main_ctx);
}

double ucontext_switch_ns(int round_trips) {
  static std::vector<char> stack(64 * 1024);
  getcontext(&g_peer_ctx);
  g_peer_ctx.uc_stack.ss_sp = stack.data();
  g_peer_ctx.uc_stack.ss_size = stack.size();
  g_peer_ctx.uc_link = nullptr;
  makecontext(&g_peer_ctx, ucontext_peer, 0);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < round_trips; ++i) swapcontext(&g_main_ctx, &g_peer_ctx);
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / (2.0 * round_trips);
}
#endif

struct Timing {
  double median, min, max;
};

Timing time_it(int reps, const std::function<void()>& fn) {
  fn();  // warm-up: fiber stacks mapped, caches warm
  std::vector<double> s;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return {s[s.size() / 2], s.front(), s.back()};
}

void print(const char* what, const Timing& t, const char* target) {
  std::printf("%-44s median %8.4f s  (min %.4f, max %.4f)  %s\n", what, t.median, t.min, t.max, target);
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "simt_bench: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 7;
  const int n = 4096 * 256, block = 256;
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 1000) * 0.001f;
  DeviceArray<float> d_x(x), d_y(n), partial(1024);

  const double switch_ns = simt::measure_switch_ns(2000000);
  std::printf("%-44s %8.2f ns per switch\n", "raw fiber switch (simulator's)", switch_ns);
#if !defined(__SANITIZE_ADDRESS__)
  // Unannotated: AddressSanitizer would report the foreign stack switch.
  std::printf("%-44s %8.2f ns per switch\n", "ucontext swapcontext, for comparison", ucontext_switch_ns(200000));
#endif

  auto run_axpb = [&](auto kernel) {
    convnet::launch("axpb_kernel", kernel, dim3(n / block), dim3(block), 0, nullptr, d_x.get(), d_y.get(), 2.0f,
                    1.0f, n);
  };
  for (bool barrier : {false, true}) {
    d_y.poison();
    barrier ? run_axpb(axpb_kernel<true>) : run_axpb(axpb_kernel<false>);
    std::vector<float> y = d_y.download();
    for (int i = 0; i < n; ++i)
      if (y[i] != 2.0f * x[i] + 1.0f) fail("axpb mismatch at " + std::to_string(i));
  }
  const Timing fast = time_it(reps, [&] { run_axpb(axpb_kernel<false>); });
  if (simt::last_launch_stats().waits != 0) fail("the barrier-free kernel did not take the fast path");
  print("barrier-free kernel, 1M threads (fast path)", fast, "target < 0.1 s");
  const Timing fibers = time_it(reps, [&] { run_axpb(axpb_kernel<true>); });
  print("same kernel with a __syncthreads (fibers)", fibers, "");
  std::printf("%-44s %8.1fx\n", "fast path speed-up over fibers", fibers.median / fast.median);

  auto run_sum = [&] {
    convnet::launch("block_sum_kernel", block_sum_kernel, dim3(1024), dim3(block), block * sizeof(float), nullptr,
                    d_x.get(), partial.get());
  };
  run_sum();
  std::vector<float> p = partial.download();
  for (int b = 0; b < 1024; ++b) {
    double want = 0.0;
    for (int t = 0; t < block; ++t) want += x[b * block + t];
    if (std::fabs(p[b] - want) > 1e-3) fail("block sum mismatch in block " + std::to_string(b));
  }
  const Timing sum = time_it(reps, run_sum);
  print("block reduction, 1024 x 256 (shared + warp)", sum, "target < 0.5 s");
  const simt::LaunchStats st = simt::last_launch_stats();
  std::printf("%-44s %llu waits, %llu switches, %zu fiber stacks\n", "block reduction cost",
              static_cast<unsigned long long>(st.waits), static_cast<unsigned long long>(st.switches), st.stacks);
  return 0;
}
