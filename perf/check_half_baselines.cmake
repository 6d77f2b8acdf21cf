# ctest perf_<bench>_half_baselines: runs `<bench> -m mpi,mpi-fp16,mpi-bf16,none`
# under mpirun and checks the rows of the JSON (-J) and the table: the
# half-precision baselines (docs/perf.md) report 16 bits, a
# wire ratio of 2, an error within half-precision rounding of the exact sum
# (and above float32's, so the casts really happened), and every row its
# speed-up over each baseline that ran.
foreach(var MPIEXEC BENCH NP JSON)
  if(NOT ${var})
    message(FATAL_ERROR "usage: cmake -DMPIEXEC=... -DBENCH=... -DNP=... -DJSON=... "
                        "[-DMPI_FLAGS=...] [-DEXTRA=...] -P check_half_baselines.cmake")
  endif()
endforeach()
file(REMOVE ${JSON})
execute_process(COMMAND ${MPIEXEC} -n ${NP} ${MPI_FLAGS} ${BENCH} -b 64K -e 64K -n 2 -w 1
                        -m mpi,mpi-fp16,mpi-bf16,none -J ${JSON} ${EXTRA}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 200)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "benchmark exited '${rc}'\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(NOT out MATCHES "speed-up = baseline time / method time"
   OR NOT out MATCHES "vs_mpi +vs_fp16 +vs_bf16")
  message(FATAL_ERROR "no speed-up summary after the table:\n${out}")
endif()
file(READ ${JSON} json)
string(JSON nrows LENGTH "${json}" rows)
if(NOT nrows EQUAL 4)
  message(FATAL_ERROR "expected 4 rows (mpi, mpi-fp16, mpi-bf16, none), got ${nrows}:\n${json}")
endif()
# Relative error bounds: a sum of NP <= 4 values rounded at every step to a
# unit roundoff u (fp16 2^-11, bf16 2^-8) stays within a few u; the lower
# bound is well above float32's rounding (2^-24).
set(bits_mpi 32)
set(bits_mpi-fp16 16)
set(bits_mpi-bf16 16)
set(bits_none 32)
set(ratio_mpi 1)
set(ratio_mpi-fp16 2)
set(ratio_mpi-bf16 2)
set(low_mpi-fp16 6.1e-5)   # 2^-14
set(high_mpi-fp16 2.0e-3)  # 2^-9
set(low_mpi-bf16 9.8e-4)   # 2^-10: above fp16's error too
set(high_mpi-bf16 7.9e-3)  # 2^-7
set(high_mpi 1e-6)
set(high_none 1e-6)
math(EXPR last "${nrows} - 1")
foreach(i RANGE ${last})
  string(JSON method GET "${json}" rows ${i} method)
  string(JSON bits GET "${json}" rows ${i} bits)
  string(JSON ratio GET "${json}" rows ${i} ratio)
  string(JSON relerr GET "${json}" rows ${i} relerr)
  if(NOT DEFINED bits_${method})
    message(FATAL_ERROR "unexpected row method '${method}'")
  endif()
  if(NOT bits EQUAL ${bits_${method}})
    message(FATAL_ERROR "${method}: bits ${bits}, expected ${bits_${method}}")
  endif()
  # Wire bytes are truncated to whole bytes: the ratio is at least nominal.
  if(DEFINED ratio_${method})
    if(ratio LESS ${ratio_${method}}.0 OR ratio GREATER ${ratio_${method}}.001)
      message(FATAL_ERROR "${method}: ratio ${ratio}, expected ${ratio_${method}}")
    endif()
  endif()
  if(relerr LESS 0 OR NOT relerr LESS ${high_${method}})
    message(FATAL_ERROR "${method}: relerr ${relerr} not below ${high_${method}}")
  endif()
  if(DEFINED low_${method})
    if(NOT relerr GREATER ${low_${method}})
      message(FATAL_ERROR "${method}: relerr ${relerr} not above ${low_${method}}: "
                          "were the values cast to half precision?")
    endif()
  endif()
  # Each row's speed-up over the other baselines: a positive number; over
  # itself: null.
  foreach(base mpi mpi_fp16 mpi_bf16)
    string(JSON kind TYPE "${json}" rows ${i} speedup_vs_${base})
    string(REPLACE "_" "-" base_method ${base})
    if(method STREQUAL base_method)
      if(NOT kind STREQUAL "NULL")
        message(FATAL_ERROR "${method}: speedup_vs_${base} over itself is not null")
      endif()
    else()
      string(JSON s GET "${json}" rows ${i} speedup_vs_${base})
      if(NOT kind STREQUAL "NUMBER" OR NOT s GREATER 0)
        message(FATAL_ERROR "${method}: speedup_vs_${base} is '${s}' (${kind})")
      endif()
    endif()
  endforeach()
endforeach()
message(STATUS "half-precision baselines as expected:\n${out}")
