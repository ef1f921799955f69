// The runtime around the kernels: launch-configuration errors and kernel faults reported through the
// same check as on a GPU, memory shims, streams and events, device properties, launch counters.
#include <stdexcept>

#include "simt_test_util.h"

namespace {

__global__ void fill_kernel(int* out, int value) { out[blockIdx.x * blockDim.x + threadIdx.x] = value; }

std::string launch_message(dim3 grid, dim3 block, size_t shmem = 0) {
  DeviceArray<int> out(4096);
  return thrown_message(
      [&] { convnet::launch("fill_kernel", fill_kernel, grid, block, shmem, nullptr, out.get(), 1); });
}

TEST(LaunchErrors, BadConfigurationsAreReportedLikeAGpu) {
  struct Case {
    dim3 grid, block;
    const char* why;
  };
  for (const Case& c : {Case{dim3(1), dim3(1025), "block dimensions exceed"},
                        Case{dim3(1), dim3(32, 32, 2), "more than 1024 threads per block"},
                        Case{dim3(1), dim3(1, 1, 65), "block dimensions exceed"},
                        Case{dim3(0), dim3(32), "a dimension is zero"},
                        Case{dim3(4, 0, 1), dim3(32), "a dimension is zero"},
                        Case{dim3(1), dim3(0, 1, 1), "a dimension is zero"},
                        Case{dim3(1, 65536, 1), dim3(1), "grid dimensions exceed"}}) {
    const std::string msg = launch_message(c.grid, c.block);
    EXPECT_NE(msg.find("cudaErrorInvalidConfiguration"), std::string::npos) << msg;
    EXPECT_NE(msg.find("invalid configuration argument"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.why), std::string::npos) << msg;
    EXPECT_NE(msg.find("fill_kernel"), std::string::npos) << msg;
  }
  // The error was consumed by the launch check: the next launch is clean.
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(launch_message(dim3(2), dim3(1024)), "");
}

__global__ void big_shared_kernel(int* out, int n) {
  DYNAMIC_SHARED(int, s);
  for (int i = static_cast<int>(threadIdx.x); i < n; i += static_cast<int>(blockDim.x)) s[i] = i;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = s[n - 1];
}

TEST(LaunchErrors, TooMuchDynamicSharedMemory) {
  DeviceArray<int> out(1);
  const int n = 64 * 1024 / 4;
  auto run = [&] {
    convnet::launch("big_shared_kernel", big_shared_kernel, dim3(1), dim3(128), n * sizeof(int), nullptr, out.get(), n);
  };
  const std::string msg = thrown_message(run);
  EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;
  EXPECT_NE(msg.find("65536 bytes of dynamic shared memory exceed the kernel's limit of 49152"), std::string::npos)
      << msg;
  CUDA_CHECK(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024));
  EXPECT_EQ(thrown_message(run), "");
  EXPECT_EQ(out.download()[0], n - 1);
  EXPECT_EQ(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 300 * 1024),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

// One thread throws while the rest of its block waits at a barrier.
__global__ void throwing_kernel(int* out) {
  if (blockIdx.x == 2 && threadIdx.x == 5) throw std::out_of_range("index 99 past the end");
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

__global__ void barrier_sum_kernel(const int* in, int* out) {
  __shared__ int s[64];
  s[threadIdx.x] = in[threadIdx.x];
  __syncthreads();
  int sum = 0;
  for (int i = 0; i < 64; ++i) sum += s[i];
  out[threadIdx.x] = sum;
}

void expect_barrier_kernel_works() {
  std::vector<int> in(64);
  for (int i = 0; i < 64; ++i) in[i] = i;
  DeviceArray<int> d_in(in), d_out(64);
  convnet::launch("barrier_sum_kernel", barrier_sum_kernel, dim3(3), dim3(64), 0, nullptr, d_in.get(), d_out.get());
  for (int v : d_out.download()) EXPECT_EQ(v, 64 * 63 / 2);
}

TEST(KernelFaults, ExceptionIsReportedWithKernelBlockAndThread) {
  DeviceArray<int> out(4 * 64);
  const std::string msg = thrown_message(
      [&] { convnet::launch("throwing_kernel", throwing_kernel, dim3(4), dim3(64), 0, nullptr, out.get()); });
  EXPECT_NE(msg.find("cudaErrorLaunchFailure"), std::string::npos) << msg;
  EXPECT_NE(msg.find("kernel 'throwing_kernel' block (2,0,0) thread (5,0,0)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("std::out_of_range: index 99 past the end"), std::string::npos) << msg;
  // The waiting threads were abandoned; their stacks are reused cleanly by the next launches.
  expect_barrier_kernel_works();
  expect_barrier_kernel_works();
}

__global__ void trap_kernel(int* out) {
  if (threadIdx.x == 3) __trap();
  out[threadIdx.x] = 1;
}

TEST(KernelFaults, TrapFailsTheLaunch) {
  DeviceArray<int> out(8);
  const std::string msg =
      thrown_message([&] { convnet::launch("trap_kernel", trap_kernel, dim3(1), dim3(8), 0, nullptr, out.get()); });
  EXPECT_NE(msg.find("__trap() at"), std::string::npos) << msg;
  EXPECT_NE(msg.find("thread (3,0,0)"), std::string::npos) << msg;
}

TEST(KernelFaults, SynchronisingCallsReportAFaultUntilItIsRead) {
  DeviceArray<int> out(8);
  simt::launch_kernel("trap_kernel", trap_kernel, dim3(1), dim3(8), 0, nullptr, out.get());  // unchecked
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

TEST(KernelFaults, SyncLaunchOptionStillReportsTheKernel) {
  convnet::set_sync_launches(true);
  DeviceArray<int> out(8);
  const std::string msg =
      thrown_message([&] { convnet::launch("trap_kernel", trap_kernel, dim3(1), dim3(8), 0, nullptr, out.get()); });
  convnet::set_sync_launches(false);
  EXPECT_NE(msg.find("launch of trap_kernel"), std::string::npos) << msg;
}

#if defined(__SANITIZE_ADDRESS__)
__global__ void overrun_kernel(float* out, int n) { out[n + static_cast<int>(threadIdx.x)] = 1.0f; }

TEST(KernelFaultsDeathTest, OutOfBoundsWriteIsCaughtByAddressSanitizer) {
  DeviceArray<float> out(10);
  EXPECT_DEATH(convnet::launch("overrun_kernel", overrun_kernel, dim3(1), dim3(2), 0, nullptr, out.get(), 10),
               "heap-buffer-overflow");
}
#else
TEST(KernelFaultsDeathTest, OutOfBoundsWriteIsCaughtByAddressSanitizer) {
  GTEST_SKIP() << "needs AddressSanitizer: the CONVNET_SANITIZE=ON build runs this test";
}
#endif

TEST(Memory, MallocIsPoisonedAndCopiesAreChecked) {
  int* d = nullptr;
  CUDA_CHECK(cudaMalloc(&d, 10 * sizeof(int)));
  std::vector<int> host(10, 7);
  CUDA_CHECK(cudaMemcpy(host.data(), d, 10 * sizeof(int), cudaMemcpyDeviceToHost));
  for (int v : host) EXPECT_EQ(v, -1);  // 0xFF bytes
  std::vector<int> ones(10, 1);
  CUDA_CHECK(cudaMemcpy(d, ones.data(), 10 * sizeof(int), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemset(d + 2, 0, 3 * sizeof(int)));
  CUDA_CHECK(cudaMemcpy(d + 8, d, 2 * sizeof(int), cudaMemcpyDeviceToDevice));
  CUDA_CHECK(cudaMemcpyAsync(host.data(), d, 10 * sizeof(int), cudaMemcpyDeviceToHost, nullptr));
  EXPECT_EQ(host, (std::vector<int>{1, 1, 0, 0, 0, 1, 1, 1, 1, 1}));
  // Swapped direction, overrun, stray pointers: errors, not silent copies.
  EXPECT_EQ(cudaMemcpy(host.data(), d, 4, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_NE(std::string(cudaGetErrorString(cudaErrorInvalidValue)).find("destination is not inside"), std::string::npos);
  EXPECT_EQ(cudaMemcpy(d, host.data(), 11 * sizeof(int), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(host.data(), 0, 4), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  CUDA_CHECK(cudaFree(d));
  CUDA_CHECK(cudaFree(nullptr));
  void* empty = reinterpret_cast<void*>(1);
  CUDA_CHECK(cudaMalloc(&empty, 0));
  EXPECT_EQ(empty, nullptr);
}

TEST(Memory, CudaCheckNamesExpressionFileAndError) {
  int local = 0;
  const std::string msg = thrown_message([&] { CUDA_CHECK(cudaFree(&local)); });
  EXPECT_NE(msg.find("test_runtime.cpp:"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cudaErrorInvalidValue (invalid argument"), std::string::npos) << msg;
  EXPECT_NE(msg.find("`cudaFree(&local)`"), std::string::npos) << msg;
}

__device__ int g_device_counter;
__constant__ float g_constants[4];

__global__ void symbols_kernel(float* out) {
  out[threadIdx.x] = g_constants[threadIdx.x];
  atomicAdd(&g_device_counter, 1);
}

TEST(Memory, SymbolsAndStreams) {
  const float c[4] = {1, 2, 3, 4};
  const int zero = 0;
  CUDA_CHECK(cudaMemcpyToSymbol(g_constants, c, sizeof c));
  CUDA_CHECK(cudaMemcpyToSymbol(g_device_counter, &zero, sizeof zero));
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  DeviceArray<float> out(4);
  convnet::launch("symbols_kernel", symbols_kernel, dim3(1), dim3(4), 0, stream, out.get());
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaStreamDestroy(stream));
  EXPECT_EQ(out.download(), (std::vector<float>{1, 2, 3, 4}));
  int count = 0;
  CUDA_CHECK(cudaMemcpyFromSymbol(&count, g_device_counter, sizeof count));
  EXPECT_EQ(count, 4);
  EXPECT_EQ(cudaMemcpyToSymbol(g_constants, c, sizeof c, 4), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // symbol errors are returned, not recorded
}

TEST(Events, TimingWorksAndSaysItIsMeaningless) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaEventRecord(start));
  CUDA_CHECK(cudaEventRecord(stop));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = -1.0f;
  testing::internal::CaptureStderr();
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_GE(ms, 0.0f);
  // Printed once per process, so only check the text when this call printed it.
  if (!err.empty()) {
    EXPECT_NE(err.find("says nothing about GPU time"), std::string::npos) << err;
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
}

TEST(Device, AFakeDeviceNamedAsSuch) {
  int count = 0;
  CUDA_CHECK(cudaGetDeviceCount(&count));
  EXPECT_EQ(count, 1);
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  EXPECT_NE(std::string(prop.name).find("simulator (not a GPU)"), std::string::npos) << prop.name;
  EXPECT_EQ(prop.warpSize, 32);
  EXPECT_EQ(prop.maxThreadsPerBlock, 1024);
  EXPECT_EQ(prop.sharedMemPerBlock, 48u * 1024);
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidDevice);
  CUDA_CHECK(cudaSetDevice(0));
  CUDA_CHECK(cudaDeviceSynchronize());
}

TEST(Counters, EveryLaunchIsCounted) {
  DeviceArray<int> out(64);
  const uint64_t sim_before = simt::launch_count(), ours_before = convnet::kernel_launch_count();
  for (int i = 0; i < 3; ++i)
    convnet::launch("fill_kernel", fill_kernel, dim3(2), dim3(32), 0, nullptr, out.get(), i);
  EXPECT_EQ(simt::launch_count() - sim_before, 3u);
  EXPECT_EQ(convnet::kernel_launch_count() - ours_before, 3u);
}

// The launch log records each launch's configuration, rejected ones too; an inner log takes over
// and gives the outer one back when it ends.
TEST(Counters, TheLaunchLogRecordsConfigurationsAndNests) {
  DeviceArray<int> out(4096);
  simt::ScopedLaunchLog outer;
  convnet::launch("fill_kernel", fill_kernel, dim3(3), dim3(64), 16, nullptr, out.get(), 1);
  {
    simt::ScopedLaunchLog inner;
    EXPECT_NE(launch_message(dim3(1), dim3(2048)), "");
    ASSERT_EQ(inner.records().size(), 1u);
    EXPECT_EQ(inner.records()[0].block.x, 2048u);
  }
  convnet::launch("fill_kernel", fill_kernel, dim3(1, 2, 1), dim3(8, 4, 1), 0, nullptr, out.get(), 2);
  ASSERT_EQ(outer.records().size(), 2u);
  const simt::LaunchRecord& a = outer.records()[0];
  const simt::LaunchRecord& b = outer.records()[1];
  EXPECT_EQ(a.name, "fill_kernel");
  EXPECT_EQ(a.grid.x, 3u);
  EXPECT_EQ(a.block.x, 64u);
  EXPECT_EQ(a.shmem, 16u);
  EXPECT_EQ(b.grid.y, 2u);
  EXPECT_EQ(b.block.x * b.block.y * b.block.z, 32u);
}

TEST(Launch, GridForCapsAndScopedCapRestores) {
  EXPECT_EQ(convnet::grid_for(1, 256), 1u);
  EXPECT_EQ(convnet::grid_for(257, 256), 2u);
  EXPECT_EQ(convnet::grid_for(0, 256), 1u);
  EXPECT_EQ(convnet::grid_for(size_t{1} << 40, 256), convnet::kDefaultGridCap);
  {
    convnet::ScopedGridCap cap(3);
    EXPECT_EQ(convnet::grid_for(100000, 256), 3u);
  }
  EXPECT_EQ(convnet::grid_cap(), convnet::kDefaultGridCap);
}

TEST(Fibers, SwitchCostIsMeasurable) {
  const double ns = simt::measure_switch_ns(1000);
  EXPECT_GT(ns, 0.0);
  EXPECT_LT(ns, 100000.0);
}

}  // namespace
