# Compiles one kernels/*.cu for the GPU the trainer targets and keeps what ptxas says of its
# functions (registers, barriers, static shared memory, stack frame, spills) and the PTX (whose
# .maxntid lines carry each kernel's __launch_bounds__), for bench/kernel_resources.cpp.
#
#   cmake -DNVCC=... -DARCH=90 -DSRC=kernels/x.cu -DOUT_DIR=... -DSOURCE_DIR=<repo>
#         [-DCCBIN=<CMAKE_CUDA_HOST_COMPILER>] [-DEXTRA_FLAGS=<CMAKE_CUDA_FLAGS>] -P ptxas_report.cmake
# writes OUT_DIR/x.ptxas.txt and OUT_DIR/x.ptx. The flags are the convnet_gpu target's for device
# code (Release: -O3, -DNDEBUG), with the user's host compiler and CUDA flags.
foreach(var NVCC ARCH SRC OUT_DIR SOURCE_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "ptxas_report.cmake: -D${var}=... is required")
  endif()
endforeach()
get_filename_component(name "${SRC}" NAME_WE)
set(keep "${OUT_DIR}/${name}.keep")
file(REMOVE_RECURSE "${keep}")
file(MAKE_DIRECTORY "${keep}")
set(extra)
if(CCBIN)
  list(APPEND extra -ccbin "${CCBIN}")
endif()
if(EXTRA_FLAGS)
  separate_arguments(flags UNIX_COMMAND "${EXTRA_FLAGS}")
  list(APPEND extra ${flags})
endif()
execute_process(
  COMMAND "${NVCC}" -arch=sm_${ARCH} -cubin -O3 -DNDEBUG -DCONVNET_HAVE_CUDA=1 -lineinfo --expt-relaxed-constexpr
          ${extra} --resource-usage "-I${SOURCE_DIR}/kernels" "-I${SOURCE_DIR}/host" --keep --keep-dir "${keep}" "${SRC}" -o "${keep}/${name}.cubin"
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ptxas_report.cmake: nvcc failed on ${SRC} (exit ${rc}):\n${out}${err}")
endif()
file(WRITE "${OUT_DIR}/${name}.ptxas.txt" "${out}${err}")
file(COPY_FILE "${keep}/${name}.ptx" "${OUT_DIR}/${name}.ptx")
file(REMOVE_RECURSE "${keep}")
