// cuBLAS for the GPU backend: the real library, or under the CUDA-on-CPU simulator a shim onto the
// CPU BLAS with cuBLAS's column-major semantics (tests/simt/cublas_shim.h), chosen here only.
//
// gemm_gpu is the row-major twin of gemm_cpu (host/cpu_layers.h). The row-major <-> column-major
// mapping, written once: a row-major (R, C) matrix is, byte for byte, a column-major (C, R) matrix,
// i.e. its transpose. So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: call
// cublasSgemm with the operands swapped, m = N, n = M, and each operand's own transpose flag.
// An installed LaunchObserver (kernels/launch_observer.h) sees each GEMM as one launch named by its
// row-major shape, "sgemm NT 32x6272x9"; the name is built only when an observer is installed or
// launches are synchronised (--sync-launches, which then names a GEMM that faults).
#pragma once

#if defined(CONVNET_SIMT) && !defined(__CUDACC__)
#include "cublas_shim.h"
#else
#include <cublas_v2.h>
#endif

#include <cstdio>
#include <stdexcept>
#include <string>

#include "cuda_check.h"
#include "device_errors.h"
#include "launch_observer.h"

namespace convnet {

// Throws DeviceOutOfMemory when cuBLAS could not allocate (device memory: exit 2), else std::runtime_error.
[[noreturn]] inline void throw_cublas_error(cublasStatus_t status, const char* what, const char* file, int line) {
  if (status == CUBLAS_STATUS_ALLOC_FAILED)
    throw DeviceOutOfMemory(std::string("out of GPU memory: cuBLAS ") + cublasGetStatusName(status) + " in " + what +
                            " (try a smaller --batch-size)");
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": cuBLAS error " +
                           cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ") in " + what);
}

}  // namespace convnet

#define CUBLAS_CHECK(expr)                                                                    \
  do {                                                                                        \
    const cublasStatus_t convnet_cublas_status_ = (expr);                                     \
    if (convnet_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                      \
      ::convnet::throw_cublas_error(convnet_cublas_status_, "`" #expr "`", __FILE__, __LINE__); \
  } while (0)

namespace convnet {

// "sgemm NT 32x6272x9": the op flags as gemm_gpu takes them (N: as stored, T: transposed), then
// M x N x K, so each layer's GEMM is its own row of the --timing table.
inline void gemm_launch_name(char (&name)[64], bool trans_a, bool trans_b, int M, int N, int K) {
  std::snprintf(name, sizeof name, "sgemm %c%c %dx%dx%d", trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K);
}

// Row-major C (M, N) = alpha * op(A) op(B) + beta * C; trans_a: A stored (K, M); trans_b: B stored (N, K).
inline void gemm_gpu(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float* A, const float* B, float beta, float* C) {
  const int lda = trans_a ? M : K;  // row length of A as stored
  const int ldb = trans_b ? K : N;
  LaunchObserver* const observer = launch_observer();
  const bool sync = sync_launches();
  char name[64];
  cudaStream_t stream = nullptr;
  if (observer || sync) gemm_launch_name(name, trans_a, trans_b, M, N, K);
  if (observer) {
    CUBLAS_CHECK(cublasGetStream(handle, &stream));
    observer->before_launch(name, stream);
  }
  const cublasStatus_t status = cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                            trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ldb, A, lda,
                                            &beta, C, N);
  if (observer) observer->after_launch(name, stream);  // before the check, as convnet::launch does
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, "cublasSgemm", __FILE__, __LINE__);
  // --sync-launches: a GEMM that faults is named here, as check_launch names a kernel.
  if (sync) check_launch(std::string("launch of ") + name, __FILE__, __LINE__);
}

}  // namespace convnet
