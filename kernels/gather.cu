// Batch input gather and the device step counter: the first and last launches of a training step.
//
// gather_batch_gpu
//   images (count, 28, 28) u8, labels (count) u8: the whole resident image set, uploaded once.
//   order (>= *cursor + n) int32: the epoch's sample order. cursor: ONE int32 in device memory
//   (DeviceStep::cursor), read by every thread, so the launch's arguments do not change from step
//   to step (CUDA Graph replay) and the host never waits for it.
//   x (n, 784) float = images[order[*cursor + b]] / 255; batch_labels (n) u8 = labels[order[...]].
//   CPU twin: gather_batch_cpu (host/cpu_layers.h), with cursor by value. Exact: both divide once,
//   correctly rounded (__fdiv_rn, which fast-math flags cannot turn into a reciprocal multiply;
//   x * (1/255) or __fdividef would differ from the CPU in the last bit).
//   Threading: one thread per output pixel, grid-stride over n*784; the thread of pixel 0 of a
//   sample also copies its label.
//
// step_advance_gpu
//   step->step += 1; step->cursor += batch. One thread of one block; runs after the optimiser so
//   that everything in the step saw the same step and cursor.
//
// Tolerance class: exact (tests/kernels/test_gather.cpp).
// Last measured time: not measured on a GPU yet.
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "launch.h"

namespace convnet {
namespace {

constexpr unsigned kBlock = 256;
constexpr size_t kPixels = 28 * 28;  // MNIST image size (host/idx.h kImagePixels; kernels/ sees no host/)

__global__ void gather_batch_kernel(const uint8_t* __restrict__ images, const uint8_t* __restrict__ labels,
                                    const int32_t* __restrict__ order, const int32_t* __restrict__ cursor, int n,
                                    float* __restrict__ x, uint8_t* __restrict__ batch_labels) {
  const size_t base = static_cast<size_t>(*cursor);
  const size_t total = static_cast<size_t>(n) * kPixels;
  const size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const size_t b = i / kPixels, p = i - b * kPixels;
    const size_t src = static_cast<size_t>(order[base + b]);
    x[i] = __fdiv_rn(static_cast<float>(images[src * kPixels + p]), 255.0f);
    if (p == 0) batch_labels[b] = labels[src];
  }
}

__global__ void step_advance_kernel(DeviceStep* step, int batch) {
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    step->step += 1;
    step->cursor += batch;
  }
}

}  // namespace

void gather_batch_gpu(const uint8_t* images, const uint8_t* labels, const int32_t* order, const int32_t* cursor,
                      int n, float* x, uint8_t* batch_labels, cudaStream_t stream) {
  if (n < 0) throw std::invalid_argument("gather_batch_gpu: negative batch size " + std::to_string(n));
  if (n == 0) return;
  const size_t total = static_cast<size_t>(n) * kPixels;
  launch("gather_batch_kernel", gather_batch_kernel, grid_for(total, kBlock), kBlock, 0, stream, images, labels,
         order, cursor, n, x, batch_labels);
}

void step_advance_gpu(DeviceStep* step, int batch, cudaStream_t stream) {
  launch("step_advance_kernel", step_advance_kernel, 1, 1, 0, stream, step, batch);
}

}  // namespace convnet
