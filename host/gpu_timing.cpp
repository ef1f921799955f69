// KernelTimer (see gpu_timing.h): CUDA event pairs around every launch, read back once.
#include "gpu_timing.h"

#include <algorithm>
#include <map>
#include <utility>

#include "cuda_check.h"
#include "errors.h"

namespace convnet {

KernelTimer::~KernelTimer() {
  for (CUevent_st* e : start_) cudaEventDestroy(e);
  for (CUevent_st* e : stop_) cudaEventDestroy(e);
}

void KernelTimer::grow(size_t pairs) {
  while (start_.size() < pairs) {
    cudaEvent_t a = nullptr, b = nullptr;
    CUDA_CHECK(cudaEventCreate(&a));
    start_.push_back(a);
    CUDA_CHECK(cudaEventCreate(&b));
    stop_.push_back(b);
    names_.emplace_back();
  }
}

void KernelTimer::restart(size_t launches) {
  CONVNET_CHECK(!in_launch_ && !in_step_, "KernelTimer::restart inside a launch or a step");
  grow(launches);
  used_ = 0;
  steps_.clear();
}

void KernelTimer::begin_step() {
  CONVNET_CHECK(!in_step_, "KernelTimer: begin_step twice");
  in_step_ = true;
  steps_.push_back(Step{used_, used_});
}

void KernelTimer::end_step() {
  CONVNET_CHECK(in_step_ && !in_launch_, "KernelTimer: end_step outside a step");
  in_step_ = false;
  steps_.back().end = used_;
}

void KernelTimer::before_launch(const char* name, cudaStream_t stream) {
  CONVNET_CHECK(!in_launch_, std::string("KernelTimer: a launch inside launch ") + names_[used_]);
  if (used_ == start_.size()) grow(std::max<size_t>(64, 2 * start_.size()));
  names_[used_].assign(name);
  CUDA_CHECK(cudaEventRecord(start_[used_], stream));
  in_launch_ = true;
}

void KernelTimer::after_launch(const char* /*name*/, cudaStream_t stream) {
  CONVNET_CHECK(in_launch_, "KernelTimer: after_launch without before_launch");
  in_launch_ = false;
  CUDA_CHECK(cudaEventRecord(stop_[used_], stream));
  ++used_;
}

float KernelTimer::elapsed_ms(CUevent_st* from, CUevent_st* to) const {
  float ms = 0.0f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, from, to));
  return ms;
}

TimingReport KernelTimer::report(int steps) {
  CONVNET_CHECK(!in_launch_ && !in_step_, "KernelTimer::report inside a launch or a step");
  TimingReport r;
  r.steps = steps;
  if (used_ == 0) return r;
  CUDA_CHECK(cudaEventSynchronize(stop_[used_ - 1]));
  std::map<std::string, size_t> index;  // name -> position in r.kernels
  for (size_t i = 0; i < used_; ++i) {
    auto [it, added] = index.emplace(names_[i], r.kernels.size());
    if (added) r.kernels.push_back(KernelTime{names_[i], 0, 0.0});
    KernelTime& k = r.kernels[it->second];
    ++k.calls;
    k.total_us += 1e3 * elapsed_ms(start_[i], stop_[i]);
  }
  for (const Step& s : steps_)
    if (s.end > s.first) r.step_events_us += 1e3 * elapsed_ms(start_[s.first], stop_[s.end - 1]);
  return r;
}

}  // namespace convnet
