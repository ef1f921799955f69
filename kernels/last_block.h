// Device helpers for kernels that finish a grid-wide reduction in the block that completes last, so a
// reduction over many blocks is one launch, deterministic (fixed-order sums, no float atomics) and
// replayable in a CUDA Graph (the counter is reset by the block that saw it reach the grid size).
// The pattern is CUDA's threadFenceReduction sample: each block writes its partial results, fences
// them, takes a ticket from an atomic counter; the block with the last ticket knows every other block
// has written, fences again and reads them.
// Include only from .cu files (device code).
#pragma once

#include "cuda_compat.h"

namespace convnet {

// Call from every thread of the block once its global writes are done, each writer having called
// __threadfence() after its own writes. Returns true in every thread of the block that finished last
// (uniform within a block, so the caller may use barriers on that path). That block also resets the
// ticket: every block has counted by then.
__device__ inline bool block_finished_last(unsigned int* ticket) {
  __shared__ bool last;
  __syncthreads();  // the block's writes (and their fences) are done
  if (threadIdx.x == 0 && threadIdx.y == 0 && threadIdx.z == 0) {
    __threadfence();
    const unsigned blocks = gridDim.x * gridDim.y * gridDim.z;
    const bool mine = atomicAdd(ticket, 1u) == blocks - 1;
    if (mine) *ticket = 0;
    last = mine;
  }
  __syncthreads();
  if (last) __threadfence();  // order the reads of the other blocks' results after the ticket
  return last;
}

}  // namespace convnet
