// gather_batch_gpu / step_advance_gpu (kernels/gather.cu) against gather_batch_cpu.
//
// Tolerance: EXACT, bit for bit: x is one correctly rounded division u8 / 255.0f on both sides, the
// labels are copies. One image holds every byte value 0..255, so the whole normalisation table is
// compared.
// The cursor lives in device memory (DeviceStep::cursor) and is never passed by value: the tests set it
// on the device, advance it with step_advance_gpu, and gather again without the host reading it.
// Shapes: batch 128 (the trainer's), N=1, odd N, a batch ending at the last sample of the order, a
// grid capped to 2 blocks (every thread strides over several samples), and N=0 (no launch).
// Outputs are poisoned (NaN x, 0xFF labels) so unwritten elements fail.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_layers.h"
#include "cuda_check.h"
#include "device_array.h"
#include "kernels.h"
#include "launch.h"
#include "test_util.h"

namespace {

using namespace convnet;
using namespace convnet::test;

constexpr int kPixels = 28 * 28;
constexpr int kCount = 300;  // images in the resident set

// Skips, with the reason, when there is no device (kernel_tests_gpu without a GPU).
class GatherKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      cudaGetLastError();
      GTEST_SKIP() << "no CUDA device";
    }
  }
};

// A seeded image set (image 0 holds every byte value), its labels and a seeded sample order.
struct DataSet {
  std::vector<uint8_t> images, labels;
  std::vector<int32_t> order;
};
DataSet make_data(uint64_t seed) {
  DataSet d;
  d.images.resize(size_t(kCount) * kPixels);
  for (size_t i = 0; i < d.images.size(); ++i)
    d.images[i] = i < 256 ? uint8_t(i) : uint8_t(uniform_double(seed, 0, i) * 256.0);
  d.labels = random_labels(kCount, 10, seed, 1);
  d.order = distinct_values<int32_t>(kCount, seed, 1.0, 0.0, 2);  // a permutation of 0..kCount-1
  return d;
}

// Device copies of a data set and a DeviceStep whose cursor the gather reads.
struct DeviceData {
  explicit DeviceData(const DataSet& d) : images(d.images), labels(d.labels), order(d.order), step(1) {}
  void set_step(int64_t s, int32_t cursor) { step.upload({DeviceStep{s, cursor, 0}}); }
  const int32_t* cursor() const { return &step.get()->cursor; }
  DeviceArray<uint8_t> images, labels;
  DeviceArray<int32_t> order;
  DeviceArray<DeviceStep> step;
};

// Gathers n samples at the device cursor and compares with the CPU twin at `cursor`.
void check_gather(const DataSet& d, const DeviceData& dev, int32_t cursor, int n) {
  SCOPED_TRACE("cursor=" + std::to_string(cursor) + " n=" + std::to_string(n));
  std::vector<float> x_ref(size_t(n) * kPixels);
  std::vector<uint8_t> lab_ref(static_cast<size_t>(n));
  gather_batch_cpu(d.images.data(), d.labels.data(), d.order.data(), cursor, n, x_ref.data(), lab_ref.data());

  DeviceArray<float> x(x_ref.size());
  DeviceArray<uint8_t> lab(lab_ref.size());
  x.poison();
  lab.poison();
  gather_batch_gpu(dev.images.get(), dev.labels.get(), dev.order.get(), dev.cursor(), n, x.get(), lab.get(), nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> x_got = x.download();
  expect_exact(x_ref, x_got, "gathered x");
  EXPECT_EQ(lab_ref, lab.download()) << "gathered labels";
}

TEST_F(GatherKernel, MatchesCpuExactly) {
  const uint64_t seed = test_seed(31);
  CONVNET_SEED_TRACE(seed);
  const DataSet d = make_data(seed);
  DeviceData dev(d);
  struct Case {
    int32_t cursor;
    int n;
  };
  for (const Case& c : {Case{0, 128}, Case{128, 128}, Case{5, 1}, Case{17, 77}, Case{kCount - 33, 33}}) {
    dev.set_step(0, c.cursor);
    check_gather(d, dev, c.cursor, c.n);
  }
}

TEST_F(GatherKernel, NormalisesEveryByteValueAsXOver255) {
  const DataSet d = make_data(test_seed(32));
  DeviceData dev(d);
  int32_t cursor = 0;
  while (d.order[size_t(cursor)] != 0) ++cursor;  // the sample that is image 0 (bytes 0..255)
  dev.set_step(0, cursor);
  DeviceArray<float> x(kPixels);
  DeviceArray<uint8_t> lab(1);
  gather_batch_gpu(dev.images.get(), dev.labels.get(), dev.order.get(), dev.cursor(), 1, x.get(), lab.get(), nullptr);
  const std::vector<float> got = x.download();
  for (int v = 0; v < 256; ++v) EXPECT_EQ(got[size_t(v)], float(v) / 255.0f) << "byte " << v;
  EXPECT_EQ(got[0], 0.0f);
  EXPECT_EQ(got[255], 1.0f);
}

TEST_F(GatherKernel, CappedGridStrides) {
  const uint64_t seed = test_seed(33);
  CONVNET_SEED_TRACE(seed);
  const DataSet d = make_data(seed);
  DeviceData dev(d);
  ScopedGridCap cap(2);
  dev.set_step(0, 9);
  check_gather(d, dev, 9, 128);
  dev.set_step(0, 200);
  check_gather(d, dev, 200, 3);
}

// The trainer's sequence: gather at the device cursor, advance on the device, gather the next batch.
TEST_F(GatherKernel, CursorIsReadOnTheDeviceAndAdvancedThere) {
  const uint64_t seed = test_seed(34);
  CONVNET_SEED_TRACE(seed);
  const DataSet d = make_data(seed);
  DeviceData dev(d);
  const int batch = 64;
  dev.set_step(7, 3);
  for (int s = 0; s < 4; ++s) {
    check_gather(d, dev, 3 + s * batch, batch);
    step_advance_gpu(dev.step.get(), batch, nullptr);
  }
  const DeviceStep st = dev.step.download()[0];
  EXPECT_EQ(st.step, 7 + 4);
  EXPECT_EQ(st.cursor, 3 + 4 * batch);
}

TEST_F(GatherKernel, StepAdvanceIsOneLaunchAndZeroBatchGathersNothing) {
  DeviceData dev(make_data(1));
  dev.set_step(0, 0);
  const uint64_t before = kernel_launch_count();
  step_advance_gpu(dev.step.get(), 128, nullptr);
  EXPECT_EQ(kernel_launch_count(), before + 1);
  const DeviceStep st = dev.step.download()[0];
  EXPECT_EQ(st.step, 1);
  EXPECT_EQ(st.cursor, 128);

  DeviceArray<float> x(1);
  DeviceArray<uint8_t> lab(1);
  gather_batch_gpu(dev.images.get(), dev.labels.get(), dev.order.get(), dev.cursor(), 0, x.get(), lab.get(), nullptr);
  EXPECT_EQ(kernel_launch_count(), before + 1);
  EXPECT_THROW(
      gather_batch_gpu(dev.images.get(), dev.labels.get(), dev.order.get(), dev.cursor(), -1, x.get(), lab.get(), nullptr),
      std::invalid_argument);
}

}  // namespace
