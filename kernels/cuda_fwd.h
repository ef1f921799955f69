// cudaStream_t without the CUDA headers, for the plain-C++ launcher headers (kernels/<op>.h).
//
// The CUDA runtime declares `typedef struct CUstream_st* cudaStream_t;` and so does the CUDA-on-CPU
// simulator (tests/simt/simt.h); repeating the identical typedef is legal C++, so a launcher header
// includes this instead of <cuda_runtime.h> and host code that never touches CUDA still compiles.
#pragma once

struct CUstream_st;
typedef struct CUstream_st* cudaStream_t;
