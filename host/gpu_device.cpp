// CUDA device discovery for `convnet devices` and the --device choice (see gpu_device.h).
#include "gpu_device.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdio>

namespace convnet {
namespace {

std::string version_text(int v) {  // CUDA encodes 12040 as 12.4
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

std::string error_text(cudaError_t err) { return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err); }

}  // namespace

int cuda_device_count(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    if (why) *why = error_text(err);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (count == 0 && why) *why = "the CUDA runtime found no device";
  return count;
}

std::string cuda_device_report() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  int major = 0, minor = 0, patch = 0;
  cublasGetProperty(MAJOR_VERSION, &major);
  cublasGetProperty(MINOR_VERSION, &minor);
  cublasGetProperty(PATCH_LEVEL, &patch);
  std::string out = "CUDA runtime " + version_text(runtime) + ", driver " +
                    (driver ? version_text(driver) : std::string("not installed")) + ", cuBLAS " +
                    std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) + "\n";
  std::string why;
  int count = cuda_device_count(&why);
  if (count == 0) return out + "no CUDA device: " + why + "\n";
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    const cudaError_t err = cudaGetDeviceProperties(&p, d);
    if (err != cudaSuccess) {  // say so rather than skip the device, and leave no error for later calls
      out += "device " + std::to_string(d) + ": properties unavailable: " + error_text(err) + "\n";
      cudaGetLastError();
      continue;
    }
    char line[512];
    std::snprintf(line, sizeof line, "device %d: %s, %d SMs, %.1f GiB, compute capability %d.%d\n", d, p.name,
                  p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0),
                  p.major, p.minor);
    out += line;
  }
  return out;
}

}  // namespace convnet
