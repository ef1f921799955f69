// The fence check itself (simt.cpp, "The fence check"): on kernels compiled with its instrumentation
// (fence_kernels.cpp), a read of another block's global write whose writer has not fenced since fails
// the launch, and nothing else does: fenced writes, a block's own writes across a barrier, atomics.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "device_array.h"
#include "fence_kernels.h"

namespace {

std::string error_text(cudaError_t e) { return e == cudaSuccess ? "" : cudaGetErrorString(e); }

TEST(FenceCheck, IsOnInThisBinary) { EXPECT_TRUE(simt::detail::fence_check); }

TEST(FenceCheck, TheLastBlockPatternPassesWhenEveryWriterFences) {
  for (unsigned blocks : {1u, 2u, 7u}) {
    DeviceArray<float> x(std::vector<float>(blocks * 64, 1.0f)), partial(blocks * 64), total(1);
    DeviceArray<unsigned> ticket(std::vector<unsigned>{0u});
    const cudaError_t e = fence_test::last_block_sum(x.get(), partial.get(), ticket.get(), total.get(), blocks, 64,
                                                     true);
    EXPECT_EQ(e, cudaSuccess) << error_text(e);
    EXPECT_EQ(total.download()[0], 2.0f * 64 * blocks);
  }
}

TEST(FenceCheck, AWriterWithoutAFenceFailsTheLaunch) {
  DeviceArray<float> x(std::vector<float>(3 * 64, 1.0f)), partial(3 * 64), total(1);
  DeviceArray<unsigned> ticket(std::vector<unsigned>{0u});
  const cudaError_t e = fence_test::last_block_sum(x.get(), partial.get(), ticket.get(), total.get(), 3, 64, false);
  EXPECT_EQ(e, cudaErrorLaunchFailure);
  const std::string text = error_text(e);
  EXPECT_NE(text.find("last_block_sum_kernel"), std::string::npos) << text;
  EXPECT_NE(text.find("fence check: reads byte 0 of a 768-byte allocation that block (0,0,0) thread (0,0,0) wrote"),
            std::string::npos)
      << text;
  // One block alone reads only its own writes.
  DeviceArray<float> one(std::vector<float>(64, 1.0f)), one_partial(64);
  EXPECT_EQ(fence_test::last_block_sum(one.get(), one_partial.get(), ticket.get(), total.get(), 1, 64, false),
            cudaSuccess);
}

TEST(FenceCheck, AnyUnfencedReadOfAnotherBlocksWriteFails) {
  DeviceArray<float> data(4 * 32), out(4 * 32);
  EXPECT_EQ(fence_test::read_neighbour(data.get(), out.get(), 4, 32, false), cudaErrorLaunchFailure);
  // The check is about fences, not races: a fenced write read without any other synchronisation passes
  // (on a GPU it is still a race unless something else orders the two blocks).
  EXPECT_EQ(fence_test::read_neighbour(data.get(), out.get(), 4, 32, true), cudaSuccess);
}

TEST(FenceCheck, ABlocksOwnWritesAndAtomicsNeedNoFence) {
  DeviceArray<float> data(5 * 64);
  EXPECT_EQ(fence_test::own_block_round_trip(data.get(), 5, 64), cudaSuccess);
  EXPECT_EQ(data.download()[63], 0.0f);
  DeviceArray<unsigned> counter(std::vector<unsigned>{0u});
  EXPECT_EQ(fence_test::atomic_counter(counter.get(), 6, 32), cudaSuccess);
  EXPECT_EQ(counter.download()[0], 6u * 32u);
}

TEST(FenceCheck, AKernelBoundaryOrdersTheWritesOfTheLaunchBefore) {
  DeviceArray<float> data(3 * 32), out(3 * 32);
  EXPECT_EQ(fence_test::read_neighbour(data.get(), out.get(), 3, 32, false), cudaErrorLaunchFailure);
  EXPECT_EQ(fence_test::read_other_blocks(data.get(), out.get(), 3, 32), cudaSuccess);
}

}  // namespace
