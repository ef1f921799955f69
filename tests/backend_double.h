// A Backend for trainer tests that computes nothing: a training step counts its samples into the
// training metrics and advances the step, an evaluation batch counts its samples into the evaluation
// metrics, and there are no parameters. Tests derive from it and override what they observe or fake
// (the samples a step reads, a NaN loss, a numeric fault), calling the base for the bookkeeping.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backend.h"

namespace convnet::test {

class BackendDouble : public Backend {
 public:
  std::string describe() const override { return "test double"; }
  int add_images(const ImageSet&) override { return 0; }
  void set_order(const std::vector<int32_t>&, int) override {}
  void train_step(int, int, int count) override {
    ++step_;
    train_.count += count;
  }
  void eval_batch(int, int, int count, float*) override { eval_.count += count; }
  Metrics take_train_metrics() override { return std::exchange(train_, Metrics{}); }
  Metrics take_eval_metrics() override { return std::exchange(eval_, Metrics{}); }
  void set_train_metrics(const Metrics& m) override { train_ = m; }
  std::vector<float> get_arena(Arena) const override { return {}; }
  void set_arena(Arena, const std::vector<float>&) override {}
  int64_t step() const override { return step_; }
  void set_step(int64_t s) override { step_ = s; }

 protected:
  int64_t step_ = 0;
  Metrics train_, eval_;
};

}  // namespace convnet::test
