// Kernels for the fence check's own tests (test_fence_check.cpp), compiled with the check's
// instrumentation (fence_kernels.cpp); each returns the launch's error.
#pragma once

#include "simt.h"

namespace fence_test {

// Every thread writes its element, fences (or not), and the block with the last ticket adds the grid's
// elements into *total: block_finished_last's pattern.
cudaError_t last_block_sum(const float* x, float* partial, unsigned* ticket, float* total, unsigned blocks,
                           unsigned threads, bool writers_fence);
// Block b copies into `out` the element of `data` that block b - 1 wrote, with no other synchronisation.
cudaError_t read_neighbour(float* data, float* out, unsigned blocks, unsigned threads, bool writers_fence);
// Block b copies block (b + 1) % blocks' elements of `data` into its own of `out`, writing nothing it reads.
cudaError_t read_other_blocks(const float* data, float* out, unsigned blocks, unsigned threads);
// Each block writes and reads back its own elements through global memory, across a barrier.
cudaError_t own_block_round_trip(float* data, unsigned blocks, unsigned threads);
// Every thread adds into one counter with atomicAdd, and block 0 reads it back with an atomic.
cudaError_t atomic_counter(unsigned* counter, unsigned blocks, unsigned threads);

}  // namespace fence_test
