// Compiled with the fence check's instrumentation (tests/simt/CMakeLists.txt): see fence_kernels.h.
#include "fence_kernels.h"

namespace fence_test {
namespace {

__global__ void last_block_sum_kernel(const float* x, float* partial, unsigned* ticket, float* total,
                                      bool writers_fence) {
  __shared__ bool last;
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  partial[i] = 2.0f * x[i];
  if (writers_fence) __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(ticket, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last || threadIdx.x != 0) return;
  __threadfence();
  float sum = 0.0f;
  for (unsigned j = 0; j < gridDim.x * blockDim.x; ++j) sum += partial[j];
  *total = sum;
  *ticket = 0;
}

__global__ void read_neighbour_kernel(float* data, float* out, bool writers_fence) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  data[i] = static_cast<float>(i);
  if (writers_fence) __threadfence();
  if (blockIdx.x > 0) out[i] = data[i - blockDim.x];
}

__global__ void read_other_blocks_kernel(const float* data, float* out) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  out[i] = data[((blockIdx.x + 1) % gridDim.x) * blockDim.x + threadIdx.x];
}

__global__ void own_block_round_trip_kernel(float* data) {
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  data[i] = static_cast<float>(threadIdx.x);
  __syncthreads();
  const unsigned mirror = blockIdx.x * blockDim.x + (blockDim.x - 1 - threadIdx.x);
  const float v = data[mirror];
  __syncthreads();
  data[i] = v;
}

__global__ void atomic_counter_kernel(unsigned* counter) {
  atomicAdd(counter, 1u);
  if (blockIdx.x == 0 && threadIdx.x == 0) atomicAdd(counter, 0u);
}

// The launch's fault, if any, cleared for the next launch (cudaGetErrorString still describes it).
cudaError_t result() {
  const cudaError_t e = cudaDeviceSynchronize();
  cudaGetLastError();
  return e;
}

}  // namespace

cudaError_t last_block_sum(const float* x, float* partial, unsigned* ticket, float* total, unsigned blocks,
                           unsigned threads, bool writers_fence) {
  simt::launch_kernel("last_block_sum_kernel", last_block_sum_kernel, dim3(blocks), dim3(threads), 0, nullptr, x,
                      partial, ticket, total, writers_fence);
  return result();
}
cudaError_t read_neighbour(float* data, float* out, unsigned blocks, unsigned threads, bool writers_fence) {
  simt::launch_kernel("read_neighbour_kernel", read_neighbour_kernel, dim3(blocks), dim3(threads), 0, nullptr, data,
                      out, writers_fence);
  return result();
}
cudaError_t read_other_blocks(const float* data, float* out, unsigned blocks, unsigned threads) {
  simt::launch_kernel("read_other_blocks_kernel", read_other_blocks_kernel, dim3(blocks), dim3(threads), 0, nullptr,
                      data, out);
  return result();
}
cudaError_t own_block_round_trip(float* data, unsigned blocks, unsigned threads) {
  simt::launch_kernel("own_block_round_trip_kernel", own_block_round_trip_kernel, dim3(blocks), dim3(threads), 0,
                      nullptr, data);
  return result();
}
cudaError_t atomic_counter(unsigned* counter, unsigned blocks, unsigned threads) {
  simt::launch_kernel("atomic_counter_kernel", atomic_counter_kernel, dim3(blocks), dim3(threads), 0, nullptr,
                      counter);
  return result();
}

}  // namespace fence_test
