// Stream capture and CUDA graphs in the simulator: what a capturing stream records (kernel launches
// with their parameters by value, async copies that read pinned host memory at replay, memsets, child
// graphs, the cuBLAS shim's GEMMs), what cudaGraphLaunch replays, and every call a capture forbids:
// it fails with the runtime's error and invalidates the capture, which then ends without a graph.
#include <functional>
#include <vector>

#include "cublas_shim.h"
#include "simt_test_util.h"

namespace {

__global__ void add_kernel(int* out, int n, int value) {
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n; i += static_cast<int>(gridDim.x * blockDim.x))
    out[i] += value;
}

// out[i] = *scalar * (i + 1): reads device memory that a captured copy filled.
__global__ void scale_index_kernel(const int* scalar, int* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = *scalar * (i + 1);
}

__global__ void trap_at_kernel(int* out, int n) {
  const int i = static_cast<int>(threadIdx.x);
  if (i == 1) __trap();
  if (i < n) out[i] = 7;
}

// Ends the capture on `stream` and instantiates it; the graph itself is destroyed at once (the
// executable graph must not depend on it).
cudaGraphExec_t end_and_instantiate(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaGraphDestroy(graph));
  return exec;
}

TEST(StreamCapture, RecordsInsteadOfRunningAndReplaysInOrder) {
  Stream stream;
  DeviceArray<int> scalar(1), out(40);
  Pinned<int> host(1);
  out.poison();
  const simt::GraphStats before = simt::graph_stats();
  const uint64_t launches_before = simt::launch_count();
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  CUDA_CHECK(cudaMemcpyAsync(scalar.get(), host.get(), sizeof(int), cudaMemcpyHostToDevice, stream.get()));
  convnet::launch("scale_index_kernel", scale_index_kernel, dim3(2), dim3(32), 0, stream.get(), scalar.get(), out.get(),
                  32);
  CUDA_CHECK(cudaMemsetAsync(out.get() + 32, 0, 8 * sizeof(int), stream.get()));
  int value = 5;
  convnet::launch("add_kernel", add_kernel, dim3(1), dim3(8), 0, stream.get(), out.get() + 32, 8, value);
  value = 1000;  // the node keeps the 5 it was launched with
  cudaGraphExec_t exec = end_and_instantiate(stream.get());

  EXPECT_EQ(simt::launch_count(), launches_before) << "a captured launch ran";
  for (int v : out.download()) EXPECT_EQ(v, -1) << "a captured operation ran";
  EXPECT_EQ(simt::graph_nodes(exec), (std::vector<std::string>{"memcpy HtoD 4 B", "kernel scale_index_kernel",
                                                               "memset 32 B", "kernel add_kernel"}));
  for (int replay = 1; replay <= 3; ++replay) {
    *host.get() = 10 * replay;  // the copy node reads the pinned word when the graph runs
    CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
    CUDA_CHECK(cudaStreamSynchronize(stream.get()));
    const std::vector<int> got = out.download();
    for (int i = 0; i < 32; ++i) ASSERT_EQ(got[i], 10 * replay * (i + 1)) << "replay " << replay << " i " << i;
    for (int i = 32; i < 40; ++i) ASSERT_EQ(got[i], 5) << "replay " << replay << " i " << i;  // memset, then += 5
  }
  EXPECT_EQ(simt::launch_count(), launches_before + 6);
  const simt::GraphStats after = simt::graph_stats();
  EXPECT_EQ(after.captures, before.captures + 1);
  EXPECT_EQ(after.launches, before.launches + 3);
  EXPECT_EQ(after.graphs_live, before.graphs_live);
  EXPECT_EQ(after.execs_live, before.execs_live + 1);
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  EXPECT_EQ(simt::graph_stats().execs_live, before.execs_live);
}

TEST(StreamCapture, StatusIdsAndMisuse) {
  Stream stream, other;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
  CUDA_CHECK(cudaStreamIsCapturing(stream.get(), &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusNone);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(stream.get(), &graph), cudaErrorIllegalState);
  EXPECT_EQ(cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeGlobal), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamBeginCapture(stream.get(), static_cast<cudaStreamCaptureMode>(7)), cudaErrorInvalidValue);
  cudaGetLastError();

  unsigned long long id1 = 0, id2 = 0;
  DeviceArray<int> out(4);
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  EXPECT_EQ(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal), cudaErrorIllegalState);
  CUDA_CHECK(cudaStreamGetCaptureInfo(stream.get(), &status, &id1));
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  // The legacy stream's status is an error while a blocking stream captures, but not a violation.
  EXPECT_EQ(cudaStreamIsCapturing(nullptr, &status), cudaErrorStreamCaptureImplicit);
  CUDA_CHECK(cudaStreamIsCapturing(stream.get(), &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  // Another stream is not capturing and works as usual.
  CUDA_CHECK(cudaMemsetAsync(out.get(), 0, 4 * sizeof(int), other.get()));
  CUDA_CHECK(cudaStreamSynchronize(other.get()));
  CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  ASSERT_NE(graph, nullptr);
  EXPECT_TRUE(simt::graph_nodes(graph).empty());
  CUDA_CHECK(cudaGraphDestroy(graph));
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeRelaxed));
  CUDA_CHECK(cudaStreamGetCaptureInfo(stream.get(), &status, &id2));
  EXPECT_NE(id1, id2);
  CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  CUDA_CHECK(cudaGraphDestroy(graph));
  EXPECT_EQ(cudaGraphDestroy(nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGraphLaunch(nullptr, stream.get()), cudaErrorInvalidValue);
  cudaGetLastError();
}

struct Violation {
  const char* what;
  cudaError_t expected;
  std::function<cudaError_t(cudaStream_t)> call;
};

// Begins a global-mode capture on a blocking stream, makes `v`'s call, and checks the GPU's answer:
// the call fails, the capture is invalidated, the stream refuses further work until the capture is
// ended, and ending it returns cudaErrorStreamCaptureInvalidated and no graph.
void expect_violation(const Violation& v) {
  SCOPED_TRACE(v.what);
  Stream stream;
  DeviceArray<int> out(8);
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  EXPECT_EQ(v.call(stream.get()), v.expected);
  EXPECT_EQ(cudaGetLastError(), v.expected);
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream.get(), &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusInvalidated);
  const std::string msg = thrown_message(
      [&] { convnet::launch("add_kernel", add_kernel, dim3(1), dim3(8), 0, stream.get(), out.get(), 8, 1); });
  EXPECT_NE(msg.find("cudaErrorStreamCaptureInvalidated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("invalidated by"), std::string::npos) << msg;
  cudaGraph_t graph = reinterpret_cast<cudaGraph_t>(&status);  // must be overwritten with null
  EXPECT_EQ(cudaStreamEndCapture(stream.get(), &graph), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(graph, nullptr);
  EXPECT_NE(std::string(cudaGetErrorString(cudaGetLastError())).find(v.what), std::string::npos);
  // Out of capture the stream runs work again.
  CUDA_CHECK(cudaMemsetAsync(out.get(), 0, 8 * sizeof(int), stream.get()));
  convnet::launch("add_kernel", add_kernel, dim3(1), dim3(8), 0, stream.get(), out.get(), 8, 3);
  CUDA_CHECK(cudaStreamSynchronize(stream.get()));
  for (int x : out.download()) EXPECT_EQ(x, 3);
}

TEST(StreamCapture, ForbiddenCallsFailAndInvalidateTheCapture) {
  DeviceArray<int> dev(8);
  std::vector<int> pageable(8, 1);
  cudaEvent_t event = nullptr;
  CUDA_CHECK(cudaEventCreate(&event));
  const std::vector<Violation> cases = {
      {"cudaStreamSynchronize on a capturing stream", cudaErrorStreamCaptureUnsupported,
       [](cudaStream_t s) { return cudaStreamSynchronize(s); }},
      {"cudaDeviceSynchronize while a stream captures", cudaErrorStreamCaptureUnsupported,
       [](cudaStream_t) { return cudaDeviceSynchronize(); }},
      {"cudaMalloc while a stream captures", cudaErrorStreamCaptureUnsupported,
       [](cudaStream_t) {
         void* p = nullptr;
         return cudaMalloc(&p, 64);
       }},
      {"cudaFree while a stream captures", cudaErrorStreamCaptureUnsupported,
       [&](cudaStream_t) { return cudaFree(dev.get()); }},
      {"cudaMemcpy on the legacy default stream while a blocking stream captures", cudaErrorStreamCaptureImplicit,
       [&](cudaStream_t) { return cudaMemcpy(dev.get(), pageable.data(), 32, cudaMemcpyHostToDevice); }},
      {"cudaMemset on the legacy default stream", cudaErrorStreamCaptureImplicit,
       [&](cudaStream_t) { return cudaMemset(dev.get(), 0, 32); }},
      {"launch of 'add_kernel' on the legacy default stream", cudaErrorStreamCaptureImplicit,
       [&](cudaStream_t) {
         simt::launch_kernel("add_kernel", add_kernel, dim3(1), dim3(8), 0, nullptr, dev.get(), 8, 1);
         return cudaPeekAtLastError();
       }},
      {"cudaStreamSynchronize on the legacy default stream", cudaErrorStreamCaptureImplicit,
       [](cudaStream_t) { return cudaStreamSynchronize(nullptr); }},
      {"the source is pageable host memory", cudaErrorStreamCaptureUnsupported,
       [&](cudaStream_t s) { return cudaMemcpyAsync(dev.get(), pageable.data(), 32, cudaMemcpyHostToDevice, s); }},
      {"the destination is pageable host memory", cudaErrorStreamCaptureUnsupported,
       [&](cudaStream_t s) { return cudaMemcpyAsync(pageable.data(), dev.get(), 32, cudaMemcpyDeviceToHost, s); }},
      {"not inside one cudaMalloc allocation", cudaErrorInvalidValue,
       [&](cudaStream_t s) { return cudaMemsetAsync(dev.get() + 4, 0, 32, s); }},
      {"launch of 'add_kernel': grid (1,1,1) block (2000,1,1)", cudaErrorInvalidConfiguration,
       [&](cudaStream_t s) {
         simt::launch_kernel("add_kernel", add_kernel, dim3(1), dim3(2000), 0, s, dev.get(), 8, 1);
         return cudaPeekAtLastError();
       }},
      {"cudaStreamWaitEvent on a capturing stream", cudaErrorStreamCaptureIsolation,
       [&](cudaStream_t s) { return cudaStreamWaitEvent(s, event, 0); }},
      {"cudaEventRecord on a capturing stream", cudaErrorNotSupported,
       [&](cudaStream_t s) { return cudaEventRecord(event, s); }},
  };
  for (const Violation& v : cases) expect_violation(v);
  CUDA_CHECK(cudaEventDestroy(event));
}

TEST(StreamCapture, RelaxedModeAndNonBlockingStreamsAllowWhatTheyAllow) {
  DeviceArray<int> dev(8);
  std::vector<int> host(8, 2);
  {  // relaxed mode: allocation is not "unsafe"
    Stream stream;
    CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeRelaxed));
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, 64));
    CUDA_CHECK(cudaFree(p));
    cudaGraphExec_t exec = end_and_instantiate(stream.get());
    CUDA_CHECK(cudaGraphExecDestroy(exec));
  }
  {  // a non-blocking stream's capture does not involve the legacy stream
    Stream stream(cudaStreamNonBlocking);
    CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
    CUDA_CHECK(cudaMemcpy(dev.get(), host.data(), 8 * sizeof(int), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaStreamSynchronize(nullptr));
    cudaGraphExec_t exec = end_and_instantiate(stream.get());
    CUDA_CHECK(cudaGraphExecDestroy(exec));
  }
  for (int v : dev.download()) EXPECT_EQ(v, 2);
}

TEST(StreamCapture, ReplayStopsAtAKernelFault) {
  Stream stream;
  DeviceArray<int> out(8);
  out.poison();
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  convnet::launch("trap_at_kernel", trap_at_kernel, dim3(1), dim3(4), 0, stream.get(), out.get(), 4);
  CUDA_CHECK(cudaMemsetAsync(out.get() + 4, 0, 4 * sizeof(int), stream.get()));
  cudaGraphExec_t exec = end_and_instantiate(stream.get());
  EXPECT_EQ(cudaGraphLaunch(exec, stream.get()), cudaErrorLaunchFailure);
  const std::string detail = cudaGetErrorString(cudaErrorLaunchFailure);
  EXPECT_NE(detail.find("trap_at_kernel"), std::string::npos) << detail;
  EXPECT_EQ(cudaStreamSynchronize(stream.get()), cudaErrorLaunchFailure);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchFailure);
  EXPECT_EQ(out.download()[5], -1) << "the node after the fault ran";
  CUDA_CHECK(cudaGraphExecDestroy(exec));
}

TEST(StreamCapture, ACopyNodeIntoFreedMemoryFaults) {
  Stream stream;
  Pinned<int> host(2);
  host.get()[0] = 41;
  auto* dev = new DeviceArray<int>(2);
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  CUDA_CHECK(cudaMemcpyAsync(dev->get(), host.get(), sizeof(int), cudaMemcpyHostToDevice, stream.get()));
  cudaGraphExec_t exec = end_and_instantiate(stream.get());
  CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
  EXPECT_EQ(dev->download()[0], 41);
  delete dev;  // cudaFree: the node's destination is gone
  EXPECT_EQ(cudaGraphLaunch(exec, stream.get()), cudaErrorIllegalAddress);
  const std::string detail = cudaGetErrorString(cudaErrorIllegalAddress);
  EXPECT_NE(detail.find("graph memcpy node"), std::string::npos) << detail;
  EXPECT_EQ(cudaGetLastError(), cudaErrorIllegalAddress);
  CUDA_CHECK(cudaGraphExecDestroy(exec));
}

TEST(StreamCapture, GraphLaunchInACaptureIsAChildGraph) {
  Stream stream;
  DeviceArray<int> out(8);
  CUDA_CHECK(cudaMemset(out.get(), 0, 8 * sizeof(int)));
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  convnet::launch("add_kernel", add_kernel, dim3(1), dim3(8), 0, stream.get(), out.get(), 8, 1);
  cudaGraphExec_t inner = end_and_instantiate(stream.get());
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  CUDA_CHECK(cudaGraphLaunch(inner, stream.get()));
  convnet::launch("add_kernel", add_kernel, dim3(1), dim3(8), 0, stream.get(), out.get(), 8, 10);
  CUDA_CHECK(cudaGraphLaunch(inner, stream.get()));
  cudaGraphExec_t outer = end_and_instantiate(stream.get());
  CUDA_CHECK(cudaGraphExecDestroy(inner));  // the child's nodes were copied into the outer graph
  EXPECT_EQ(simt::graph_nodes(outer),
            (std::vector<std::string>{"graph (1 nodes)", "kernel add_kernel", "graph (1 nodes)"}));
  for (int replay = 1; replay <= 2; ++replay) CUDA_CHECK(cudaGraphLaunch(outer, stream.get()));
  for (int v : out.download()) EXPECT_EQ(v, 24);
  CUDA_CHECK(cudaGraphExecDestroy(outer));
}

TEST(StreamCapture, InstantiateFlags) {
  Stream stream;
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamEndCapture(stream.get(), &graph));
  cudaGraphExec_t exec = nullptr;
  EXPECT_EQ(cudaGraphInstantiate(&exec, graph, cudaGraphInstantiateFlagDeviceLaunch), cudaErrorNotSupported);
  EXPECT_EQ(cudaGraphInstantiate(&exec, graph, 1ull << 20), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGraphInstantiate(&exec, nullptr, 0), cudaErrorInvalidValue);
  cudaGetLastError();
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, cudaGraphInstantiateFlagAutoFreeOnLaunch));
  CUDA_CHECK(cudaGraphDestroy(graph));
  CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
  CUDA_CHECK(cudaGraphExecDestroy(exec));
}

// The cuBLAS shim: a GEMM on a capturing stream is a node (alpha and beta by value); capturing needs a
// workspace set after cublasSetStream, which resets it.
TEST(StreamCapture, CublasShimRecordsGemmsWithAWorkspaceOnly) {
  Stream stream;
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  DeviceArray<float> a(std::vector<float>{1, 2, 3, 4}), b(std::vector<float>{1, 0, 0, 1}), c(4);
  DeviceArray<unsigned char> workspace(4096);
  std::vector<float> pageable(16);
  EXPECT_EQ(cublasSetWorkspace(h, workspace.get() + 8, 1024), CUBLAS_STATUS_INVALID_VALUE);  // misaligned
  EXPECT_EQ(cublasSetWorkspace(h, pageable.data(), 64), CUBLAS_STATUS_INVALID_VALUE);       // not device memory
  EXPECT_EQ(cublasSetWorkspace(h, workspace.get(), 8192), CUBLAS_STATUS_INVALID_VALUE);     // past its end
  ASSERT_EQ(cublasSetWorkspace(h, workspace.get(), 4096), CUBLAS_STATUS_SUCCESS);
  ASSERT_EQ(cublasSetStream(h, stream.get()), CUBLAS_STATUS_SUCCESS);  // back to the default pool
  float alpha = 2.0f, beta = 0.0f;
  c.poison();
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &alpha, a.get(), 2, b.get(), 2, &beta, c.get(), 2),
            CUBLAS_STATUS_NOT_SUPPORTED);
  ASSERT_EQ(cublasSetWorkspace(h, workspace.get(), 4096), CUBLAS_STATUS_SUCCESS);
  const unsigned long long calls = simt::cublas_call_count();
  ASSERT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &alpha, a.get(), 2, b.get(), 2, &beta, c.get(), 2),
            CUBLAS_STATUS_SUCCESS);
  alpha = 100.0f;  // read at the call, i.e. at capture
  cudaGraphExec_t exec = end_and_instantiate(stream.get());
  EXPECT_EQ(simt::cublas_call_count(), calls + 1);
  for (float v : c.download()) EXPECT_TRUE(is_poison(v)) << "the captured GEMM ran";
  EXPECT_EQ(simt::graph_nodes(exec), std::vector<std::string>{"cublasSgemm 2x2x2"});
  CUDA_CHECK(cudaGraphLaunch(exec, stream.get()));
  EXPECT_EQ(c.download(), (std::vector<float>{2, 4, 6, 8}));
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  // On the legacy stream while a blocking stream captures: the launch would depend on the capture.
  ASSERT_EQ(cublasSetStream(h, nullptr), CUBLAS_STATUS_SUCCESS);
  CUDA_CHECK(cudaStreamBeginCapture(stream.get(), cudaStreamCaptureModeGlobal));
  EXPECT_EQ(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 2, &alpha, a.get(), 2, b.get(), 2, &beta, c.get(), 2),
            CUBLAS_STATUS_EXECUTION_FAILED);
  EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureImplicit);
  cudaGraph_t graph = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(stream.get(), &graph), cudaErrorStreamCaptureInvalidated);
  cudaGetLastError();
  ASSERT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

}  // namespace
