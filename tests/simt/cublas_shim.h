// The few cuBLAS calls the GPU backend makes, for the CUDA-on-CPU simulator: column-major semantics
// exactly as cuBLAS documents them, computed by the CPU BLAS (cblas_sgemm with CblasColMajor).
// Device pointers are host pointers under the simulator, so the arguments pass straight through.
// Included only through host/gpu_blas.h when CONVNET_SIMT is defined.
//
// Stream capture: a GEMM on a capturing stream is recorded (its arguments, alpha and beta by value,
// as cuBLAS's host pointer mode reads them at the call) and computed at every cudaGraphLaunch. As the
// cuBLAS documentation says, cublasSetStream resets the handle to cuBLAS's own workspace pool; a
// capture with that pool can make cuBLAS allocate inside the capture, so the shim refuses to capture
// a GEMM (CUBLAS_STATUS_NOT_SUPPORTED) unless cublasSetWorkspace gave the handle a workspace of its
// own after the last cublasSetStream. Stricter than cuBLAS, on purpose: the backend must not rely on
// allocations during capture.
#pragma once

#include "simt.h"

typedef struct cublasContext* cublasHandle_t;

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,  // never returned by the shim; named for callers that handle it
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;

typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3,
} cublasMath_t;

cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
// Also resets the workspace to the library's default pool, as cuBLAS documents.
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
// A user-owned device workspace: 256-byte aligned, inside one cudaMalloc allocation (else
// CUBLAS_STATUS_INVALID_VALUE). The shim's GEMM needs none; it only checks and records it.
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, size_t bytes);
cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream);
// TF32 has no CPU equivalent: the shim records the mode and computes in FP32 either way.
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                           int k, const float* alpha, const float* A, int lda, const float* B, int ldb,
                           const float* beta, float* C, int ldc);
const char* cublasGetStatusName(cublasStatus_t status);
const char* cublasGetStatusString(cublasStatus_t status);

namespace simt {
// cuBLAS calls made through the shim in this process (the launch-count test counts them apart).
unsigned long long cublas_call_count();
}  // namespace simt
