// CUDA graphs for the GPU backend: a step's launch sequence captured once per shape, then replayed
// with one cudaGraphLaunch (issue #6: at batch 128 a step is bound by launch latency).
//
// StepGraphs maps a key (the step's kind and shape) to an instantiated graph. launch(key, ...) captures
// `enqueue` on the stream the first time it sees the key, instantiates the graph and launches it; later
// calls launch the instantiated graph. Compiled for the real runtime (convnet_gpu) and, with
// CONVNET_SIMT, for the CUDA-on-CPU simulator, which records and replays captures the same way
// (tests/simt/README.md, "Stream capture").
//
// What a valid capture relies on, from the CUDA Runtime API (cudaStreamBeginCapture,
// cudaThreadExchangeStreamCaptureMode, cudaStreamEndCapture), the CUDA Programming Guide ("CUDA
// Graphs": stream capture, prohibited operations, invalidation) and the cuBLAS guide (cublasSetStream,
// cublasSetWorkspace):
//   - Work on a capturing stream is recorded, not run: kernel nodes keep the parameter VALUES of the
//     capture, and a memcpy node reads its source when the graph runs. So every pointer and scalar a
//     captured step passes must be valid for every replay; what changes from step to step lives in
//     device memory (kernels/device_state.h) or in pinned host memory read by a captured copy.
//   - cudaStreamCaptureModeGlobal: a potentially unsafe call (cudaMalloc, cudaFree) from this thread
//     during the capture fails and invalidates it, so a step that allocates is an error at capture
//     time, never a graph that silently lacks the allocation.
//   - Synchronising with the capturing stream, or the device, is invalid; so is any use of the legacy
//     default stream (synchronous cudaMemcpy included) while a blocking stream such as the backend's
//     captures. A captured step therefore enqueues only asynchronous work on the backend's stream and
//     never waits (--sync-launches, which synchronises after every launch, turns graphs off).
//   - Copies in a capture use pinned host memory (cudaMallocHost): a pageable copy is staged through
//     the driver, and nothing would keep pageable memory alive for the replays.
//   - cuBLAS: cublasSetStream resets the handle's workspace to cuBLAS's default pool; a handle given
//     its own workspace with cublasSetWorkspace afterwards does not allocate one during the capture
//     (cuBLAS documents 32 MiB for Hopper, 4 MiB for earlier GPUs). In host pointer mode alpha and
//     beta are read at the call, i.e. at capture.
//   - Lazy module loading (the default since CUDA 12.2): a kernel first used inside a capture is
//     loaded during it, which drivers of CUDA 12.3 and later support; this project's CUDA 13 toolkit
//     requires such a driver.
//   - An executable graph does not depend on the graph it was instantiated from, which is destroyed
//     at once. Graph launches on one stream run in stream order, so replays follow each other and the
//     synchronous legacy-stream copies of the backend (set_arena, set_order, ...), which wait for
//     every blocking stream, see the device state the previous steps left.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <utility>

#include "cuda_check.h"

namespace convnet {

// Graphs captured by StepGraphs in this process (tests compare it before and after a run).
inline std::atomic<uint64_t>& step_graph_captures() {
  static std::atomic<uint64_t> count{0};
  return count;
}

class StepGraphs {
 public:
  // (kind, image set, batch count, variant): a step of another shape or with other arguments is another graph.
  using Key = std::array<int, 4>;

  StepGraphs() = default;
  ~StepGraphs() { clear(); }
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Launches the graph of `key` on `stream`; the first time, `enqueue` (which must put all its work on
  // `stream` and wait for nothing) is captured into it.
  template <typename F>
  void launch(const Key& key, cudaStream_t stream, F&& enqueue) {
    auto it = execs_.find(key);
    if (it == execs_.end()) it = execs_.emplace(key, capture(stream, enqueue)).first;
    CUDA_CHECK(cudaGraphLaunch(it->second, stream));
  }

  // Destroys every graph: the next launch of each key captures anew (after something a graph baked in
  // has changed, such as a reallocated buffer).
  void clear() {
    for (auto& [key, exec] : execs_) cudaGraphExecDestroy(exec);
    execs_.clear();
  }

  size_t size() const { return execs_.size(); }

 private:
  template <typename F>
  static cudaGraphExec_t capture(cudaStream_t stream, F& enqueue) {
    CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    try {
      enqueue();
    } catch (...) {
      abandon(stream);  // leave the stream usable: the error that stopped the capture is the one to report
      throw;
    }
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    CUDA_CHECK(err);
    step_graph_captures().fetch_add(1, std::memory_order_relaxed);
    return exec;
  }

  static void abandon(cudaStream_t stream) {
    cudaGraph_t graph = nullptr;
    if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // an invalidated capture's error belongs to the call that caused it
  }

  std::map<Key, cudaGraphExec_t> execs_;
};

}  // namespace convnet
