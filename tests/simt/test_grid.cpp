// Grids and blocks: 2-D/3-D shapes, grid-stride loops with a deliberately small grid, thread orders,
// atomics under contention, and a block reduction with a shared-memory stage and a warp stage.
#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "simt_test_util.h"

namespace {

// Every thread of a 3-D grid of 3-D blocks writes its global coordinates; each element is hit once.
__global__ void coordinates_kernel(int* hits, int* coords, int nx, int ny) {
  const int x = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  const int y = static_cast<int>(blockIdx.y * blockDim.y + threadIdx.y);
  const int z = static_cast<int>(blockIdx.z * blockDim.z + threadIdx.z);
  const int i = (z * ny + y) * nx + x;
  atomicAdd(&hits[i], 1);
  coords[3 * i + 0] = x;
  coords[3 * i + 1] = y;
  coords[3 * i + 2] = static_cast<int>(gridDim.x * 100 + blockDim.z * 10 + gridDim.z);
}

TEST(Grid, ThreeDimensionalGridsAndBlocks) {
  for (auto shape : {std::pair<dim3, dim3>{dim3(3, 4, 2), dim3(5, 3, 2)}, {dim3(7, 1, 1), dim3(32, 1, 1)},
                     {dim3(2, 3, 1), dim3(16, 16, 1)}, {dim3(1, 1, 5), dim3(1, 1, 64)}}) {
    const dim3 g = shape.first, b = shape.second;
    const int nx = static_cast<int>(g.x * b.x), ny = static_cast<int>(g.y * b.y), nz = static_cast<int>(g.z * b.z);
    const size_t n = static_cast<size_t>(nx) * ny * nz;
    DeviceArray<int> hits(std::vector<int>(n, 0)), coords(3 * n);
    convnet::launch("coordinates_kernel", coordinates_kernel, g, b, 0, nullptr, hits.get(), coords.get(), nx, ny);
    std::vector<int> h = hits.download(), c = coords.download();
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(h[i], 1) << "element " << i;
      ASSERT_EQ(c[3 * i + 0], static_cast<int>(i % nx));
      ASSERT_EQ(c[3 * i + 1], static_cast<int>(i / nx % ny));
      ASSERT_EQ(c[3 * i + 2], static_cast<int>(g.x * 100 + b.z * 10 + g.z));
    }
  }
}

__global__ void axpb_grid_stride_kernel(const float* x, float* y, int* hits, size_t n) {
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += stride) {
    y[i] = 2.0f * x[i] + 1.0f;
    atomicAdd(&hits[i], 1);
  }
}

TEST(Grid, GridStrideLoopWithADeliberatelySmallGrid) {
  for (size_t n : {size_t{1}, size_t{31}, size_t{10007}}) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(i) * 0.5f;
    DeviceArray<float> d_x(x), d_y(n);
    DeviceArray<int> hits(std::vector<int>(n, 0));
    d_y.poison();
    convnet::launch("axpb_grid_stride_kernel", axpb_grid_stride_kernel, dim3(3), dim3(32), 0, nullptr, d_x.get(),
                    d_y.get(), hits.get(), n);
    std::vector<float> y = d_y.download();
    std::vector<int> h = hits.download();
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(y[i], 2.0f * x[i] + 1.0f) << "n " << n << " i " << i;
      ASSERT_EQ(h[i], 1) << "n " << n << " i " << i;
    }
  }
}

// Records the order in which the threads of each block start, and the order of the blocks.
__global__ void start_order_kernel(int* thread_seq, int* block_seq, int* counters) {
  const int slot = atomicAdd(&counters[blockIdx.x], 1);
  thread_seq[blockIdx.x * blockDim.x + slot] = static_cast<int>(threadIdx.x);
  if (slot == 0) block_seq[atomicAdd(&counters[gridDim.x], 1)] = static_cast<int>(blockIdx.x);
}

TEST(ThreadOrder, ForwardReverseAndShuffle) {
  const int block = 64, blocks = 8;
  auto run = [&](simt::ThreadOrder order, std::vector<int>* blocks_out) {
    simt::ScopedThreadOrder scoped(order);
    DeviceArray<int> seq(block * blocks), bseq(blocks), counters(std::vector<int>(blocks + 1, 0));
    convnet::launch("start_order_kernel", start_order_kernel, dim3(blocks), dim3(block), 0, nullptr, seq.get(),
                    bseq.get(), counters.get());
    *blocks_out = bseq.download();
    return seq.download();
  };
  std::vector<int> identity(block), bidentity(blocks), b;
  std::iota(identity.begin(), identity.end(), 0);
  std::iota(bidentity.begin(), bidentity.end(), 0);
  std::vector<int> f = run(simt::ThreadOrder::forward(), &b);
  EXPECT_EQ(std::vector<int>(f.begin(), f.begin() + block), identity);
  EXPECT_EQ(b, bidentity);
  std::vector<int> r = run(simt::ThreadOrder::reverse(), &b);
  EXPECT_EQ(std::vector<int>(r.begin(), r.begin() + block), std::vector<int>(identity.rbegin(), identity.rend()));
  EXPECT_EQ(b, std::vector<int>(bidentity.rbegin(), bidentity.rend()));
  std::vector<int> s = run(simt::ThreadOrder::shuffle(99), &b);
  for (int k = 0; k < blocks; ++k) {
    std::vector<int> one(s.begin() + k * block, s.begin() + (k + 1) * block);
    EXPECT_NE(one, identity) << "block " << k;
    std::sort(one.begin(), one.end());
    EXPECT_EQ(one, identity) << "block " << k;
  }
  EXPECT_NE(b, bidentity);
  std::sort(b.begin(), b.end());
  EXPECT_EQ(b, bidentity);
}

TEST(ThreadOrder, ParseAndName) {
  EXPECT_EQ(simt::ThreadOrder::parse("forward").kind, simt::ThreadOrder::kForward);
  EXPECT_EQ(simt::ThreadOrder::parse("reverse").kind, simt::ThreadOrder::kReverse);
  EXPECT_EQ(simt::ThreadOrder::parse("shuffle:17").seed, 17u);
  EXPECT_EQ(simt::ThreadOrder::parse("shuffle:17").name(), "shuffle:17");
  EXPECT_THROW(simt::ThreadOrder::parse("sideways"), std::invalid_argument);
  EXPECT_THROW(simt::ThreadOrder::parse("shuffle:x"), std::invalid_argument);
}

__global__ void atomics_kernel(const int* values, const float* fvalues, int* counter, int* tickets, int* imax,
                               int* imin, float* fsum, float* fmax_cas, unsigned long long* usum, int* exch) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  tickets[i] = atomicAdd(counter, 1);
  atomicMax(imax, values[i]);
  atomicMin(imin, values[i]);
  atomicAdd(fsum, fvalues[i]);
  atomicAdd(usum, 1ull << 33);
  // Float max through compare-and-swap on the bit pattern (CUDA has no float atomicMax).
  int* addr = reinterpret_cast<int*>(fmax_cas);
  int old = *addr, assumed;
  do {
    assumed = old;
    if (__int_as_float(assumed) >= fvalues[i]) break;
    old = atomicCAS(addr, assumed, __float_as_int(fvalues[i]));
  } while (old != assumed);
  exch[i + 1] = atomicExch(&exch[0], i);
}

TEST(Atomics, UnderContention) {
  const int blocks = 37, block = 128, n = blocks * block;
  std::mt19937 rng(5);
  std::vector<int> values(n);
  std::vector<float> fvalues(n);
  for (int i = 0; i < n; ++i) {
    values[i] = static_cast<int>(rng() % 100001) - 50000;
    fvalues[i] = static_cast<float>(rng() % 1000) / 64.0f - 7.0f;  // exact in float, sums exact too
  }
  DeviceArray<int> d_values(values), counter(std::vector<int>{0}), tickets(n), imax(std::vector<int>{INT32_MIN}),
      imin(std::vector<int>{INT32_MAX}), exch(std::vector<int>(n + 1, -1));
  DeviceArray<float> d_fvalues(fvalues), fsum(std::vector<float>{0.0f}), fmax_cas(std::vector<float>{-1e30f});
  DeviceArray<unsigned long long> usum(std::vector<unsigned long long>{0});
  convnet::launch("atomics_kernel", atomics_kernel, dim3(blocks), dim3(block), 0, nullptr, d_values.get(),
                  d_fvalues.get(), counter.get(), tickets.get(), imax.get(), imin.get(), fsum.get(), fmax_cas.get(),
                  usum.get(), exch.get());
  EXPECT_EQ(counter.download()[0], n);
  std::vector<int> t = tickets.download();
  std::sort(t.begin(), t.end());
  for (int i = 0; i < n; ++i) ASSERT_EQ(t[i], i) << "tickets must be a permutation";
  EXPECT_EQ(imax.download()[0], *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(imin.download()[0], *std::min_element(values.begin(), values.end()));
  EXPECT_EQ(fsum.download()[0], static_cast<float>(std::accumulate(fvalues.begin(), fvalues.end(), 0.0)));
  EXPECT_EQ(fmax_cas.download()[0], *std::max_element(fvalues.begin(), fvalues.end()));
  EXPECT_EQ(usum.download()[0], static_cast<unsigned long long>(n) << 33);
  // Exchange: the returned old values plus the final value are the initial -1 and every index once.
  std::vector<int> e = exch.download();
  std::sort(e.begin(), e.end());
  EXPECT_EQ(e[0], -1);
  for (int i = 0; i < n; ++i) ASSERT_EQ(e[i + 1], i);
}

TEST(Atomics, IncDecWrapLikeCuda) {
  unsigned v = 2;
  EXPECT_EQ(atomicInc(&v, 2u), 2u);
  EXPECT_EQ(v, 0u);
  EXPECT_EQ(atomicDec(&v, 5u), 0u);
  EXPECT_EQ(v, 5u);
}

// Block sum: grid-stride accumulation, a shared-memory tree down to 32 values, then a warp-shuffle stage.
__global__ void block_sum_kernel(const float* x, float* partial, size_t n) {
  DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  float v = 0.0f;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + t; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    v += x[i];
  s[t] = v;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride >= 32; stride /= 2) {
    if (t < stride) s[t] += s[t + stride];
    __syncthreads();
  }
  if (t < 32) {
    v = s[t];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(offset));
    if (t == 0) partial[blockIdx.x] = v;
  }
}

TEST(Reduction, SharedMemoryAndWarpStages) {
  for (unsigned block : {64u, 256u, 1024u}) {
    const size_t n = 100003;
    const unsigned blocks = 13;
    std::vector<float> x(n);
    std::mt19937 rng(block);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (auto& v : x) v = dist(rng);
    DeviceArray<float> d_x(x), partial(blocks);
    partial.poison();
    convnet::launch("block_sum_kernel", block_sum_kernel, dim3(blocks), dim3(block), block * sizeof(float), nullptr,
                    d_x.get(), partial.get(), n);
    std::vector<float> p = partial.download();
    double got = 0.0, want = 0.0;
    for (float v : p) got += v;
    for (float v : x) want += v;
    EXPECT_NEAR(got, want, 1e-3) << "block " << block;  // float partial sums of ~1e5 terms
    EXPECT_GT(simt::last_launch_stats().waiting_blocks, 0u);
  }
}

// Templates, __launch_bounds__, __restrict__, __forceinline__ and __device__ helpers compile and run.
template <typename T>
__device__ __forceinline__ T twice(T v) {
  return v + v;
}
template <typename T, int kScale>
__global__ void __launch_bounds__(128) scale_kernel(const T* __restrict__ in, T* __restrict__ out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) out[i] = twice(in[i]) * static_cast<T>(kScale) + static_cast<T>(min(i, 3) + max(0u, 1u));
}

TEST(Language, TemplatesAndQualifiers) {
  std::vector<double> in = {1.5, -2.0, 3.25, 0.0, 8.0};
  DeviceArray<double> d_in(in), d_out(in.size());
  convnet::launch("scale_kernel", scale_kernel<double, 3>, dim3(2), dim3(4), 0, nullptr, d_in.get(), d_out.get(),
                  static_cast<int>(in.size()));
  std::vector<double> out = d_out.download();
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(out[i], in[i] * 6.0 + std::min<int>(static_cast<int>(i), 3) + 1);
}

TEST(Language, IntrinsicsMatchCudaDefinitions) {
  EXPECT_EQ(__popc(0xF0F0u), 8);
  EXPECT_EQ(__clz(1), 31);
  EXPECT_EQ(__clz(0), 32);
  EXPECT_EQ(__ffs(0x8), 4);
  EXPECT_EQ(__brev(1u), 0x80000000u);
  EXPECT_EQ(__float_as_uint(1.0f), 0x3F800000u);
  EXPECT_EQ(__saturatef(1.5f), 1.0f);
  EXPECT_EQ(__saturatef(NAN), 0.0f);
  EXPECT_EQ(__umulhi(0x80000000u, 4u), 2u);
  EXPECT_EQ(min(-1, 2u), 2u);  // CUDA's mixed overload compares as unsigned
  EXPECT_EQ(max(2.5f, -1.0f), 2.5f);
}

}  // namespace
