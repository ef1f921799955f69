// Resuming on the CUDA backend: a run stopped at an epoch boundary or mid-epoch, checkpointed to a
// file, loaded into a NEW GPU backend and resumed ends bit-identical (==) to the uninterrupted GPU
// run, parameters, optimiser state and reported metrics alike (tests/resume_check.h). This checks
// the device-side pieces of a resume: the batch cursor written into DeviceStep by set_order, the
// step counter Adam and dropout read from device memory, and the partial metrics restored into
// DeviceMetrics. Runs on the simulator (kernel_tests_sim) with tiny data so it takes about a second,
// and on a real GPU (kernel_tests_gpu), skipping with the reason when there is none.
#include <gtest/gtest.h>

#include "kernel_test.h"
#include "resume_check.h"

namespace convnet {
namespace {

class GpuResume : public KernelTest {};

const test::BackendFactory kGpu = [](const Model& m, const BackendConfig& c) { return make_gpu_backend(m, c); };

TEST_F(GpuResume, AtABoundaryAndMidEpochIsBitIdentical) {
  test::ResumeCase c;  // 4 steps of 16 per epoch, 3 epochs, dropout on
  for (int64_t stop : {4, 6}) test::expect_resume_is_bit_identical(kGpu, c, stop);
}

TEST_F(GpuResume, SgdWithMomentumMidEpochIsBitIdentical) {
  test::ResumeCase c;
  c.optimizer = "sgd";
  c.batch = 12;  // 64 trained: 6 steps, the last one of 4 samples
  c.epochs = 2;
  test::expect_resume_is_bit_identical(kGpu, c, 8);
}

TEST_F(GpuResume, RaisingEpochsContinuesAFinishedRun) {
  test::ResumeCase c;
  test::expect_longer_resume_is_bit_identical(kGpu, c, 2);
}

}  // namespace
}  // namespace convnet
