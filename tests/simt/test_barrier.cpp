// Block barriers, shared memory and the fast-path decision: a kernel that is wrong without its
// __syncthreads fails and passes with it (in every thread order), barrier reductions, divergent
// barriers and deadlocks are reported.
#include <numeric>
#include <random>

#include "simt_test_util.h"

namespace {

// out[i] = in[left neighbour] + in[right neighbour] within the block, staged through dynamic shared
// memory. Without the barrier, the first thread to run reads neighbours nobody has written yet.
template <bool kSync>
__global__ void neighbours_dynamic_kernel(const float* in, float* out) {
  DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x, n = blockDim.x;
  s[t] = in[blockIdx.x * n + t];
  if (kSync) __syncthreads();
  out[blockIdx.x * n + t] = s[(t + n - 1) % n] + s[(t + 1) % n];
}

// The same with static shared memory (not re-poisoned per block: stale values from the previous block
// or launch are wrong for fresh random input).
template <bool kSync>
__global__ void neighbours_static_kernel(const float* in, float* out) {
  __shared__ float s[128];
  const unsigned t = threadIdx.x, n = blockDim.x;
  s[t] = in[blockIdx.x * n + t];
  if (kSync) __syncthreads();
  out[blockIdx.x * n + t] = s[(t + n - 1) % n] + s[(t + 1) % n];
}

std::vector<float> neighbours_reference(const std::vector<float>& in, unsigned block) {
  std::vector<float> out(in.size());
  for (size_t b = 0; b < in.size() / block; ++b)
    for (unsigned t = 0; t < block; ++t)
      out[b * block + t] = in[b * block + (t + block - 1) % block] + in[b * block + (t + 1) % block];
  return out;
}

template <typename Kernel>
bool neighbours_match(Kernel kernel, size_t shmem, uint32_t seed) {
  const unsigned block = 128, blocks = 5;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> in(block * blocks);
  for (auto& v : in) v = dist(rng);
  DeviceArray<float> d_in(in), d_out(in.size());
  d_out.poison();
  convnet::launch("neighbours", kernel, dim3(blocks), dim3(block), shmem, nullptr, d_in.get(), d_out.get());
  return d_out.download() == neighbours_reference(in, block);
}

TEST(Barrier, MissingSyncthreadsFailsInEveryOrder) {
  uint32_t seed = 1;
  for (const auto& order : all_orders()) {
    simt::ScopedThreadOrder scoped(order);
    SCOPED_TRACE(order.name());
    EXPECT_FALSE(neighbours_match(neighbours_dynamic_kernel<false>, 128 * sizeof(float), seed++));
    EXPECT_FALSE(neighbours_match(neighbours_static_kernel<false>, 0, seed++));
    EXPECT_TRUE(neighbours_match(neighbours_dynamic_kernel<true>, 128 * sizeof(float), seed++));
    EXPECT_TRUE(neighbours_match(neighbours_static_kernel<true>, 0, seed++));
  }
}

// Classic shared-memory reversal with several barriers in a loop (each round reverses in place).
__global__ void reverse_rounds_kernel(int* data, int rounds) {
  __shared__ int s[256];
  const unsigned t = threadIdx.x, n = blockDim.x;
  s[t] = data[blockIdx.x * n + t];
  __syncthreads();
  for (int r = 0; r < rounds; ++r) {
    const int v = s[n - 1 - t];
    __syncthreads();
    s[t] = v;
    __syncthreads();
  }
  data[blockIdx.x * n + t] = s[t];
}

TEST(Barrier, BarrierInsideLoop) {
  const unsigned n = 256, blocks = 3;
  std::vector<int> host(n * blocks);
  std::iota(host.begin(), host.end(), 0);
  for (int rounds : {0, 1, 2, 5}) {
    DeviceArray<int> d(host);
    convnet::launch("reverse_rounds_kernel", reverse_rounds_kernel, dim3(blocks), dim3(n), 0, nullptr, d.get(), rounds);
    std::vector<int> got = d.download();
    for (unsigned b = 0; b < blocks; ++b)
      for (unsigned t = 0; t < n; ++t)
        ASSERT_EQ(got[b * n + t], static_cast<int>(b * n + (rounds % 2 ? n - 1 - t : t))) << "rounds " << rounds;
  }
}

__global__ void barrier_reductions_kernel(const int* pred, int* out) {
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned n = blockDim.x * blockDim.y * blockDim.z;
  const unsigned g = blockIdx.x * n + t;
  out[3 * g + 0] = __syncthreads_count(pred[g]);
  out[3 * g + 1] = __syncthreads_and(pred[g]);
  out[3 * g + 2] = __syncthreads_or(pred[g]);
}

TEST(Barrier, CountAndOr) {
  const dim3 block(8, 3, 2);
  const unsigned n = 48, blocks = 4;
  // Block 0: mixed, block 1: all true, block 2: all false, block 3: one true.
  std::vector<int> pred(n * blocks, 0);
  for (unsigned t = 0; t < n; ++t) {
    pred[t] = (t * 7) % 3 == 0 ? 5 : 0;  // non-zero predicates other than 1 count as true
    pred[n + t] = 1;
  }
  pred[3 * n + 17] = 1;
  DeviceArray<int> d_pred(pred), d_out(3 * n * blocks);
  convnet::launch("barrier_reductions_kernel", barrier_reductions_kernel, dim3(blocks), block, 0, nullptr,
                  d_pred.get(), d_out.get());
  std::vector<int> out = d_out.download();
  for (unsigned b = 0; b < blocks; ++b) {
    int count = 0;
    for (unsigned t = 0; t < n; ++t) count += pred[b * n + t] != 0;
    for (unsigned t = 0; t < n; ++t) {
      const unsigned g = b * n + t;
      EXPECT_EQ(out[3 * g + 0], count) << "block " << b;
      EXPECT_EQ(out[3 * g + 1], count == static_cast<int>(n) ? 1 : 0) << "block " << b;
      EXPECT_EQ(out[3 * g + 2], count > 0 ? 1 : 0) << "block " << b;
    }
  }
}

// Reaches its barrier only in block `sync_block` (uniformly there), so the launch takes the fiber path
// only for that block; -1 means no block waits.
__global__ void sometimes_sync_kernel(int* out, int sync_block) {
  __shared__ int s[64];
  const unsigned t = threadIdx.x;
  s[t] = static_cast<int>(t);
  if (static_cast<int>(blockIdx.x) == sync_block) __syncthreads();
  out[blockIdx.x * blockDim.x + t] = s[t];
}

TEST(Barrier, FastPathIsDecidedPerLaunchAndBlock) {
  DeviceArray<int> out(64 * 6);
  auto run = [&](int sync_block) {
    convnet::launch("sometimes_sync_kernel", sometimes_sync_kernel, dim3(6), dim3(64), 0, nullptr, out.get(), sync_block);
    return simt::last_launch_stats();
  };
  simt::LaunchStats fast = run(-1);
  EXPECT_EQ(fast.blocks, 6u);
  EXPECT_EQ(fast.threads, 6u * 64);
  EXPECT_EQ(fast.waiting_blocks, 0u);
  EXPECT_EQ(fast.waits, 0u);
  EXPECT_EQ(fast.switches, 2u * 6);  // into one runner fiber per block and back, nothing per thread
  simt::LaunchStats slow = run(3);
  EXPECT_EQ(slow.waiting_blocks, 1u);
  EXPECT_EQ(slow.waits, 63u);  // the last thread to arrive does not wait
  EXPECT_EQ(run(-1).waiting_blocks, 0u);  // nothing is cached per kernel
  std::vector<int> got = out.download();
  for (unsigned i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], static_cast<int>(i % 64));
}

// Every block sees NaN bytes in dynamic shared memory before it writes (not the previous block's data).
__global__ void dynamic_shared_poison_kernel(float* seen) {
  DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  seen[blockIdx.x * blockDim.x + t] = s[t];
  __syncthreads();
  s[t] = 1.0f;
}

TEST(SharedMemory, DynamicSharedIsPoisonedForEveryBlock) {
  const unsigned block = 32, blocks = 4;
  DeviceArray<float> seen(block * blocks);
  convnet::launch("dynamic_shared_poison_kernel", dynamic_shared_poison_kernel, dim3(blocks), dim3(block),
                  block * sizeof(float), nullptr, seen.get());
  for (float v : seen.download()) EXPECT_TRUE(is_poison(v));
}

// Static __shared__ is one array shared by the threads of a block, written by one thread, read by all.
__global__ void static_shared_broadcast_kernel(const int* in, int* out) {
  __shared__ int value;
  if (threadIdx.x == 0) value = in[blockIdx.x];
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = value;
}

TEST(SharedMemory, StaticSharedIsSharedWithinTheBlock) {
  std::vector<int> in = {3, 1, 4, 1, 5};
  DeviceArray<int> d_in(in), d_out(in.size() * 96);
  convnet::launch("static_shared_broadcast_kernel", static_shared_broadcast_kernel, dim3(5), dim3(96), 0, nullptr,
                  d_in.get(), d_out.get());
  std::vector<int> out = d_out.download();
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], in[i / 96]);
}

__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 32)
    __syncthreads();
  else
    __syncthreads();
  out[threadIdx.x] = 1;
}

TEST(Barrier, DivergentBarriersAreALaunchFailure) {
  DeviceArray<int> out(64);
  const std::string msg = thrown_message([&] {
    convnet::launch("divergent_barrier_kernel", divergent_barrier_kernel, dim3(1), dim3(64), 0, nullptr, out.get());
  });
  EXPECT_NE(msg.find("cudaErrorLaunchFailure"), std::string::npos) << msg;
  EXPECT_NE(msg.find("divergent barriers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("divergent_barrier_kernel"), std::string::npos) << msg;
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// The classic bug: threads past the end return before a barrier the others wait at.
__global__ void early_return_kernel(float* data, int n) {
  __shared__ float s[256];
  const int i = static_cast<int>(threadIdx.x);
  if (i >= n) return;
  s[i] = data[i];
  __syncthreads();
  data[i] = s[n - 1 - i];
}

TEST(BarrierDeathTest, EarlyReturnBeforeBarrierIsADeadlock) {
  DeviceArray<float> data(256);
  EXPECT_DEATH(convnet::launch("early_return_kernel", early_return_kernel, dim3(1), dim3(256), 0, nullptr,
                               data.get(), 200),
               "deadlock in kernel 'early_return_kernel'.*200 of 256 threads wait at __syncthreads\\(\\) at "
               ".*test_barrier.cpp:[0-9]+.*56 of 256 threads have exited");
}

// Half a warp waits in a shuffle for lanes that wait at a barrier for the first half: nobody can move.
__global__ void warp_barrier_deadlock_kernel(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x < 16)
    v = __shfl_sync(0xffffffffu, v, 31);
  else
    __syncthreads();
  out[threadIdx.x] = v;
}

TEST(BarrierDeathTest, WarpOperationAgainstBarrierIsADeadlock) {
  DeviceArray<int> out(32);
  EXPECT_DEATH(convnet::launch("warp_barrier_deadlock_kernel", warp_barrier_deadlock_kernel, dim3(1), dim3(32), 0,
                               nullptr, out.get()),
               "deadlock in kernel 'warp_barrier_deadlock_kernel'.*16 of 32 threads wait at __shfl_sync\\(mask "
               "0xffffffff\\) in warp 0.*16 of 32 threads wait at __syncthreads\\(\\)");
}

TEST(Barrier, OutsideAKernelIsAnError) { EXPECT_THROW(__syncthreads(), std::logic_error); }

}  // namespace
