// A DeviceFault record in the model's terms, and the message of a diverged run (see numeric_fault.h).
#include "numeric_fault.h"

namespace convnet {
namespace {

const char* value_name(int kind) { return kind == kValueInf ? "Inf" : "NaN"; }

// Fills tensor/layer/element/count for flat index `flat` of the arena.
void locate(const Model& model, size_t flat, NumericFault* f) {
  for (size_t p = 0; p < model.params.size(); ++p) {
    const ParamEntry& e = model.params[p];
    if (flat < e.offset || flat >= e.offset + e.count) continue;
    f->tensor = e.name;
    f->element = flat - e.offset;
    f->count = e.count;
    for (const Layer& l : model.layers)
      if (l.weight == static_cast<int>(p) || l.bias == static_cast<int>(p)) f->layer = l.name + ", " + l.type;
    return;
  }
  // The alignment padding between tensors has zero gradient; a value there is a backend bug, named as such.
  f->tensor = "the arena's alignment padding";
  f->layer = "none";
  f->element = flat;
  f->count = model.arena_size;
}

}  // namespace

std::optional<NumericFault> numeric_fault_from(const Model& model, const DeviceFault& record) {
  if (record.step == kNoFaultStep) return std::nullopt;
  NumericFault f;
  f.step = record.step + 1;
  if (record.loss != kValueFinite) f.loss = value_name(record.loss);
  if (record.grad != kNoFaultGrad) {
    f.value = value_name((record.grad & 1u) ? kValueInf : kValueNaN);
    locate(model, static_cast<size_t>(record.grad >> 1), &f);
  }
  return f;
}

std::string divergence_message(const NumericFault& f, int steps_per_epoch) {
  const int64_t n = steps_per_epoch > 0 ? steps_per_epoch : 1;
  std::string m = "training diverged at step " + std::to_string(f.step) + " (epoch " +
                  std::to_string((f.step - 1) / n + 1) + ", step " + std::to_string((f.step - 1) % n + 1) + " of " +
                  std::to_string(n) + "): ";
  if (!f.loss.empty()) m += "the loss is " + f.loss + (f.value.empty() ? " (every gradient is finite)" : ", and ");
  if (!f.value.empty())
    m += "gradient of " + f.tensor + " (layer " + f.layer + ") has " + f.value + " (first at element " +
         std::to_string(f.element) + " of " + std::to_string(f.count) + ")";
  return m;
}

}  // namespace convnet
