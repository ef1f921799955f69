// Warp operations against scalar references written from the CUDA Programming Guide's definitions:
// every shuffle variant and width, votes, match, warp reductions, partial masks and partial warps,
// and the errors a misused warp operation reports.
#include <random>

#include "simt_test_util.h"

namespace {

enum Shfl { kIdx, kUp, kDown, kXor };

template <typename T>
__global__ void shuffle_kernel(const T* in, T* out, const int* param, int variant, int width) {
  const unsigned t = threadIdx.x;
  const T v = in[t];
  const int p = param[t];
  T r;
  switch (variant) {
    case kIdx: r = __shfl_sync(0xffffffffu, v, p, width); break;
    case kUp: r = __shfl_up_sync(0xffffffffu, v, static_cast<unsigned>(p), width); break;
    case kDown: r = __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(p), width); break;
    default: r = __shfl_xor_sync(0xffffffffu, v, p, width); break;
  }
  out[t] = r;
}

// The Programming Guide, lane by lane: width splits the warp into segments; __shfl_sync reads lane
// srcLane % width of the caller's segment; _up/_down read lane -/+ delta and return the caller's own
// value when that leaves the segment; _xor reads lane ^ laneMask, and returns the caller's own value
// when that lies in a later segment (earlier segments are readable).
template <typename T>
T shuffle_reference(const std::vector<T>& v, unsigned warp_base, unsigned lane, int p, int variant, int width) {
  const unsigned seg = lane / width * width, w = static_cast<unsigned>(width);
  unsigned src = lane;
  switch (variant) {
    case kIdx: src = seg + static_cast<unsigned>(((p % width) + width) % width); break;
    case kUp: src = lane % w >= static_cast<unsigned>(p) ? lane - p : lane; break;
    case kDown: src = lane % w + p < w ? lane + p : lane; break;
    default: src = (lane ^ static_cast<unsigned>(p)) < seg + w ? lane ^ static_cast<unsigned>(p) : lane; break;
  }
  return v[warp_base + src];
}

template <typename T>
void check_shuffles(T (*make)(unsigned)) {
  const unsigned n = 64;  // two full warps
  std::vector<T> in(n);
  for (unsigned t = 0; t < n; ++t) in[t] = make(t);
  std::mt19937 rng(42);
  DeviceArray<T> d_in(in), d_out(n);
  for (int variant : {kIdx, kUp, kDown, kXor}) {
    for (int width : {1, 2, 4, 8, 16, 32}) {
      std::vector<int> param(n);
      for (unsigned t = 0; t < n; ++t) {
        // idx: any lane, including negative and >= width; up/down: 0..31; xor: 0..31.
        param[t] = variant == kIdx ? static_cast<int>(rng() % 80) - 8 : static_cast<int>(rng() % 32);
      }
      DeviceArray<int> d_param(param);
      d_out.poison();
      convnet::launch("shuffle_kernel", shuffle_kernel<T>, dim3(1), dim3(n), 0, nullptr, d_in.get(), d_out.get(),
                      d_param.get(), variant, width);
      std::vector<T> out = d_out.download();
      for (unsigned t = 0; t < n; ++t)
        ASSERT_EQ(out[t], shuffle_reference(in, t / 32 * 32, t % 32, param[t], variant, width))
            << "variant " << variant << " width " << width << " thread " << t << " param " << param[t];
    }
  }
}

TEST(Shuffle, AllVariantsAndWidthsInt) {
  check_shuffles<int>([](unsigned t) { return static_cast<int>(t * 1000 + 7) * (t % 2 ? -1 : 1); });
}
TEST(Shuffle, AllVariantsAndWidthsFloat) {
  check_shuffles<float>([](unsigned t) { return 0.5f + static_cast<float>(t) * 1.25f; });
}
TEST(Shuffle, AllVariantsAndWidthsDouble) {
  check_shuffles<double>([](unsigned t) { return 1e300 / (t + 1); });
}
TEST(Shuffle, AllVariantsAndWidthsLongLong) {
  check_shuffles<long long>([](unsigned t) { return (1LL << 40) * t - 3; });
}

// Lane numbering follows the linear thread id x + y*bx + z*bx*by in a 3-D block.
__global__ void lane_of_3d_block_kernel(int* out) {
  const int id = static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  out[id] = __shfl_xor_sync(0xffffffffu, id, 1);
}

TEST(Shuffle, LanesFollowLinearThreadIdIn3dBlocks) {
  DeviceArray<int> out(64);
  convnet::launch("lane_of_3d_block_kernel", lane_of_3d_block_kernel, dim3(1), dim3(4, 4, 4), 0, nullptr, out.get());
  std::vector<int> got = out.download();
  for (int id = 0; id < 64; ++id) EXPECT_EQ(got[id], id ^ 1);
}

// Only even lanes take part (mask 0x55555555); odd lanes do other work. Reading an odd lane is
// undefined on a GPU; the simulator delivers 0xFF bytes (-1) so such a read stands out.
__global__ void partial_mask_kernel(int* out) {
  const unsigned lane = threadIdx.x % 32;
  int r;
  if (lane % 2 == 0)
    r = __shfl_down_sync(0x55555555u, static_cast<int>(lane) * 10, 2u - (lane / 4) % 2u);
  else
    r = -static_cast<int>(lane);
  out[threadIdx.x] = r;
}

TEST(Shuffle, PartialMaskOnlyWaitsForNamedLanes) {
  DeviceArray<int> out(32);
  convnet::launch("partial_mask_kernel", partial_mask_kernel, dim3(1), dim3(32), 0, nullptr, out.get());
  std::vector<int> got = out.download();
  for (int lane = 0; lane < 32; ++lane) {
    if (lane % 2) {
      EXPECT_EQ(got[lane], -lane);
      continue;
    }
    const int delta = 2 - (lane / 4) % 2, src = lane + delta;
    const int expect = src >= 32 ? lane * 10 : (src % 2 == 0 ? src * 10 : -1);
    EXPECT_EQ(got[lane], expect) << "lane " << lane;
  }
}

// A block of 48 threads: the second warp has 16 lanes; a full-mask reduction there must not wait for
// lanes 16..31 (they do not exist), and reads from them give 0xFF bytes.
__global__ void partial_warp_kernel(int* out) {
  const int id = static_cast<int>(threadIdx.x);
  out[id] = __shfl_down_sync(0xffffffffu, id, 8);
}

TEST(Shuffle, PartialLastWarp) {
  DeviceArray<int> out(48);
  convnet::launch("partial_warp_kernel", partial_warp_kernel, dim3(1), dim3(48), 0, nullptr, out.get());
  std::vector<int> got = out.download();
  for (int id = 0; id < 48; ++id) {
    const int lane = id % 32;
    const int expect = lane + 8 >= 32 ? id : (id + 8 < 48 ? id + 8 : -1);
    EXPECT_EQ(got[id], expect) << "thread " << id;
  }
}

// Lanes that exited before the shuffle are not waited for (CUDA: "all non-exited threads named in mask").
__global__ void exited_lanes_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  out[lane] = -2;
  if (lane >= 20) return;
  out[lane] = __shfl_xor_sync(0xffffffffu, lane, 4);
}

TEST(Shuffle, ExitedLanesAreNotWaitedFor) {
  DeviceArray<int> out(32);
  convnet::launch("exited_lanes_kernel", exited_lanes_kernel, dim3(1), dim3(32), 0, nullptr, out.get());
  std::vector<int> got = out.download();
  for (int lane = 0; lane < 32; ++lane) {
    const int src = lane ^ 4;
    const int expect = lane >= 20 ? -2 : (src < 20 ? src : -1);
    EXPECT_EQ(got[lane], expect) << "lane " << lane;
  }
}

__global__ void vote_kernel(const int* pred, const unsigned* masks, unsigned* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  const unsigned mask = masks[t / 32];
  if (!((mask >> lane) & 1u)) {
    out[4 * t] = out[4 * t + 1] = out[4 * t + 2] = out[4 * t + 3] = 0xDEADu;
    return;
  }
  out[4 * t + 0] = __ballot_sync(mask, pred[t]);
  out[4 * t + 1] = static_cast<unsigned>(__any_sync(mask, pred[t]));
  out[4 * t + 2] = static_cast<unsigned>(__all_sync(mask, pred[t]));
  out[4 * t + 3] = __match_any_sync(mask, pred[t] % 3);
}

TEST(Vote, BallotAnyAllMatchAgainstReference) {
  const unsigned warps = 5, n = warps * 32;
  std::mt19937 rng(3);
  // Full mask; a partial mask; all false; all true; a single lane.
  std::vector<unsigned> masks = {0xffffffffu, 0x0f0f00ffu, 0xffffffffu, 0xffffffffu, 0x00010000u};
  std::vector<int> pred(n);
  for (unsigned t = 0; t < n; ++t) pred[t] = static_cast<int>(rng() % 5);
  for (unsigned l = 0; l < 32; ++l) {
    pred[2 * 32 + l] = 0;
    pred[3 * 32 + l] = 1 + static_cast<int>(l);
  }
  DeviceArray<int> d_pred(pred);
  DeviceArray<unsigned> d_masks(masks), d_out(4 * n);
  convnet::launch("vote_kernel", vote_kernel, dim3(1), dim3(n), 0, nullptr, d_pred.get(), d_masks.get(), d_out.get());
  std::vector<unsigned> out = d_out.download();
  for (unsigned w = 0; w < warps; ++w) {
    unsigned ballot = 0;
    for (unsigned l = 0; l < 32; ++l)
      if (((masks[w] >> l) & 1u) && pred[w * 32 + l]) ballot |= 1u << l;
    for (unsigned l = 0; l < 32; ++l) {
      const unsigned t = w * 32 + l;
      if (!((masks[w] >> l) & 1u)) continue;
      unsigned match = 0;
      for (unsigned o = 0; o < 32; ++o)
        if (((masks[w] >> o) & 1u) && pred[w * 32 + o] % 3 == pred[t] % 3) match |= 1u << o;
      EXPECT_EQ(out[4 * t + 0], ballot) << "warp " << w << " lane " << l;
      EXPECT_EQ(out[4 * t + 1], ballot != 0 ? 1u : 0u) << "warp " << w;
      EXPECT_EQ(out[4 * t + 2], ballot == masks[w] ? 1u : 0u) << "warp " << w;
      EXPECT_EQ(out[4 * t + 3], match) << "warp " << w << " lane " << l;
    }
  }
}

__global__ void warp_reduce_kernel(const int* in, int* out) {
  const unsigned t = threadIdx.x;
  const int v = in[t];
  const unsigned u = static_cast<unsigned>(v);
  out[7 * t + 0] = __reduce_add_sync(0xffffffffu, v);
  out[7 * t + 1] = __reduce_min_sync(0xffffffffu, v);
  out[7 * t + 2] = __reduce_max_sync(0xffffffffu, v);
  out[7 * t + 3] = static_cast<int>(__reduce_min_sync(0xffffffffu, u));
  out[7 * t + 4] = static_cast<int>(__reduce_and_sync(0xffffffffu, u));
  out[7 * t + 5] = static_cast<int>(__reduce_or_sync(0xffffffffu, u));
  out[7 * t + 6] = static_cast<int>(__reduce_xor_sync(0xffffffffu, u));
  __syncwarp();
}

TEST(Vote, WarpReductions) {
  std::vector<int> in(64);
  std::mt19937 rng(9);
  for (auto& v : in) v = static_cast<int>(rng() % 2001) - 1000;
  DeviceArray<int> d_in(in), d_out(7 * 64);
  convnet::launch("warp_reduce_kernel", warp_reduce_kernel, dim3(1), dim3(64), 0, nullptr, d_in.get(), d_out.get());
  std::vector<int> out = d_out.download();
  for (unsigned w = 0; w < 2; ++w) {
    int add = 0, mn = INT32_MAX, mx = INT32_MIN;
    unsigned umin = UINT32_MAX, uand = ~0u, uor = 0, uxor = 0;
    for (unsigned l = 0; l < 32; ++l) {
      const int v = in[w * 32 + l];
      const unsigned u = static_cast<unsigned>(v);
      add += v, mn = std::min(mn, v), mx = std::max(mx, v);
      umin = std::min(umin, u), uand &= u, uor |= u, uxor ^= u;
    }
    for (unsigned l = 0; l < 32; ++l) {
      const int* o = &out[7 * (w * 32 + l)];
      EXPECT_EQ(o[0], add);
      EXPECT_EQ(o[1], mn);
      EXPECT_EQ(o[2], mx);
      EXPECT_EQ(static_cast<unsigned>(o[3]), umin);
      EXPECT_EQ(static_cast<unsigned>(o[4]), uand);
      EXPECT_EQ(static_cast<unsigned>(o[5]), uor);
      EXPECT_EQ(static_cast<unsigned>(o[6]), uxor);
    }
  }
}

__global__ void mismatched_warp_ops_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x);
  out[lane] = lane < 16 ? __shfl_sync(0xffffffffu, lane, 0) : static_cast<int>(__ballot_sync(0xffffffffu, 1));
}

TEST(WarpErrors, DifferentOperationsInOneWarpFailTheLaunch) {
  DeviceArray<int> out(32);
  const std::string msg = thrown_message([&] {
    convnet::launch("mismatched_warp_ops_kernel", mismatched_warp_ops_kernel, dim3(1), dim3(32), 0, nullptr, out.get());
  });
  EXPECT_NE(msg.find("cudaErrorLaunchFailure"), std::string::npos) << msg;
  EXPECT_NE(msg.find("met at different warp operations"), std::string::npos) << msg;
}

__global__ void lane_not_in_mask_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0x1u, 5, 0); }

TEST(WarpErrors, CallerMustBeInItsMask) {
  DeviceArray<int> out(2);
  const std::string msg = thrown_message([&] {
    convnet::launch("lane_not_in_mask_kernel", lane_not_in_mask_kernel, dim3(1), dim3(2), 0, nullptr, out.get());
  });
  EXPECT_NE(msg.find("lane 1 is not in its own mask 0x00000001"), std::string::npos) << msg;
  EXPECT_NE(msg.find("thread (1,0,0)"), std::string::npos) << msg;
}

__global__ void bad_width_kernel(int* out) { out[threadIdx.x] = __shfl_sync(0xffffffffu, 1, 0, 12); }

TEST(WarpErrors, WidthMustBeAPowerOfTwo) {
  DeviceArray<int> out(32);
  const std::string msg = thrown_message(
      [&] { convnet::launch("bad_width_kernel", bad_width_kernel, dim3(1), dim3(32), 0, nullptr, out.get()); });
  EXPECT_NE(msg.find("width 12 is not a power of two"), std::string::npos) << msg;
}

TEST(WarpErrors, OutsideAKernelIsAnError) { EXPECT_THROW(__ballot_sync(1u, 1), std::logic_error); }

}  // namespace
