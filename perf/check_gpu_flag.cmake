# ctest perf_<bench>_gpu_flag: runs `<bench> -g` on one rank (MPI singleton).
# Without a usable GPU mode it must exit with kExitGpuUnavailable (3,
# perf/harness/execution_mode.h) and say why on stderr; with one (a GPU, a
# CUDA+NCCL build) it must run and print the table in device mode.
if(NOT BENCH)
  message(FATAL_ERROR "usage: cmake -DBENCH=<benchmark binary> -P check_gpu_flag.cmake")
endif()
execute_process(COMMAND ${BENCH} -g -b 4K -e 4K -n 1 -w 0 -m none
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 100)
if(rc STREQUAL "0")
  if(NOT out MATCHES "device buffers")
    message(FATAL_ERROR "-g exited 0 without a device-mode table:\n${out}\n${err}")
  endif()
  message(STATUS "GPU mode ran:\n${out}")
  return()
endif()
set(expected "GPU mode \\(-g\\) is unavailable on rank 0: (no CUDA device: |this qccl was built without (CUDA|NCCL))")
if(NOT rc STREQUAL "3")
  message(FATAL_ERROR "-g without a GPU mode must exit 3, got '${rc}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT err MATCHES "${expected}")
  message(FATAL_ERROR "-g without a GPU mode: stderr lacks /${expected}/:\n${err}")
endif()
if(out MATCHES "size +count")
  message(FATAL_ERROR "-g without a GPU mode printed a table:\n${out}")
endif()
message(STATUS "as expected (exit 3): ${err}")
