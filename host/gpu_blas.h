// cuBLAS for the GPU backend: the real library, or under the CUDA-on-CPU simulator a shim onto the
// CPU BLAS with cuBLAS's column-major semantics (tests/simt/cublas_shim.h), chosen here only.
//
// gemm_gpu is the row-major twin of gemm_cpu (host/cpu_layers.h). The row-major <-> column-major
// mapping, written once: a row-major (R, C) matrix is, byte for byte, a column-major (C, R) matrix,
// i.e. its transpose. So row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: call
// cublasSgemm with the operands swapped, m = N, n = M, and each operand's own transpose flag.
#pragma once

#if defined(CONVNET_SIMT) && !defined(__CUDACC__)
#include "cublas_shim.h"
#else
#include <cublas_v2.h>
#endif

#include <stdexcept>
#include <string>

#define CUBLAS_CHECK(expr)                                                                               \
  do {                                                                                                   \
    const cublasStatus_t convnet_cublas_status_ = (expr);                                                \
    if (convnet_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                                 \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": cuBLAS error " + \
                               cublasGetStatusName(convnet_cublas_status_) + " (" +                      \
                               cublasGetStatusString(convnet_cublas_status_) + ") in `" #expr "`");      \
  } while (0)

namespace convnet {

// Row-major C (M, N) = alpha * op(A) op(B) + beta * C; trans_a: A stored (K, M); trans_b: B stored (N, K).
inline void gemm_gpu(cublasHandle_t handle, bool trans_a, bool trans_b, int M, int N, int K, float alpha,
                     const float* A, const float* B, float beta, float* C) {
  const int lda = trans_a ? M : K;  // row length of A as stored
  const int ldb = trans_b ? K : N;
  CUBLAS_CHECK(cublasSgemm(handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                           &alpha, B, ldb, A, lda, &beta, C, N));
}

}  // namespace convnet
