// The launchers' 32-bit index limits: every kernel indexes its tensors with 32-bit integers, so each
// launcher refuses a shape under which one of them would have more than INT_MAX elements, with
// std::length_error naming the tensor, before anything is launched (kernels/shape_check.h). Each case
// below puts exactly ONE tensor over the limit, every other tensor and every other check passing, so
// a launcher that skipped or mis-joined that one check would go on and launch (and fault). The
// pointers are small real allocations: a launcher must refuse from the shape alone.
// (Found missing by tests/mutate_kernels.py: no test reached any of these checks.)
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

#include "device_array.h"
#include "fused_backward.h"
#include "fused_forward.h"
#include "kernel_test.h"
#include "kernels.h"
#include "launch.h"
#include "shape_check.h"

namespace {

using namespace convnet;

class IndexLimits : public KernelTest {};

// Allocated in the test body, after KernelTest::SetUp has skipped a machine without a device.
struct Buffers {
  DeviceArray<float> f{4096};
  DeviceArray<int32_t> i32{4096};
  DeviceArray<uint8_t> u8{4096};
  DeviceArray<DeviceStep> step{1};
  DeviceArray<DeviceMetrics> metrics{1};
  DeviceArray<unsigned char> scratch{1 << 16};
};

// "TENSOR has COUNT", as check_int32 (kernels/shape_check.h) names a tensor over the limit.
std::string has(const std::string& tensor, unsigned long long count) {
  return tensor + " has " + std::to_string(count);
}

// Runs `call`, which must throw std::length_error whose text holds `says`, and launch nothing.
void expect_over_limit(const std::string& what, const std::string& says, const std::function<void()>& call) {
  SCOPED_TRACE(what);
  const uint64_t before = kernel_launch_count();
  try {
    call();
    ADD_FAILURE() << "no std::length_error";
  } catch (const std::length_error& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
  EXPECT_EQ(kernel_launch_count(), before) << "launched before refusing";
}

TEST(IndexLimit, CheckInt32AcceptsIntMaxAndRefusesOneMore) {
  EXPECT_NO_THROW(check_int32("who", "t", size_t(INT_MAX)));
  EXPECT_THROW(check_int32("who", "t", size_t(INT_MAX) + 1), std::length_error);
}

TEST_F(IndexLimits, PerLayerLaunchers) {
  Buffers b;
  // col = 9 * 676 * N = 2.4e9 > INT_MAX while x = 784 * N = 3.1e8 fits.
  const std::string col = "col " + std::to_string(9ull * 26 * 26 * 400000) + " elements";
  expect_over_limit("im2col col", col, [&] { im2col_gpu(b.f.get(), b.f.get(), 400000, 1, 28, 28, 3, nullptr); });
  expect_over_limit("col2im col", col, [&] { col2im_gpu(b.f.get(), b.f.get(), 400000, 1, 28, 28, 3, nullptr); });
  expect_over_limit("bias_relu forward", "shape 65536 x 64 x 1024", [&] {
    bias_relu_forward_gpu(b.f.get(), b.f.get(), b.f.get(), 65536, 64, 1024, nullptr);
  });
  expect_over_limit("bias_relu backward", "shape 65536 x 64 x 1024", [&] {
    bias_relu_backward_gpu(b.f.get(), b.f.get(), b.f.get(), 65536, 64, 1024, nullptr);
  });
  expect_over_limit("maxpool forward", has("input", 64ull * 64 << 20), [&] {
    maxpool_forward_gpu(b.f.get(), b.f.get(), b.i32.get(), 1 << 20, 64, 64, nullptr);
  });
  expect_over_limit("maxpool backward", has("input", 64ull * 64 << 20), [&] {
    maxpool_backward_gpu(b.f.get(), b.i32.get(), b.f.get(), 1 << 20, 64, 64, nullptr);
  });
}

// An empty tensor is no work whatever its other dimensions, even when their product is over the
// limit: accepted, and nothing launched (a zero-block grid is a launch error).
TEST_F(IndexLimits, EmptyTensorsAreAcceptedWhateverTheOtherDimensions) {
  Buffers b;
  const uint64_t before = kernel_launch_count();
  EXPECT_NO_THROW(bias_relu_forward_gpu(b.f.get(), b.f.get(), b.f.get(), 65536, 65536, 0, nullptr));
  EXPECT_NO_THROW(bias_relu_backward_gpu(b.f.get(), b.f.get(), b.f.get(), 0, 65536, 65536, nullptr));
  EXPECT_NO_THROW(maxpool_forward_gpu(b.f.get(), b.f.get(), b.i32.get(), 4, 0, 8, nullptr));
  EXPECT_NO_THROW(maxpool_backward_gpu(b.f.get(), b.i32.get(), b.f.get(), 4, 8, 0, nullptr));
  EXPECT_EQ(kernel_launch_count(), before);
}

TEST_F(IndexLimits, FusedForwardLaunchers) {
  Buffers b;
  auto input = [&](int n, int OC, int K, bool pool, int next_K) {
    conv_input_forward_gpu(b.u8.get(), b.u8.get(), b.i32.get(), b.i32.get(), n, b.f.get(), b.f.get(), OC, K, pool,
                           b.f.get(), b.u8.get(), b.f.get(), b.i32.get(), next_K ? b.f.get() : nullptr, next_K,
                           nullptr);
  };
  // conv output 4 * 676 * n = 2.7e9; x = 784 * n = 7.8e8.
  expect_over_limit("conv input: conv output", has("the conv output", 4ull * 676 * 1000000),
                    [&] { input(1000000, 4, 3, false, 0); });
  // K = 28: a 1x1 conv output of n elements; x = 784 * n = 2.4e9.
  expect_over_limit("conv input: x", has("x", 784ull * 3000000), [&] { input(3000000, 1, 28, false, 0); });
  // conv output 676 * n = 1.7e9, x = 1.96e9; next_col = 9 * 121 * n = 2.7e9.
  expect_over_limit("conv input: next_col", has("next_col", 9ull * 121 * 2500000),
                    [&] { input(2500000, 1, 3, true, 3); });

  auto epilogue = [&](int N, int OC, int OH, bool pool, int next_K) {
    conv_epilogue_forward_gpu(b.f.get(), b.f.get(), N, OC, OH, OH, pool, b.f.get(), b.i32.get(),
                              next_K ? b.f.get() : nullptr, next_K, nullptr);
  };
  expect_over_limit("epilogue: conv output", has("the conv output", 64ull * 8 * 8 << 20),
                    [&] { epilogue(1 << 20, 64, 8, true, 0); });
  expect_over_limit("epilogue: next_col", has("next_col", 9ull * 121 * 2500000),
                    [&] { epilogue(2500000, 1, 26, true, 3); });

  // h = n * F = 4.3e9.
  expect_over_limit("head train: h", has("h", 4096ull << 20), [&] {
    head_train_gpu(b.f.get(), 4096, 0.5f, 1, b.step.get(), 0, b.f.get(), b.f.get(), b.u8.get(),
                   1 << 20, b.metrics.get(), b.f.get(), b.f.get(), b.f.get(), b.scratch.get(), nullptr);
  });
  expect_over_limit("head eval: h", has("h", 4096ull << 20), [&] {
    head_eval_gpu(b.f.get(), 4096, b.f.get(), b.f.get(), b.u8.get(), 1 << 20, nullptr,
                  b.metrics.get(), b.scratch.get(), nullptr);
  });
}

TEST_F(IndexLimits, FusedBackwardLaunchers) {
  Buffers b;
  auto epilogue = [&](const BlockOutputGrad& grad, const ConvBlockShape& s) {
    conv_epilogue_backward_gpu(grad, b.f.get(), b.i32.get(), b.f.get(), b.f.get(), s, b.scratch.get(), nullptr);
  };
  expect_over_limit("epilogue backward: conv output", has("the conv output", 64ull * 8 * 8 << 20),
                    [&] { epilogue(grad_from_dy(b.f.get()), ConvBlockShape{1 << 20, 64, 8, 8, true}); });
  // conv output 676 * N = 1.7e9; next_dcol = 9 * 121 * N = 2.7e9.
  expect_over_limit("epilogue backward: next_dcol", has("next_dcol", 9ull * 121 * 2500000),
                    [&] { epilogue(grad_from_next_dcol(b.f.get(), 3), ConvBlockShape{2500000, 1, 26, 26, true}); });
  // K = H = 5: a 1x1 conv output of N elements; x = 25 * N = 2.5e9.
  expect_over_limit("input backward: x", has("x", 25ull * 100000000), [&] {
    conv_input_backward_gpu(b.f.get(), grad_from_dy(b.f.get()), b.f.get(), b.i32.get(), b.f.get(), b.f.get(), 5, 5, 5,
                            ConvBlockShape{100000000, 1, 1, 1, false}, b.scratch.get(), nullptr);
  });
}

}  // namespace
