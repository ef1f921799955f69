// Which layers of a model the GPU backend runs as fused kernels (issue #6), decided once from the
// model. Pure host code on the Model (no CUDA), so the decision is unit-tested on any machine.
//
// The fused plan covers models of the form
//   conv [pool] (conv [pool])* [flatten] [dropout r] dense10        (the conv blocks, then the head)
// where the first conv reads the 1x28x28 input with a kernel of 1..5 (fused_backward.h's limit for
// the first layer's weight gradient) and the dense layer has no ReLU (softmax is in the loss). The
// three presets (seed, seed96, keras) all have this form. Per training step it is one launch for the
// first conv block (gather + direct conv + bias + ReLU + pool + im2col of the next conv's input),
// GEMM + epilogue for each further block, one for the head (dropout, dense, softmax-CE and their
// gradients), epilogue-backward + 2 GEMMs per further block, one for the first block's weight
// gradient and one for the optimiser: 4 + 5 * (blocks - 1) launches (14 for the seed network).
// Every other model runs layer by layer (the per-layer kernels of kernels/kernels.h).
#pragma once

#include <optional>
#include <vector>

#include "model.h"

namespace convnet {

// conv (valid, stride 1, ReLU) [+ 2x2 max-pool]: one unit of the fused plan.
struct FusedConvBlock {
  int conv = -1;    // index of the conv layer in Model::layers
  int pool = -1;    // index of its pool layer, -1 when none
  int out = -1;     // index of the block's last layer: its output is the block output y
  int C = 0, H = 0, W = 0;     // conv input
  int OC = 0, OH = 0, OW = 0;  // conv output (before the pool)
  int K = 0;
  bool has_pool() const { return pool >= 0; }
};

struct FusedPlan {
  std::vector<FusedConvBlock> blocks;
  int dropout = -1;  // index of the head's dropout layer, -1 when none
  float rate = 0.0f; // its rate (0 without one)
  int dense = -1;    // index of the final dense layer
  int features = 0;  // F: the head's input width, the last block's output size per sample
  // Kernel launches (cuBLAS GEMMs counted as one each) of one training step / one evaluation batch.
  int train_launches() const { return 4 + 5 * (static_cast<int>(blocks.size()) - 1); }
  int eval_launches() const { return 2 + 2 * (static_cast<int>(blocks.size()) - 1); }
};

// The plan for `model` at batches of up to max_batch samples, or nullopt when the model does not have
// the form above or when one of its tensors (a conv output, an im2col matrix) would reach 2^31
// elements at max_batch: the fused kernels index with 32 bits (kernels/fused_*.cu check it), the
// per-layer ones do not.
std::optional<FusedPlan> fused_plan(const Model& model, int max_batch = 1);

}  // namespace convnet
