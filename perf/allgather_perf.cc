// qccl_allgather_perf: sizes are the gathered buffer, as in nccl-tests.
#include "harness/harness.h"

int main(int argc, char** argv) {
  qccl::perf::CollectiveDescription d;
  d.name = "allgather";
  d.has_redop = false;
  d.bus_factor = [](int n) { return (n - 1) / static_cast<double>(n); };
  d.send_count = [](size_t bytes, size_t type_size, int n) { return bytes / type_size / n; };
  d.recv_count = [](size_t count, int n) { return count * n; };
  d.run = [](const void* s, void* r, size_t n, qcclDataType_t t, qcclRedOp_t, qcclComm_t c,
             void* stream) { return qcclAllGather(s, r, n, t, c, stream); };
  d.run_mpi = [](const void* s, void* r, size_t n, MPI_Comm c) {
    return MPI_Allgather(s == nullptr ? MPI_IN_PLACE : s, static_cast<int>(n), MPI_FLOAT, r,
                         static_cast<int>(n), MPI_FLOAT, c);
  };
  d.run_mpi_half = [](const void* s, void* r, size_t n, MPI_Datatype t, MPI_Op, MPI_Comm c) {
    return MPI_Allgather(s == nullptr ? MPI_IN_PLACE : s, static_cast<int>(n), t, r,
                         static_cast<int>(n), t, c);
  };
  d.expected = [](size_t i, size_t count, int, qcclRedOp_t, double (*value)(int, size_t)) {
    return value(static_cast<int>(i / count), i % count);
  };
  return qccl::perf::run_benchmark(argc, argv, d);
}
