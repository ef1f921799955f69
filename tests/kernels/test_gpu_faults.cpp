// Faults of the CUDA backend, on the simulator (kernel_tests_sim) and a real GPU (kernel_tests_gpu):
//   - a NaN put into a parameter makes the next step's loss and gradients NaN: numeric_fault() names
//     that step, the tensor and the layer, the same as the CPU backend, and later steps keep it;
//   - with --sync-launches (set_gpu_sync_launches) a kernel that faults inside a training step is
//     reported by name at its launch, and without it the error says how to name it (simulator only:
//     a fault leaves a real GPU's context unusable for the rest of the process);
//   - out of device memory in any runtime or cuBLAS call is DeviceOutOfMemory (exit 2).
// Out of device memory is tested in test_gpu_backend.cpp (GpuBackend.OutOfDeviceMemoryIsAClearError).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"
#include "cuda_check.h"
#include "device_errors.h"
#include "gpu_blas.h"
#include "kernel_test.h"
#include "synthetic_images.h"
#include "trainer.h"

namespace convnet {
namespace {

class GpuFaults : public KernelTest {};

// Two steps, a NaN into one parameter, two more steps; the fault after each.
std::vector<std::optional<NumericFault>> faults_after_nan(Backend& b, const Model& model, const std::string& tensor,
                                                          size_t element) {
  const int batch = 16;
  const ImageSet data = test::stripe_digits(4 * batch, 3);
  const int set = b.add_images(data);
  b.set_order(epoch_order(3, 1, data.count));
  std::vector<std::optional<NumericFault>> out;
  for (int s = 0; s < 4; ++s) {
    if (s == 2) {
      std::vector<float> params = b.get_arena(Arena::Params);
      for (const ParamEntry& p : model.params)
        if (p.name == tensor) params[p.offset + element] = std::numeric_limits<float>::quiet_NaN();
      b.set_arena(Arena::Params, params);
    }
    b.train_step(set, s * batch, batch);
    out.push_back(b.numeric_fault());
  }
  return out;
}

TEST_F(GpuFaults, ANaNParameterIsReportedAtTheNextStepLikeTheCpu) {
  const Model model = build_model("conv8-pool-flatten-dropout0.3-dense10");
  BackendConfig config;
  config.max_batch = 16;
  auto gpu = make_gpu_backend(model, config);
  auto cpu = make_cpu_backend(model, config);
  const auto g = faults_after_nan(*gpu, model, "dense.weight", 37);
  const auto c = faults_after_nan(*cpu, model, "dense.weight", 37);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_FALSE(g[0] || g[1] || c[0] || c[1]) << "the first two steps are finite";
  for (size_t s = 2; s < 4; ++s) {
    SCOPED_TRACE("after step " + std::to_string(s + 1));
    ASSERT_TRUE(g[s] && c[s]);
    EXPECT_EQ(g[s]->step, 3) << "the step after the NaN went in, and later steps keep it";
    EXPECT_EQ(g[s]->loss, "NaN");
    EXPECT_EQ(g[s]->value, "NaN");
    // The NaN logits reach every gradient; the first of the arena is the first conv's weight.
    EXPECT_EQ(g[s]->tensor, "conv2d.weight");
    EXPECT_EQ(g[s]->layer, "conv2d, Conv2D");
    EXPECT_LT(g[s]->element, g[s]->count);
    EXPECT_EQ(g[s]->count, 72u);
    EXPECT_EQ(c[s]->step, g[s]->step);
    EXPECT_EQ(c[s]->loss, g[s]->loss);
    EXPECT_EQ(c[s]->tensor, g[s]->tensor);
    EXPECT_EQ(c[s]->element, g[s]->element);
  }
  EXPECT_EQ(divergence_message(*g[2], 4),
            "training diverged at step 3 (epoch 1, step 3 of 4): the loss is NaN, and gradient of conv2d.weight "
            "(layer conv2d, Conv2D) has NaN (first at element " + std::to_string(g[2]->element) + " of 72)");
}

// One training step of a batch whose fourth label is past the last class, which traps in the kernel
// that computes the loss: the fused head, or softmax_xent_kernel per layer (idx.cpp refuses such
// files). Returns what the step raised. With `sync` the backend keeps its default of graphs on, which
// --sync-launches turns off by itself; without it graphs are off, so the fault comes from the
// kernel's own launch rather than a graph's. Without `sync` the step may return before the kernel has
// run (a GPU, or the simulator's asynchronous mode): the fault then comes from the trainer's next
// synchronising call, reading the step's metrics.
std::string fault_in_a_training_step(bool fused, bool sync) {
  const Model model = build_model("conv8-pool-flatten-dense10");
  BackendConfig config;
  config.max_batch = 8;
  config.fused = fused;
  if (!sync) config.graphs = false;
  auto gpu = make_gpu_backend(model, config);
  ImageSet data = test::stripe_digits(8, 5);
  data.labels[3] = 10;
  const int set = gpu->add_images(data);
  gpu->set_order(epoch_order(5, 1, data.count));
  const bool was_on = sync_launches();  // CONVNET_SYNC_LAUNCHES may have set it
  set_gpu_sync_launches(sync);
  std::string what;
  try {
    gpu->train_step(set, 0, 8);
    gpu->take_train_metrics();
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  set_gpu_sync_launches(was_on);
  return what;
}

TEST_F(GpuFaults, SyncLaunchesNameTheKernelThatFaultsInATrainingStep) {
#if !defined(CONVNET_SIMT)
  GTEST_SKIP() << "a kernel fault leaves a real GPU's context unusable for the rest of the process; "
                  "the simulator runs this test";
#endif
  for (const bool fused : {true, false}) {
    SCOPED_TRACE(fused ? "fused" : "per layer");
    const std::string what = fault_in_a_training_step(fused, true);
    EXPECT_NE(what.find("cudaErrorLaunchFailure"), std::string::npos) << what;
    EXPECT_NE(what.find(fused ? "in launch of head_train_kernel" : "in launch of softmax_xent_kernel"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("__trap()"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
  }
}

// Without --sync-launches a fault reaches the host at a later call, so the error says so and how to
// name the kernel. (The simulator reports it at the faulting launch, unless SIMT_ASYNC=1; a GPU at a
// later one.)
TEST_F(GpuFaults, AFaultWithoutSyncLaunchesSaysHowToNameTheKernel) {
#if !defined(CONVNET_SIMT)
  GTEST_SKIP() << "a kernel fault leaves a real GPU's context unusable for the rest of the process; "
                  "the simulator runs this test";
#endif
  const std::string what = fault_in_a_training_step(true, false);
  EXPECT_NE(what.find("cudaErrorLaunchFailure"), std::string::npos) << what;
  EXPECT_NE(what.find("rerun with --sync-launches"), std::string::npos) << what;
  EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
}

// Out of device memory outside the backend's own allocations (a graph's upload, the cuBLAS handle,
// a module loaded at its first launch) is DeviceOutOfMemory, which main() maps to exit 2 like
// ResourceError; other errors stay internal (std::runtime_error, exit 1).
TEST_F(GpuFaults, OutOfMemoryInAnyRuntimeOrCublasCallIsDeviceOutOfMemory) {
  auto message = [](auto&& call) -> std::pair<std::string, bool> {
    try {
      call();
    } catch (const DeviceOutOfMemory& e) {
      return {e.what(), true};
    } catch (const std::runtime_error& e) {
      return {e.what(), false};
    }
    return {"", false};
  };
  auto [graph, graph_oom] = message([] { CUDA_CHECK(cudaErrorMemoryAllocation); });
  EXPECT_TRUE(graph_oom) << graph;
  EXPECT_NE(graph.find("out of GPU memory"), std::string::npos) << graph;
  EXPECT_NE(graph.find("try a smaller --batch-size"), std::string::npos) << graph;
  auto [blas, blas_oom] = message([] { CUBLAS_CHECK(CUBLAS_STATUS_ALLOC_FAILED); });
  EXPECT_TRUE(blas_oom) << blas;
  EXPECT_NE(blas.find("CUBLAS_STATUS_ALLOC_FAILED"), std::string::npos) << blas;
  auto [other, other_oom] = message([] { CUDA_CHECK(cudaErrorInvalidValue); });
  EXPECT_FALSE(other_oom) << other;
  EXPECT_NE(other.find("cudaErrorInvalidValue"), std::string::npos) << other;
  EXPECT_EQ(other.find("--sync-launches"), std::string::npos) << "not a kernel fault: " << other;
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

}  // namespace
}  // namespace convnet
