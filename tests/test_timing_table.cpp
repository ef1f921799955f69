// The `convnet train --timing` table (host/timing_table.h): heaviest kernel first, per-step and
// per-call means, shares of the summed kernel time that add up to 100 %, and the two step times.
#include <gtest/gtest.h>

#include <stdexcept>

#include "timing_table.h"

namespace convnet {
namespace {

TimingReport two_steps() {
  TimingReport r;
  r.steps = 2;
  r.kernels = {{"im2col_kernel", 6, 60.0},
               {"sgemm NN 32x5408x9", 2, 300.0},
               {"adam_update_kernel", 2, 40.0}};
  r.step_events_us = 500.0;
  r.wall_us = 640.0;
  return r;
}

TEST(TimingTable, SharesOfTheKernelSumAddUpTo100) {
  const TimingReport r = two_steps();
  EXPECT_DOUBLE_EQ(kernel_sum_us(r), 400.0);
  const std::vector<double> shares = kernel_shares(r);
  ASSERT_EQ(shares.size(), 3u);
  EXPECT_DOUBLE_EQ(shares[0], 15.0);
  EXPECT_DOUBLE_EQ(shares[1], 75.0);
  EXPECT_DOUBLE_EQ(shares[2], 10.0);
  TimingReport none;
  none.steps = 1;
  none.kernels = {{"k", 1, 0.0}};
  EXPECT_EQ(kernel_shares(none), std::vector<double>{0.0}) << "no time measured: no division by zero";
}

TEST(TimingTable, PrintsHeaviestFirstWithPerStepAndPerCallMeans) {
  const std::string expected =
      "Per kernel:\n"
      "kernel                               calls/step    us/call    us/step   share\n"
      "sgemm NN 32x5408x9                         1.00     150.00     150.00   75.0%\n"
      "im2col_kernel                              3.00      10.00      30.00   15.0%\n"
      "adam_update_kernel                         1.00      20.00      20.00   10.0%\n"
      "all kernels                                5.00                200.00  100.0%\n"
      "step, first launch to last (events)                            250.00\n"
      "step, host wall clock                                          320.00\n";
  EXPECT_EQ(format_timing_table(two_steps(), "Per kernel:"), expected);
}

TEST(TimingTable, LongNamesWidenTheFirstColumnAndZeroStepsAreRefused) {
  TimingReport r = two_steps();
  r.kernels[0].name = std::string(50, 'k');
  const std::string table = format_timing_table(r, "t");
  EXPECT_NE(table.find(std::string(50, 'k') + "       3.00"), std::string::npos) << table;
  r.steps = 0;
  EXPECT_THROW(format_timing_table(r, "t"), std::logic_error);
}

}  // namespace
}  // namespace convnet
