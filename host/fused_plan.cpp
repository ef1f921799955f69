// The fused plan's pattern match (fused_plan.h): walk the layers once, conv blocks then the head.
#include "fused_plan.h"

#include <algorithm>
#include <cstddef>

#include "idx.h"

namespace convnet {

namespace {

constexpr int kMaxFirstKernel = 5;  // conv_input_backward_gpu's limit (kernels/fused_backward.h)

bool is(const Model& m, size_t i, LayerKind kind) { return i < m.layers.size() && m.layers[i].spec.kind == kind; }

}  // namespace

std::optional<FusedPlan> fused_plan(const Model& model, int max_batch) {
  FusedPlan plan;
  size_t i = 0;
  while (is(model, i, LayerKind::Conv)) {
    const Layer& conv = model.layers[i];
    FusedConvBlock b;
    b.conv = b.out = static_cast<int>(i);
    b.C = conv.in.c, b.H = conv.in.h, b.W = conv.in.w;
    b.OC = conv.out.c, b.OH = conv.out.h, b.OW = conv.out.w;
    b.K = conv.spec.kernel;
    ++i;
    if (is(model, i, LayerKind::Pool)) b.pool = b.out = static_cast<int>(i++);
    plan.blocks.push_back(b);
  }
  if (plan.blocks.empty()) return std::nullopt;
  const FusedConvBlock& first = plan.blocks.front();
  if (first.C != kInputChannels || first.K > kMaxFirstKernel) return std::nullopt;
  if (is(model, i, LayerKind::Flatten)) ++i;
  if (is(model, i, LayerKind::Dropout)) {
    plan.dropout = static_cast<int>(i);
    plan.rate = model.layers[i].spec.rate;
    ++i;
  }
  if (!is(model, i, LayerKind::Dense) || i + 1 != model.layers.size()) return std::nullopt;
  const Layer& dense = model.layers[i];
  if (dense.spec.relu || dense.out.c != kNumClasses) return std::nullopt;
  plan.dense = static_cast<int>(i);
  const size_t n = static_cast<size_t>(std::max(max_batch, 1)), limit = size_t{1} << 31;
  for (const FusedConvBlock& b : plan.blocks) {
    const size_t out = n * b.OC * b.OH * b.OW, col = n * b.C * b.K * b.K * b.OH * b.OW;
    if (out >= limit || col >= limit) return std::nullopt;
  }
  plan.features = static_cast<int>(model.layers[static_cast<size_t>(plan.blocks.back().out)].out.size());
  return plan;
}

}  // namespace convnet
