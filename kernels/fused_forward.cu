// Fused forward kernels of the training step (issue #6) and the fused classifier head.
//
// Per training step of the seed net: [conv_input_forward] [GEMM conv2] [conv_epilogue_forward conv2]
// [GEMM conv3] [conv_epilogue_forward conv3] [head_train], then backward and the optimiser. Each
// launcher is one launch; layouts and CPU twins are listed in fused_forward.h. The per-layer
// kernels (kernels.h) remain for architectures this plan does not cover.
//
// conv_input_forward (gather + conv C=1 + bias + ReLU [+ pool] [+ next im2col])
//   Threading: one 256-thread block per sample (block-stride over samples when the grid is capped).
//   The block normalises its image into shared memory (u8 / 255 with __fdiv_rn, as gather_batch_gpu:
//   exact) and writes that row of x; after a barrier each thread takes y elements of the sample
//   (block-stride over OC * YH * YW) and computes the K*K direct convolution of each conv
//   output it needs (4 with the pool) from shared memory. No im2col, no GEMM: K*K = 9 is far too
//   short a dot product for a GEMM.
// conv_epilogue_forward (bias + ReLU [+ pool] [+ next im2col] after the im2col GEMM)
//   Threading: one thread per y element, grid-stride over N * OC * YH * YW; it reads its 1 (or 4) pre
//   values. Arithmetic is bias_relu_forward_cpu's single float add and `v < 0 ? 0 : v`.
// Both: the pool picks the first maximum of the 2x2 window in row-major order (strict `>`), argmax is
//   the flat index into the (N, OC, OH, OW) conv output, exactly as maxpool_forward_cpu. The next
//   layer's im2col is a SCATTER of each y element to the <= K*K col entries that copy it; every col
//   entry has exactly one source element, so each is written once, without accumulation:
//   deterministic, and unwritten entries cannot exist.
// head_train / head_eval ([dropout] dense10 + softmax cross-entropy [+ all head gradients])
//   Threading: G = min(ceil(n / 8), 16, grid cap) blocks of 256 threads; block g owns the contiguous
//   samples [g * chunk, (g + 1) * chunk). Phase 1: warp w of the block takes its samples w, w + 8, ...;
//   lanes stride over F for the 10 dot products (dropout mask recomputed from the counter hash of
//   kernels/rng.h, as dropout_forward_gpu), a shuffle tree sums them, lane 0 runs the softmax
//   cross-entropy in double with softmax_xent_gpu's code (kernels/xent.h) and writes dlogits to scratch
//   (or probs). Phase 2 (train): one thread per feature column i: the block's partial dw[:, i] over its
//   samples, and dh of its samples (dz . w[:, i], then the dropout mask). Phase 3: every block stores
//   its partials (dw, db, loss, correct) in its own scratch slot, fences, and takes a ticket
//   (kernels/last_block.h, from the ScratchHeader that opens the scratch); the LAST block to arrive adds
//   the slots in block order (fixed, so bit-identical run to run: no float atomics), writes dw and db
//   and adds the totals to *metrics; block_finished_last resets the ticket, so the launch can be
//   replayed (CUDA Graph) with no memset. The partials are read through volatile pointers: another SM
//   wrote them, and L1 is not coherent.
//
// Tolerance classes (tests/kernels/test_fused_forward.cpp):
//   conv_input_forward: x, labels exact; y and next_col ELEMENTWISE (the 9 products are summed by a
//     fixed fmaf chain in (ki, kj) order, the CPU's BLAS GEMM sums them in its own order); argmax exact
//     except in windows whose values tie within that rounding.
//   conv_epilogue_forward: exact, bit for bit.
//   head: REDUCTION (1e-4): dot products over F and sums over the batch in another order than the
//     CPU's BLAS; the loss sum as softmax_xent_gpu (1e-4 relative); correct and count exact.
// Index math: 32-bit unsigned in the conv kernels (the launchers check every tensor has < 2^31
// elements), size_t where a product can pass 2^32 in the head.
// Last measured time: not measured (no GPU).
#include "fused_forward.h"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

#include "cuda_compat.h"
#include "last_block.h"
#include "launch.h"
#include "rng.h"
#include "scratch_header.h"
#include "shape_check.h"
#include "xent.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;
constexpr unsigned kSide = 28, kPixels = kSide * kSide;  // MNIST (host/idx.h; kernels/ sees no host/)
constexpr unsigned kFullMask = 0xffffffffu;
constexpr unsigned kClasses = kHeadClasses;

__device__ __forceinline__ float relu(float v) { return v < 0.0f ? 0.0f : v; }

// ---- conv outputs: y, argmax and the next layer's im2col -----------------------------------------------

// Where a conv layer's output goes. The conv output is (N, OC, OH, OW); y is its 2x2 max-pool
// (YH = OH / 2) or the conv output itself (YH = OH); col, when non-null, is im2col of y for the next
// conv (kernel col_K, output planes col_OH x col_OW).
struct OutputMap {
  float* y;         // (N, OC, YH, YW)
  int32_t* argmax;  // (N, OC, YH, YW), with the pool
  float* col;       // (OC * col_K * col_K, N * col_OH * col_OW) or null
  unsigned N, OC, OH, OW, YH, YW;
  unsigned pool;  // 1: y is the max-pool of the conv output
  unsigned col_K, col_OH, col_OW;
};

// Conv output coordinates of element k of y element (yh, yw)'s window: k < 4 with the pool, k = 0 without.
__device__ __forceinline__ unsigned window_row(const OutputMap& m, unsigned yh, unsigned k) {
  return (m.pool + 1) * yh + k / 2;
}
__device__ __forceinline__ unsigned window_col(const OutputMap& m, unsigned yw, unsigned k) {
  return (m.pool + 1) * yw + k % 2;
}

// im2col copies y[n, c, h, w] to row (c, ki, kj), column (n, h - ki, w - kj) for every kernel offset
// that keeps (h - ki, w - kj) inside the next conv's output: write exactly those entries.
__device__ void scatter_col(const OutputMap& m, unsigned n, unsigned c, unsigned h, unsigned w, float v) {
  const unsigned K = m.col_K, P = m.col_OH * m.col_OW, NP = m.N * P;
  for (unsigned ki = 0; ki < K; ++ki) {
    if (h < ki || h - ki >= m.col_OH) continue;
    for (unsigned kj = 0; kj < K; ++kj) {
      if (w < kj || w - kj >= m.col_OW) continue;
      m.col[((c * K + ki) * K + kj) * NP + n * P + (h - ki) * m.col_OW + (w - kj)] = v;
    }
  }
}

// Writes y element (n, oc, yh, yw) from its window's post-ReLU conv outputs v (v[0] alone without the
// pool), its argmax with the pool, and its copies in the next im2col. The pool keeps the first maximum
// in row-major window order (strict `>`), as maxpool_forward_cpu: a NaN first element wins, later ones lose.
__device__ void emit_output(const OutputMap& m, unsigned n, unsigned oc, unsigned yh, unsigned yw, const float* v) {
  const unsigned at = ((n * m.OC + oc) * m.YH + yh) * m.YW + yw;
  unsigned best = 0;
  if (m.pool) {
    for (unsigned k = 1; k < 4; ++k)
      if (v[k] > v[best]) best = k;
    const unsigned oh = window_row(m, yh, best), ow = window_col(m, yw, best);
    m.argmax[at] = static_cast<int32_t>(((n * m.OC + oc) * m.OH + oh) * m.OW + ow);
  }
  m.y[at] = v[best];
  if (m.col != nullptr) scatter_col(m, n, oc, yh, yw, v[best]);
}

// ---- first layer: gather + direct convolution -------------------------------------------------------

struct InputConv {
  const uint8_t* images;  // (count, 28, 28)
  const uint8_t* labels;  // (count)
  const int32_t* order;   // the epoch's sample order
  const int32_t* cursor;  // device: first position of this batch in order
  const float* w;         // (OC, 1, K, K)
  const float* bias;      // (OC)
  unsigned K;
  float* x;                // (N, 784)
  uint8_t* batch_labels;   // (N)
};

// Sample b of the batch into image[] (shared) and x, as gather_batch_gpu; its label by thread 0.
__device__ void load_sample(const InputConv& p, unsigned b, float* image) {
  const size_t src = static_cast<size_t>(p.order[static_cast<size_t>(*p.cursor) + b]);
  for (unsigned q = threadIdx.x; q < kPixels; q += blockDim.x) {
    const float v = __fdiv_rn(static_cast<float>(p.images[src * kPixels + q]), 255.0f);
    image[q] = v;
    p.x[static_cast<size_t>(b) * kPixels + q] = v;
  }
  if (threadIdx.x == 0) p.batch_labels[b] = p.labels[src];
}

// relu(bias + sum of w[ki, kj] * image[oh + ki, ow + kj]): a fixed fmaf chain in (ki, kj) order, so the
// GPU and the simulator agree bit for bit (the CPU GEMM differs by its summation order only).
__device__ float conv_at(const float* image, const float* w, float bias, unsigned K, unsigned oh, unsigned ow) {
  float acc = 0.0f;
  for (unsigned ki = 0; ki < K; ++ki)
    for (unsigned kj = 0; kj < K; ++kj) acc = fmaf(w[ki * K + kj], image[(oh + ki) * kSide + ow + kj], acc);
  return relu(acc + bias);
}

// y element o = (oc, yh, yw) of sample b.
__device__ void input_output(const InputConv& p, const OutputMap& m, const float* image, unsigned b, unsigned o) {
  const unsigned yw = o % m.YW, t = o / m.YW, yh = t % m.YH, oc = t / m.YH;
  const float* w = p.w + oc * p.K * p.K;
  const float bias = p.bias[oc];
  float v[4];
  for (unsigned k = 0; k < (m.pool ? 4u : 1u); ++k)
    v[k] = conv_at(image, w, bias, p.K, window_row(m, yh, k), window_col(m, yw, k));
  emit_output(m, b, oc, yh, yw, v);
}

__global__ void __launch_bounds__(kBlock) conv_input_forward_kernel(InputConv p, OutputMap m) {
  __shared__ float image[kPixels];
  const unsigned per_sample = m.OC * m.YH * m.YW;
  // Every thread runs every sample iteration, so the whole block reaches both barriers.
  for (unsigned b = blockIdx.x; b < m.N; b += gridDim.x) {
    __syncthreads();  // the previous sample's convolutions are done reading image[]
    load_sample(p, b, image);
    __syncthreads();
    for (unsigned o = threadIdx.x; o < per_sample; o += blockDim.x) input_output(p, m, image, b, o);
  }
}

// ---- epilogue of an im2col + GEMM convolution ---------------------------------------------------------

// pre (OC, N*OH*OW), bias (OC) -> y etc.; one thread per y element.
__global__ void conv_epilogue_forward_kernel(const float* __restrict__ pre, const float* __restrict__ bias,
                                             OutputMap m, unsigned total) {
  const unsigned P = m.OH * m.OW, NP = m.N * P;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += blockDim.x * gridDim.x) {
    const unsigned yw = i % m.YW, t = i / m.YW, yh = t % m.YH, t2 = t / m.YH, oc = t2 % m.OC, n = t2 / m.OC;
    const float* plane = pre + oc * NP + n * P;  // channel oc of sample n, as an OH x OW plane
    const float b = bias[oc];
    float v[4];
    for (unsigned k = 0; k < (m.pool ? 4u : 1u); ++k)
      v[k] = relu(plane[window_row(m, yh, k) * m.OW + window_col(m, yw, k)] + b);
    emit_output(m, n, oc, yh, yw, v);
  }
}

// ---- classifier head --------------------------------------------------------------------------------

constexpr unsigned kHeadBlock = 256, kHeadWarps = kHeadBlock / 32;
constexpr unsigned kSamplesPerBlock = 8;  // aim: a warp per sample in phase 1
// At most this many blocks: the last block adds this many partial copies of dw, so more blocks would
// make that serial tail longer than the parallel part saves.
constexpr unsigned kMaxHeadBlocks = 16;

// Scratch, one slot per block (see head_layout for the byte offsets).
struct HeadScratch {
  ScratchHeader* header;  // its ticket counts the blocks that have stored their partials
  double* loss;           // [block] loss sum of the block's samples
  long long* correct;     // [block]
  double* db;             // [block][10]
  float* dw;              // [block][10][F]
  float* dz;              // [n][10] dlogits, written and read by the block that owns the sample
};

struct Head {
  const float* h;          // (n, F)
  const float* w;          // (10, F)
  const float* b;          // (10)
  const uint8_t* labels;   // (n)
  unsigned n, F, chunk;    // block g owns samples [g * chunk, min((g + 1) * chunk, n))
  float rate, scale;       // dropout; rate 0: none
  uint64_t seed;
  const DeviceStep* step;  // read only when rate > 0
  uint32_t layer;
  DeviceMetrics* metrics;
  float *dw, *db, *dh;  // train: (10, F), (10), (n, F)
  float* probs;         // eval: (n, 10) or null
  HeadScratch s;
};

__device__ __forceinline__ uint64_t head_step(const Head& p) {
  return p.rate > 0.0f ? static_cast<uint64_t>(p.step->step) : 0;
}

// Dropout keep decision of flat element i of h (n, F), as dropout_forward_gpu.
__device__ __forceinline__ bool head_keep(const Head& p, uint64_t step, size_t i) {
  return p.rate == 0.0f || dropout_keep(p.seed, step, p.layer, i, p.rate);
}

// Warp: the 10 logits of sample s, complete in lane 0 (the other lanes hold partial sums).
__device__ void sample_logits(const Head& p, uint64_t step, unsigned s, float* z) {
  const size_t row = static_cast<size_t>(s) * p.F;
  for (unsigned o = 0; o < kClasses; ++o) z[o] = 0.0f;
  for (unsigned i = threadIdx.x % 32; i < p.F; i += 32) {
    const float v = head_keep(p, step, row + i) ? p.h[row + i] * p.scale : 0.0f;
    for (unsigned o = 0; o < kClasses; ++o) z[o] = fmaf(v, p.w[static_cast<size_t>(o) * p.F + i], z[o]);
  }
  for (unsigned o = 0; o < kClasses; ++o) {
    for (unsigned offset = 16; offset > 0; offset /= 2) z[o] += __shfl_down_sync(kFullMask, z[o], offset);
    z[o] += p.b[o];
  }
}

// Phase 1: warp w takes samples first + w, first + w + 8, ... < last: logits, loss, and dz (train) or
// probs (eval). The block's loss and correct count go to its scratch slot, warps added in order.
__device__ void head_samples(const Head& p, unsigned first, unsigned last, bool train) {
  __shared__ double warp_loss[kHeadWarps];
  __shared__ long long warp_correct[kHeadWarps];
  const uint64_t step = head_step(p);
  const unsigned warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  double loss = 0.0;
  long long correct = 0;
  for (unsigned s = first + warp; s < last; s += kHeadWarps) {  // the same trips for all lanes of a warp
    float z[kClasses];
    sample_logits(p, step, s, z);
    float* dz = train ? p.s.dz + static_cast<size_t>(s) * kClasses : nullptr;
    float* probs = !train && p.probs != nullptr ? p.probs + static_cast<size_t>(s) * kClasses : nullptr;
    if (lane == 0) xent_sample(z, p.labels[s], dz, probs, int(p.n), int(kClasses), &loss, &correct);
  }
  if (lane == 0) {
    warp_loss[warp] = loss;
    warp_correct[warp] = correct;
  }
  __syncthreads();  // also publishes the dz rows to the block (phase 2 reads them)
  if (threadIdx.x == 0) {
    loss = 0.0, correct = 0;
    for (unsigned w = 0; w < kHeadWarps; ++w) loss += warp_loss[w], correct += warp_correct[w];
    p.s.loss[blockIdx.x] = loss;
    p.s.correct[blockIdx.x] = correct;
    __threadfence();  // block_finished_last's contract: each writer fences its own partials
  }
}

// Phase 2 (train): thread per feature column i: the block's partial dw[:, i] = sum over its samples of
// dz[s, :] * hd[s, i], and dh[s, i] = mask * scale * (dz[s, :] . w[:, i]). db partials by 10 threads.
__device__ void head_grads(const Head& p, unsigned first, unsigned last) {
  const uint64_t step = head_step(p);
  float* dw_part = p.s.dw + static_cast<size_t>(blockIdx.x) * kClasses * p.F;
  for (unsigned i = threadIdx.x; i < p.F; i += blockDim.x) {
    float w[kClasses], acc[kClasses];
    for (unsigned o = 0; o < kClasses; ++o) w[o] = p.w[static_cast<size_t>(o) * p.F + i], acc[o] = 0.0f;
    for (unsigned s = first; s < last; ++s) {
      const size_t at = static_cast<size_t>(s) * p.F + i;
      const bool keep = head_keep(p, step, at);
      const float hd = keep ? p.h[at] * p.scale : 0.0f;
      const float* dz = p.s.dz + static_cast<size_t>(s) * kClasses;
      float g = 0.0f;
      for (unsigned o = 0; o < kClasses; ++o) acc[o] = fmaf(dz[o], hd, acc[o]), g = fmaf(dz[o], w[o], g);
      p.dh[at] = keep ? g * p.scale : 0.0f;
    }
    for (unsigned o = 0; o < kClasses; ++o) dw_part[static_cast<size_t>(o) * p.F + i] = acc[o];
  }
  if (threadIdx.x < kClasses) {
    double sum = 0.0;
    for (unsigned s = first; s < last; ++s) sum += p.s.dz[static_cast<size_t>(s) * kClasses + threadIdx.x];
    p.s.db[blockIdx.x * kClasses + threadIdx.x] = sum;
  }
  __threadfence();  // block_finished_last's contract: each writer fences its own partials
}

// Phase 3, last block: the slots added in block order (double, rounded once), then the metrics.
__device__ void head_finish(const Head& p, bool train) {
  const unsigned blocks = gridDim.x;
  if (train) {
    const size_t count = static_cast<size_t>(kClasses) * p.F;
    const volatile float* dw = p.s.dw;
    for (size_t j = threadIdx.x; j < count; j += blockDim.x) {
      double sum = 0.0;
      for (unsigned g = 0; g < blocks; ++g) sum += dw[g * count + j];
      p.dw[j] = static_cast<float>(sum);
    }
    const volatile double* db = p.s.db;
    if (threadIdx.x < kClasses) {
      double sum = 0.0;
      for (unsigned g = 0; g < blocks; ++g) sum += db[g * kClasses + threadIdx.x];
      p.db[threadIdx.x] = static_cast<float>(sum);
    }
  }
  if (threadIdx.x != 0) return;
  const volatile double* loss = p.s.loss;
  const volatile long long* correct = p.s.correct;
  double loss_sum = 0.0;
  long long correct_sum = 0;
  for (unsigned g = 0; g < blocks; ++g) loss_sum += loss[g], correct_sum += correct[g];
  p.metrics->loss_sum += loss_sum;
  p.metrics->correct += correct_sum;
  p.metrics->count += p.n;
}

__global__ void __launch_bounds__(kHeadBlock) head_train_kernel(Head p) {
  const unsigned first = blockIdx.x * p.chunk, last = min(first + p.chunk, p.n);
  head_samples(p, first, last, true);
  head_grads(p, first, last);
  if (block_finished_last(&p.s.header->ticket)) head_finish(p, true);
}

__global__ void __launch_bounds__(kHeadBlock) head_eval_kernel(Head p) {
  const unsigned first = blockIdx.x * p.chunk, last = min(first + p.chunk, p.n);
  head_samples(p, first, last, false);
  if (block_finished_last(&p.s.header->ticket)) head_finish(p, false);
}

// ---- host side ------------------------------------------------------------------------------------------

// Validates the output side of a conv layer (the conv output N x OC x OH x OW is valid) and builds its map.
OutputMap output_map(const char* who, int N, int OC, int OH, int OW, bool pool, float* y, int32_t* argmax,
                     float* col, int next_K) {
  OutputMap m{y, argmax, col, unsigned(N), unsigned(OC), unsigned(OH), unsigned(OW), 0, 0, pool ? 1u : 0u, 0, 0, 0};
  m.YH = pool ? m.OH / 2 : m.OH;
  m.YW = pool ? m.OW / 2 : m.OW;
  if (m.YH == 0 || m.YW == 0)
    bad_shape(who, "the pool of a " + std::to_string(OH) + "x" + std::to_string(OW) + " conv output is empty");
  if (y == nullptr || (pool && argmax == nullptr)) bad_shape(who, "y (and argmax with the pool) must be given");
  check_int32(who, "the conv output", size_t(N) * OC * OH * OW);
  if (col == nullptr) return m;
  if (next_K < 1 || unsigned(next_K) > m.YH || unsigned(next_K) > m.YW)
    bad_shape(who, "next_K=" + std::to_string(next_K) + " does not fit the " + std::to_string(m.YH) + "x" +
                       std::to_string(m.YW) + " planes of y");
  m.col_K = unsigned(next_K);
  m.col_OH = m.YH - m.col_K + 1;
  m.col_OW = m.YW - m.col_K + 1;
  check_int32(who, "next_col", size_t(OC) * next_K * next_K * N * m.col_OH * m.col_OW);
  return m;
}

// Byte offsets of the head's scratch; the ScratchHeader opens it, so its ticket is the same word for
// every batch size, and for training and evaluation.
struct HeadLayout {
  size_t loss, correct, db, dw, dz, end;
};
HeadLayout head_layout(size_t max_batch, size_t F) {
  auto next = [](size_t at) { return (at + 255) / 256 * 256; };
  HeadLayout l{};
  l.loss = next(kScratchHeaderBytes);
  l.correct = next(l.loss + kMaxHeadBlocks * sizeof(double));
  l.db = next(l.correct + kMaxHeadBlocks * sizeof(long long));
  l.dw = next(l.db + kMaxHeadBlocks * kClasses * sizeof(double));
  l.dz = next(l.dw + kMaxHeadBlocks * kClasses * F * sizeof(float));
  l.end = l.dz + max_batch * kClasses * sizeof(float);
  return l;
}

// The head's parameters that training and evaluation share: shapes, grid split and scratch pointers.
Head head_params(const char* who, const float* h, int F, const float* w, const float* b, const uint8_t* labels,
                 int n, DeviceMetrics* metrics, void* scratch) {
  if (n < 1 || F < 1) bad_shape(who, "need n >= 1 and F >= 1, got n=" + std::to_string(n) + " F=" + std::to_string(F));
  check_int32(who, "h", size_t(n) * F);
  if (scratch == nullptr || reinterpret_cast<uintptr_t>(scratch) % 256 != 0)
    bad_shape(who, "scratch must be a 256-byte aligned device pointer");
  unsigned blocks = std::min({(unsigned(n) + kSamplesPerBlock - 1) / kSamplesPerBlock, kMaxHeadBlocks, grid_cap()});
  const unsigned chunk = (unsigned(n) + blocks - 1) / blocks;
  Head p{};
  p.h = h, p.w = w, p.b = b, p.labels = labels, p.metrics = metrics;
  p.n = unsigned(n), p.F = unsigned(F), p.chunk = chunk, p.scale = 1.0f;
  const HeadLayout l = head_layout(size_t(n), size_t(F));
  unsigned char* base = static_cast<unsigned char*>(scratch);
  p.s = HeadScratch{reinterpret_cast<ScratchHeader*>(base), reinterpret_cast<double*>(base + l.loss),
                    reinterpret_cast<long long*>(base + l.correct), reinterpret_cast<double*>(base + l.db),
                    reinterpret_cast<float*>(base + l.dw), reinterpret_cast<float*>(base + l.dz)};
  return p;
}

unsigned head_grid(const Head& p) { return (p.n + p.chunk - 1) / p.chunk; }

}  // namespace

void conv_input_forward_gpu(const uint8_t* images, const uint8_t* labels, const int32_t* order,
                            const int32_t* cursor, int n, const float* w, const float* bias, int OC, int K,
                            bool pool, float* x, uint8_t* batch_labels, float* y, int32_t* argmax,
                            float* next_col, int next_K, cudaStream_t stream) {
  const char* who = "conv_input_forward_gpu";
  if (n < 0 || OC < 1 || K < 1 || unsigned(K) > kSide)
    bad_shape(who, "need n >= 0, OC >= 1, 1 <= K <= 28, got n=" + std::to_string(n) + " OC=" + std::to_string(OC) +
                       " K=" + std::to_string(K));
  const int OH = int(kSide) - K + 1;
  const OutputMap m = output_map(who, n, OC, OH, OH, pool, y, argmax, next_col, next_K);
  check_int32(who, "x", size_t(n) * kPixels);
  if (n == 0) return;  // a zero-block grid is a launch error
  const InputConv p{images, labels, order, cursor, w, bias, unsigned(K), x, batch_labels};
  launch("conv_input_forward_kernel", conv_input_forward_kernel, grid_for(size_t(n), 1), kBlock, 0, stream, p, m);
}

void conv_epilogue_forward_gpu(const float* pre, const float* bias, int N, int OC, int OH, int OW, bool pool,
                               float* y, int32_t* argmax, float* next_col, int next_K, cudaStream_t stream) {
  const char* who = "conv_epilogue_forward_gpu";
  if (N < 0 || OC < 1 || OH < 1 || OW < 1)
    bad_shape(who, "need N >= 0 and OC, OH, OW >= 1, got N=" + std::to_string(N) + " OC=" + std::to_string(OC) +
                       " OH=" + std::to_string(OH) + " OW=" + std::to_string(OW));
  const OutputMap m = output_map(who, N, OC, OH, OW, pool, y, argmax, next_col, next_K);
  const size_t total = size_t(N) * m.OC * m.YH * m.YW;
  if (total == 0) return;
  launch("conv_epilogue_forward_kernel", conv_epilogue_forward_kernel, grid_for(total, kBlock), kBlock, 0, stream,
         pre, bias, m, unsigned(total));
}

size_t head_scratch_bytes(int max_batch, int F) {
  if (max_batch < 1 || F < 1)
    bad_shape("head_scratch_bytes", "need max_batch >= 1 and F >= 1, got " + std::to_string(max_batch) + ", " +
                                        std::to_string(F));
  return head_layout(size_t(max_batch), size_t(F)).end;
}

void head_train_gpu(const float* h, int F, float rate, uint64_t seed, const DeviceStep* step, uint32_t layer,
                    const float* w, const float* b, const uint8_t* labels, int n, DeviceMetrics* metrics,
                    float* dw, float* db, float* dh, void* scratch, cudaStream_t stream) {
  const char* who = "head_train_gpu";
  if (!(rate >= 0.0f && rate < 1.0f)) bad_shape(who, "dropout rate " + std::to_string(rate) + " outside [0, 1)");
  if (rate > 0.0f && step == nullptr) bad_shape(who, "dropout needs the device step");
  Head p = head_params(who, h, F, w, b, labels, n, metrics, scratch);
  p.rate = rate, p.scale = 1.0f / (1.0f - rate), p.seed = seed, p.step = step, p.layer = layer;  // dropout.cu's scale
  p.dw = dw, p.db = db, p.dh = dh;
  launch("head_train_kernel", head_train_kernel, head_grid(p), kHeadBlock, 0, stream, p);
}

void head_eval_gpu(const float* h, int F, const float* w, const float* b, const uint8_t* labels, int n,
                   float* probs, DeviceMetrics* metrics, void* scratch, cudaStream_t stream) {
  Head p = head_params("head_eval_gpu", h, F, w, b, labels, n, metrics, scratch);
  p.probs = probs;
  launch("head_eval_kernel", head_eval_kernel, head_grid(p), kHeadBlock, 0, stream, p);
}

}  // namespace convnet
