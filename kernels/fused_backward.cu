// Fused backward of a conv block (conv + bias + ReLU [+ 2x2 max-pool]): one launch from the gradient
// of the block output to dpre and the bias gradient (conv_epilogue_backward), or, for the first layer,
// to the weight and bias gradients (conv_input_backward). Launchers and layouts: kernels/fused_backward.h.
//
// What a launch computes, per dpre element (oc, n, oh, ow):
//   g    = gradient of the block output at the element's pool window (n, oc, oh/2, ow/2) (or (oh, ow)
//          without the pool): dy there, or the col2im sum of the next layer's dcol over the <= K*K
//          im2col entries that copied y there (ki outer, kj inner, in double, rounded once: col2im_cpu)
//   dpre = g   when the pool window's argmax is this element (or there is no pool) and y there > 0,
//          0   otherwise, including the last row/column of an odd size that no window covers.
// It is only evaluated where it is needed (the argmax test comes first), so the col2im gather costs one
// sum per block-output element rather than four.
// CPU twin: col2im_cpu -> maxpool_backward_cpu -> bias_relu_backward_cpu -> bias_backward_cpu, and for
// conv_input_backward then conv_backward_cpu's dw = dpre col^T and db (host/cpu_layers.cpp).
//
// Threading: a 2-D grid, blockIdx.y = oc (one row of dpre), blockIdx.x = one of `chunks` slices of the
// row's N*OH*OW columns; 256 threads stride through the slice, so consecutive threads write
// consecutive dpre addresses. chunks = min(ceil(NP / 256), kMaxChunks, grid_cap() / OC), at least 1
// (a capped grid makes every thread stride). Reductions, deterministic (no float atomics): each thread
// sums its columns in double; the block adds its threads by a warp-shuffle tree and then its 8 warps in
// index order, and writes its sums to its own scratch slot (oc, chunk); the block that finishes last
// (kernels/last_block.h) adds the slots of each row in chunk order and writes db (and dw).
// conv_input_backward keeps K*K + 1 double accumulators per thread (K is a template parameter, 1..5,
// so they stay in registers) and skips the columns where dpre is 0 (3 of 4 under a pool, and ReLU):
// every term is d * x with x an image pixel / 255, finite, so a skipped term adds exactly 0.
// Index math is 32-bit unsigned: the launchers check that every tensor has fewer than 2^31 elements.
//
// Tolerance: dpre EXACT (a selection, and col2im's sum in col2im_cpu's order and precision). db and dw:
// reduction class (1e-4): double partial sums added in a tree order instead of the CPU's left-to-right
// (db), against the CPU's float GEMM (dw). tests/kernels/test_fused_backward.cpp.
// Last measured time: not measured (no GPU).
#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "cuda_compat.h"
#include "fused_backward.h"
#include "last_block.h"
#include "launch.h"
#include "shape_check.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;  // a multiple of 32: the reduction adds whole warps
constexpr unsigned kWarps = kBlock / 32;
constexpr unsigned kMaxChunks = 128;  // blocks per dpre row; bounds the scratch independently of N
constexpr int kMaxInputK = 5;

// A conv block's backward geometry, precomputed by the launcher. Conv output (before the pool)
// OH x OW, P = OH*OW, NP = N*P; block output YH x YW; next conv (when the gradient comes from its
// dcol): kernel K, output QH x QW, NQ = N*QH*QW.
struct BlockGeom {
  unsigned OC, OH, OW, P, NP, YH, YW;
  bool pool;
  const float* dy;
  const float* next_dcol;
  unsigned K, QH, QW, NQ;
};

// The block output's gradient at (n, oc, yh, yw): given, or col2im's gather from the next layer's
// dcol, adding the terms in col2im_cpu's order and precision so the sum is bit-identical.
__device__ float output_grad(const BlockGeom& g, unsigned n, unsigned oc, unsigned yh, unsigned yw) {
  if (g.dy != nullptr) return g.dy[((n * g.OC + oc) * g.YH + yh) * g.YW + yw];
  double sum = 0.0;
  for (unsigned ki = 0; ki < g.K; ++ki)
    for (unsigned kj = 0; kj < g.K; ++kj) {
      if (yh < ki || yw < kj || yh - ki >= g.QH || yw - kj >= g.QW) continue;  // outside the next output
      const unsigned row = (oc * g.K + ki) * g.K + kj, col = n * g.QH * g.QW + (yh - ki) * g.QW + (yw - kj);
      sum += g.next_dcol[row * g.NQ + col];
    }
  return static_cast<float>(sum);
}

// dpre at row oc, column j = n*P + oh*OW + ow: max-pool backward as a gather (only the window's argmax
// receives its gradient), then ReLU backward with the mask from the kept output y.
__device__ float dpre_at(const BlockGeom& g, const float* __restrict__ y, const int32_t* __restrict__ argmax,
                         unsigned oc, unsigned j) {
  const unsigned n = j / g.P, p = j - n * g.P, oh = p / g.OW, ow = p - oh * g.OW;
  const unsigned yh = g.pool ? oh / 2 : oh, yw = g.pool ? ow / 2 : ow;
  if (yh >= g.YH || yw >= g.YW) return 0.0f;  // the row/column an odd size leaves out of every window
  const unsigned o = ((n * g.OC + oc) * g.YH + yh) * g.YW + yw;
  if (g.pool && static_cast<unsigned>(argmax[o]) != (n * g.OC + oc) * g.P + p) return 0.0f;
  return y[o] > 0.0f ? output_grad(g, n, oc, yh, yw) : 0.0f;
}

// Adds v[k] over the block's threads in a fixed order (warp-shuffle tree, then the warps in index
// order) and writes the block's sums to slot[0..kVals), fenced for the last block to read.
template <int kVals>
__device__ void block_sums_to_slot(const double (&v)[kVals], double* slot) {
  __shared__ double warp_sum[kVals][kWarps];
  const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int k = 0; k < kVals; ++k) {
    double s = v[k];
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0) warp_sum[k][warp] = s;
  }
  __syncthreads();
  if (threadIdx.x < static_cast<unsigned>(kVals)) {
    double s = 0.0;
    for (unsigned w = 0; w < kWarps; ++w) s += warp_sum[threadIdx.x][w];
    slot[threadIdx.x] = s;
    __threadfence();
  }
}

// Last block: the total of value k of row r over the row's chunks, in chunk order. Volatile reads: the
// slots were written by other blocks during this launch (no stale cached copy).
__device__ double chunk_total(const double* partial, unsigned r, unsigned k, unsigned vals) {
  const volatile double* p = partial + (static_cast<size_t>(r) * gridDim.x) * vals + k;
  double s = 0.0;
  for (unsigned c = 0; c < gridDim.x; ++c) s += p[static_cast<size_t>(c) * vals];
  return s;
}

double* partials(void* scratch) {
  return reinterpret_cast<double*>(static_cast<unsigned char*>(scratch) + kScratchHeaderBytes);
}
unsigned* ticket(void* scratch) { return &static_cast<ScratchHeader*>(scratch)->ticket; }

// grid (chunks, OC): writes dpre (OC, NP) and db (OC).
__global__ void __launch_bounds__(kBlock)
    conv_epilogue_backward_kernel(BlockGeom g, const float* __restrict__ y, const int32_t* __restrict__ argmax,
                                  float* __restrict__ dpre, float* __restrict__ db, double* partial, unsigned* ticket) {
  const unsigned oc = blockIdx.y;
  double sum[1] = {0.0};
  for (unsigned j = blockIdx.x * kBlock + threadIdx.x; j < g.NP; j += gridDim.x * kBlock) {
    const float d = dpre_at(g, y, argmax, oc, j);
    dpre[static_cast<size_t>(oc) * g.NP + j] = d;
    sum[0] += d;
  }
  block_sums_to_slot(sum, partial + oc * gridDim.x + blockIdx.x);
  if (!block_finished_last(ticket)) return;
  for (unsigned r = threadIdx.x; r < gridDim.y; r += kBlock) db[r] = static_cast<float>(chunk_total(partial, r, 0, 1));
}

// acc[ki*K + kj] += d * x[oh + ki, ow + kj] for one dpre element; acc[K*K] += d. `at` is x at (oh, ow).
template <int K>
__device__ void add_taps(double (&acc)[K * K + 1], float d, const float* __restrict__ at, unsigned W) {
  for (int ki = 0; ki < K; ++ki)
    for (int kj = 0; kj < K; ++kj) acc[ki * K + kj] += static_cast<double>(d) * at[ki * W + kj];
  acc[K * K] += d;
}

// grid (chunks, OC): x (N, H, W) -> dw (OC, K*K), db (OC); dpre is not stored.
template <int K>
__global__ void __launch_bounds__(kBlock)
    conv_input_backward_kernel(const float* __restrict__ x, BlockGeom g, const float* __restrict__ y,
                               const int32_t* __restrict__ argmax, float* __restrict__ dw, float* __restrict__ db,
                               unsigned H, unsigned W, double* partial, unsigned* ticket) {
  constexpr int kVals = K * K + 1;
  const unsigned oc = blockIdx.y;
  double acc[kVals] = {};
  for (unsigned j = blockIdx.x * kBlock + threadIdx.x; j < g.NP; j += gridDim.x * kBlock) {
    const float d = dpre_at(g, y, argmax, oc, j);
    if (d == 0.0f) continue;  // adds exactly 0 (x is finite): most of dpre under a pool and ReLU
    const unsigned n = j / g.P, p = j - n * g.P, oh = p / g.OW, ow = p - oh * g.OW;
    add_taps<K>(acc, d, x + (n * H + oh) * W + ow, W);
  }
  block_sums_to_slot(acc, partial + (oc * gridDim.x + blockIdx.x) * kVals);
  if (!block_finished_last(ticket)) return;
  for (unsigned q = threadIdx.x; q < gridDim.y * kVals; q += kBlock) {
    const unsigned r = q / kVals, k = q - r * kVals;
    const float total = static_cast<float>(chunk_total(partial, r, k, kVals));
    if (k < K * K)
      dw[r * K * K + k] = total;
    else
      db[r] = total;
  }
}

// Validates the block shape and the gradient source; returns the geometry the kernels use.
BlockGeom block_geom(const char* who, const BlockOutputGrad& grad, const ConvBlockShape& s) {
  if (s.N < 1 || s.OC < 1 || s.OC > 65535 || s.OH < 1 || s.OW < 1)
    bad_shape(who, "block N=" + std::to_string(s.N) + " OC=" + std::to_string(s.OC) + " OH=" + std::to_string(s.OH) +
                       " OW=" + std::to_string(s.OW) + " (need N, OH, OW >= 1 and OC in 1..65535)");
  if (s.pool && (s.OH < 2 || s.OW < 2)) bad_shape(who, "a 2x2 pool needs OH, OW >= 2");
  if ((grad.dy == nullptr) == (grad.next_dcol == nullptr)) bad_shape(who, "give exactly one of dy and next_dcol");
  BlockGeom g{};
  g.OC = s.OC, g.OH = s.OH, g.OW = s.OW, g.P = g.OH * g.OW, g.NP = unsigned(s.N) * g.P;
  g.YH = s.pool ? g.OH / 2 : g.OH, g.YW = s.pool ? g.OW / 2 : g.OW, g.pool = s.pool;
  g.dy = grad.dy, g.next_dcol = grad.next_dcol;
  check_int32(who, "the conv output", size_t(s.N) * s.OC * s.OH * s.OW);
  if (grad.next_dcol != nullptr) {
    if (grad.next_K < 1 || unsigned(grad.next_K) > std::min(g.YH, g.YW))
      bad_shape(who, "next_K=" + std::to_string(grad.next_K) + " does not fit the block output " +
                         std::to_string(g.YH) + "x" + std::to_string(g.YW));
    g.K = grad.next_K, g.QH = g.YH - g.K + 1, g.QW = g.YW - g.K + 1, g.NQ = unsigned(s.N) * g.QH * g.QW;
    check_int32(who, "next_dcol", size_t(s.OC) * g.K * g.K * g.NQ);
  }
  return g;
}

// Grid of the conv kernels: (chunks, OC) with chunks as in the header comment.
dim3 row_grid(const BlockGeom& g) {
  const size_t want = (size_t(g.NP) + kBlock - 1) / kBlock;
  const size_t cap = std::max<size_t>(1, grid_cap() / g.OC);
  return dim3(static_cast<unsigned>(std::clamp<size_t>(want, 1, std::min<size_t>(kMaxChunks, cap))), g.OC);
}

// Each instance is named with its K, as --timing and the launch log show it.
constexpr const char* kInputBackwardNames[] = {nullptr, "conv_input_backward_kernel<1>", "conv_input_backward_kernel<2>",
                                               "conv_input_backward_kernel<3>", "conv_input_backward_kernel<4>",
                                               "conv_input_backward_kernel<5>"};

template <int K>
void launch_input_backward(const float* x, const BlockGeom& g, const float* y, const int32_t* argmax, float* dw,
                           float* db, int H, int W, void* scratch, cudaStream_t stream) {
  static_assert(K >= 1 && K <= 5, "conv_input_backward_kernel is instantiated for K = 1..5");
  launch(kInputBackwardNames[K], conv_input_backward_kernel<K>, row_grid(g), kBlock, 0, stream, x, g, y, argmax,
         dw, db, unsigned(H), unsigned(W), partials(scratch), ticket(scratch));
}

}  // namespace

size_t conv_epilogue_backward_scratch_bytes(int OC) {
  return kScratchHeaderBytes + size_t(std::max(OC, 0)) * kMaxChunks * sizeof(double);
}

size_t conv_input_backward_scratch_bytes(int OC, int K) {
  return kScratchHeaderBytes + size_t(std::max(OC, 0)) * kMaxChunks * (size_t(K) * K + 1) * sizeof(double);
}

void conv_epilogue_backward_gpu(const BlockOutputGrad& grad, const float* y, const int32_t* argmax, float* dpre,
                                float* db, const ConvBlockShape& shape, void* scratch, cudaStream_t stream) {
  const BlockGeom g = block_geom("conv_epilogue_backward_gpu", grad, shape);
  launch("conv_epilogue_backward_kernel", conv_epilogue_backward_kernel, row_grid(g), kBlock, 0, stream, g, y, argmax,
         dpre, db, partials(scratch), ticket(scratch));
}

void conv_input_backward_gpu(const float* x, const BlockOutputGrad& grad, const float* y, const int32_t* argmax,
                             float* dw, float* db, int H, int W, int K, const ConvBlockShape& shape, void* scratch,
                             cudaStream_t stream) {
  const char* who = "conv_input_backward_gpu";
  if (K < 1 || K > kMaxInputK || H - K + 1 != shape.OH || W - K + 1 != shape.OW)
    bad_shape(who, "input " + std::to_string(H) + "x" + std::to_string(W) + ", K=" + std::to_string(K) +
                       " and output " + std::to_string(shape.OH) + "x" + std::to_string(shape.OW) + " (need K in 1.." +
                       std::to_string(kMaxInputK) + ", OH = H - K + 1, OW = W - K + 1)");
  const BlockGeom g = block_geom(who, grad, shape);
  check_int32(who, "x", size_t(shape.N) * H * W);
  switch (K) {
    case 1: return launch_input_backward<1>(x, g, y, argmax, dw, db, H, W, scratch, stream);
    case 2: return launch_input_backward<2>(x, g, y, argmax, dw, db, H, W, scratch, stream);
    case 3: return launch_input_backward<3>(x, g, y, argmax, dw, db, H, W, scratch, stream);
    case 4: return launch_input_backward<4>(x, g, y, argmax, dw, db, H, W, scratch, stream);
    default: return launch_input_backward<5>(x, g, y, argmax, dw, db, H, W, scratch, stream);
  }
}

}  // namespace convnet
