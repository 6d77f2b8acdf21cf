// The nccl-tests-style benchmark harness (docs/style.md): argument parsing,
// timing, the table and the JSON output live here; each perf/*_perf.cc
// only describes its collective.
#pragma once

#include <mpi.h>

#include <cstddef>

#include "qccl/qccl.h"

namespace qccl::perf {

struct CollectiveDescription {
  const char* name;  // "allreduce"
  bool has_redop;    // prints the redop column
  // nccl-tests bus bandwidth factor: 2(n-1)/n for allreduce, (n-1)/n allgather.
  double (*bus_factor)(int nranks);
  // Elements per rank for a row of `bytes` (nccl-tests: allgather sizes are the
  // gathered buffer) and elements of the receive buffer.
  size_t (*send_count)(size_t bytes, size_t type_size, int nranks);
  size_t (*recv_count)(size_t send_count, int nranks);
  // The qccl call; `stream` is the execution mode's (NULL for host buffers).
  qcclResult_t (*run)(const void* send, void* recv, size_t count, qcclDataType_t type,
                      qcclRedOp_t op, qcclComm_t comm, void* stream);
  // The uncompressed MPI call itself (method "mpi"); float32 only; send ==
  // nullptr means in place (MPI_IN_PLACE).
  int (*run_mpi)(const void* send, void* recv, size_t count, MPI_Comm comm);
  // The same MPI call on 2-byte half-precision elements (methods "mpi-fp16"
  // and "mpi-bf16", the baselines of DDP's fp16/bf16 compress hooks): `type`
  // is a contiguous 2-byte datatype, `sum` the harness's commutative op that
  // widens to float, adds and rounds back (allgather ignores it).
  int (*run_mpi_half)(const void* send, void* recv, size_t count, MPI_Datatype type, MPI_Op sum,
                      MPI_Comm comm);
  // Exact expected receive element i in fp64, from value(rank, index).
  double (*expected)(size_t i, size_t send_count, int nranks, qcclRedOp_t op,
                     double (*value)(int rank, size_t index));
};

// Parses the nccl-tests flags plus -m/-q/-a/-J/-g, runs every size for every
// method, prints the table on rank 0. Returns the process exit code:
// 0, 1 (a failed init), 2 (usage) or kExitGpuUnavailable (-g without a GPU
// mode, execution_mode.h).
int run_benchmark(int argc, char** argv, const CollectiveDescription& collective);

}  // namespace qccl::perf
