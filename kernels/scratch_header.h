// The header that opens the scratch of every fused kernel that finishes a reduction in the block that
// completes last (kernels/last_block.h): the fused backward convs, the optimiser step and the head.
// Plain C++ (no CUDA syntax), so host code can size and zero it; the kernels reset it after every
// launch, so it must be zero only before the first one.
#pragma once

#include <cstddef>

namespace convnet {

// The first 16 bytes of every fused kernel's scratch: zero before the first launch, zero again after
// every launch (the block that finishes a launch last resets them).
struct ScratchHeader {
  unsigned long long slot;  // adam_step/sgd_step: ~(smallest non-finite gradient key) of the launch, 0 = none
  unsigned int ticket;      // blocks of the running launch that have finished
  unsigned int pad;
};
constexpr size_t kScratchHeaderBytes = 16;
static_assert(sizeof(ScratchHeader) == kScratchHeaderBytes, "scratch header layout");

}  // namespace convnet
