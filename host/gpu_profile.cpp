// The cudaProfilerStart/Stop window of `convnet train --profile-steps` (see gpu_profile.h).
#include "gpu_profile.h"

#include <cuda_profiler_api.h>

#include "cuda_check.h"

namespace convnet {

void cuda_profiler_start() { CUDA_CHECK(cudaProfilerStart()); }
void cuda_profiler_stop() { CUDA_CHECK(cudaProfilerStop()); }

}  // namespace convnet
