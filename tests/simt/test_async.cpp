// Asynchronous streams (simt::ScopedAsync, SIMT_ASYNC=1): work queued on a stream runs when the host
// synchronises with it, as on a GPU. Device memory is host memory in the simulator, so these tests read
// it directly to see whether queued work has run yet.
#include <string>
#include <vector>

#include "cublas_shim.h"
#include "simt_test_util.h"

namespace {

__global__ void add_kernel(int* out, int n, int value) {
  const int stride = static_cast<int>(gridDim.x * blockDim.x);
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += stride) out[i] += value;
}

__global__ void copy_kernel(const int* in, int* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = in[i];
}

__global__ void trap_kernel() {
  if (threadIdx.x == 3) __trap();
}

void add(int* out, int n, int value, cudaStream_t stream) {
  convnet::launch("add_kernel", add_kernel, dim3(1), dim3(32), 0, stream, out, n, value);
}

TEST(Async, ScopedAsyncSetsAndRestores) {
  simt::ScopedAsync off(false);
  EXPECT_FALSE(simt::async());
  {
    simt::ScopedAsync on(true);
    EXPECT_TRUE(simt::async());
  }
  EXPECT_FALSE(simt::async());
}

TEST(Async, KernelsAndCopiesRunWhenTheHostSynchronises) {
  simt::ScopedAsync on(true);
  Stream stream;
  DeviceArray<int> out(std::vector<int>(4, 0));
  Pinned<int> host(4);
  for (int i = 0; i < 4; ++i) host.get()[i] = -1;
  add(out.get(), 4, 5, stream.get());
  CUDA_CHECK(cudaMemcpyAsync(host.get(), out.get(), 4 * sizeof(int), cudaMemcpyDeviceToHost, stream.get()));
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(out.get()[0], 0) << "the kernel ran at its launch";
  EXPECT_EQ(host.get()[0], -1) << "the copy ran at its call";
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  EXPECT_EQ(out.get()[3], 5);
  EXPECT_EQ(host.get()[3], 5);
}

TEST(Async, APinnedSourceIsReadWhenTheCopyRunsAPageableOneAtTheCall) {
  simt::ScopedAsync on(true);
  Stream stream;
  DeviceArray<int> a(std::vector<int>{0}), b(std::vector<int>{0});
  Pinned<int> pinned(1);
  std::vector<int> pageable{1};
  *pinned.get() = 1;
  CUDA_CHECK(cudaMemcpyAsync(a.get(), pinned.get(), sizeof(int), cudaMemcpyHostToDevice, stream.get()));
  CUDA_CHECK(cudaMemcpyAsync(b.get(), pageable.data(), sizeof(int), cudaMemcpyHostToDevice, stream.get()));
  *pinned.get() = 2;  // a race on a GPU: the copy may not have read it yet
  pageable[0] = 2;    // staged by the call already
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  EXPECT_EQ(a.get()[0], 2);
  EXPECT_EQ(b.get()[0], 1);
}

TEST(Async, ACopyToPageableMemoryReturnsWhenDone) {
  simt::ScopedAsync on(true);
  Stream stream;
  DeviceArray<int> out(std::vector<int>(2, 0));
  add(out.get(), 2, 7, stream.get());
  std::vector<int> pageable(2, -1);
  CUDA_CHECK(cudaMemcpyAsync(pageable.data(), out.get(), 2 * sizeof(int), cudaMemcpyDeviceToHost, stream.get()));
  EXPECT_EQ(pageable, (std::vector<int>{7, 7}));
}

TEST(Async, TheLegacyStreamWaitsForBlockingStreamsOnly) {
  simt::ScopedAsync on(true);
  Stream blocking, non_blocking(cudaStreamNonBlocking);
  DeviceArray<int> x(std::vector<int>{0}), y(std::vector<int>{0});
  add(x.get(), 1, 3, blocking.get());
  add(y.get(), 1, 4, non_blocking.get());
  EXPECT_EQ(x.download(), std::vector<int>{3}) << "cudaMemcpy waits for a blocking stream's work";
  EXPECT_EQ(y.download(), std::vector<int>{0}) << "but not for a non-blocking stream's";
  CUDA_CHECK(cudaStreamSynchronize(non_blocking.get()));
  EXPECT_EQ(y.download(), std::vector<int>{4});
  // And a blocking stream's work waits for the legacy stream's earlier work.
  add(x.get(), 1, 10, nullptr);
  CUDA_CHECK(cudaMemcpyAsync(y.get(), x.get(), sizeof(int), cudaMemcpyDeviceToDevice, blocking.get()));
  CUDA_CHECK(cudaStreamSynchronize(blocking.get()));
  EXPECT_EQ(y.get()[0], 13);
}

TEST(Async, TwoBlockingStreamsAreOrderedOnlyByAnEvent) {
  simt::ScopedAsync on(true);
  Stream producer, consumer;
  DeviceArray<int> x(std::vector<int>{1}), y(std::vector<int>{0});
  add(x.get(), 1, 1, producer.get());
  convnet::launch("copy_kernel", copy_kernel, dim3(1), dim3(32), 0, consumer.get(), x.get(), y.get(), 1);
  CUDA_CHECK(cudaStreamSynchronize(consumer.get()));
  EXPECT_EQ(y.get()[0], 1) << "the consumer ran before the producer's queued work";
  CUDA_CHECK(cudaStreamSynchronize(producer.get()));
  cudaEvent_t produced = nullptr;
  CUDA_CHECK(cudaEventCreate(&produced));
  add(x.get(), 1, 1, producer.get());
  CUDA_CHECK(cudaEventRecord(produced, producer.get()));
  CUDA_CHECK(cudaStreamWaitEvent(consumer.get(), produced, 0));
  convnet::launch("copy_kernel", copy_kernel, dim3(1), dim3(32), 0, consumer.get(), x.get(), y.get(), 1);
  CUDA_CHECK(cudaStreamSynchronize(consumer.get()));
  EXPECT_EQ(y.get()[0], 3);
  CUDA_CHECK(cudaEventDestroy(produced));
}

TEST(Async, AFaultIsReportedAtTheSynchronisingCallAndDropsTheQueuedWork) {
  simt::ScopedAsync on(true);
  Stream stream;
  DeviceArray<int> out(std::vector<int>{0});
  convnet::launch("trap_kernel", trap_kernel, dim3(2), dim3(32), 0, stream.get());  // does not throw
  add(out.get(), 1, 1, stream.get());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  const cudaError_t e = cudaStreamSynchronize(stream.get());
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  const std::string text = cudaGetErrorString(e);
  EXPECT_NE(text.find("trap_kernel"), std::string::npos) << text;
  EXPECT_NE(text.find("__trap()"), std::string::npos) << text;
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(out.get()[0], 0) << "work queued after the fault ran";
  EXPECT_EQ(cudaStreamSynchronize(stream.get()), cudaSuccess);
  // A bad configuration is still an error at the launch.
  EXPECT_THROW(convnet::launch("trap_kernel", trap_kernel, dim3(1), dim3(2048), 0, stream.get()), std::runtime_error);
  EXPECT_EQ(cudaStreamSynchronize(stream.get()), cudaSuccess);
}

TEST(Async, EventsAreStampedWhenTheirWorkRuns) {
  simt::ScopedAsync on(true);
  Stream stream;
  DeviceArray<int> out(std::vector<int>(1 << 12, 0));
  cudaEvent_t start = nullptr, stop = nullptr;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaEventRecord(start, stream.get()));
  add(out.get(), 1 << 12, 1, stream.get());
  CUDA_CHECK(cudaEventRecord(stop, stream.get()));
  float ms = -1.0f;
  EXPECT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaErrorNotReady);
  EXPECT_EQ(cudaGetLastError(), cudaErrorNotReady);
  EXPECT_EQ(cudaEventQuery(stop), cudaErrorNotReady);  // and now it has run
  EXPECT_EQ(cudaEventQuery(stop), cudaSuccess);
  EXPECT_EQ(out.get()[4095], 1);
  CUDA_CHECK(cudaEventSynchronize(stop));
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  EXPECT_GE(ms, 0.0f);
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
}

TEST(Async, GraphLaunchesAndGemmsAreQueuedAndFreeingSynchronises) {
  Stream stream;
  DeviceArray<int> out(std::vector<int>{0});
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  add(out.get(), 1, 2, stream.get());
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(h, stream.get()), CUBLAS_STATUS_SUCCESS);
  DeviceArray<float> a(std::vector<float>{1, 2, 3, 4}), b(std::vector<float>{1, 0, 0, 1}), c(4);
  c.poison();
  simt::ScopedAsync on(true);
  CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
  const float alpha = 2.0f, beta = 0.0f;
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &alpha, a.get(), 2, b.get(), 2, &beta, c.get(), 2),
            CUBLAS_STATUS_SUCCESS);  // queued: no workspace needed, unlike a capture
  EXPECT_EQ(out.get()[0], 0);
  EXPECT_TRUE(is_poison(c.get()[0]));
  void* other = nullptr;
  CUDA_CHECK(cudaMalloc(&other, 4));
  CUDA_CHECK(cudaFree(other));  // cudaFree synchronises the device
  EXPECT_EQ(out.get()[0], 2);
  EXPECT_EQ(c.get()[3], 8.0f);
  ASSERT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  CUDA_CHECK(cudaGraphDestroy(graph));
}

TEST(Async, SimulatorQueriesAndTurningItOffRunTheQueuedWork) {
  Stream stream;
  DeviceArray<int> out(std::vector<int>{0});
  {
    simt::ScopedAsync on(true);
    simt::ScopedLaunchLog log;
    convnet::launch("add_kernel", add_kernel, dim3(3), dim3(32), 0, stream.get(), out.get(), 1, 1);
    EXPECT_EQ(out.get()[0], 0);
    ASSERT_EQ(log.records().size(), 1u);
    EXPECT_EQ(log.records()[0].name, "add_kernel");
    EXPECT_EQ(out.get()[0], 1);
    add(out.get(), 1, 1, stream.get());
    EXPECT_EQ(simt::last_launch_stats().blocks, 1u);
    EXPECT_EQ(out.get()[0], 2);
    add(out.get(), 1, 1, stream.get());
  }
  EXPECT_EQ(out.get()[0], 3);
}

}  // namespace
