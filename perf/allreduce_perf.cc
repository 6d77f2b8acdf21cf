// qccl_allreduce_perf: `mpirun -np 4 allreduce_perf -b 1K -e 256M -f 2 -m none,alq`.
#include "harness/harness.h"

namespace {

double expected_sum(size_t i, size_t, int nranks, qcclRedOp_t op, double (*value)(int, size_t)) {
  double s = 0;
  for (int r = 0; r < nranks; ++r) s += value(r, i);
  return op == qcclAvg ? s / nranks : s;
}

}  // namespace

int main(int argc, char** argv) {
  qccl::perf::CollectiveDescription d;
  d.name = "allreduce";
  d.has_redop = true;
  d.bus_factor = [](int n) { return 2.0 * (n - 1) / n; };
  d.send_count = [](size_t bytes, size_t type_size, int) { return bytes / type_size; };
  d.recv_count = [](size_t count, int) { return count; };
  d.run = [](const void* s, void* r, size_t n, qcclDataType_t t, qcclRedOp_t op, qcclComm_t c,
             void* stream) { return qcclAllReduce(s, r, n, t, op, c, stream); };
  d.run_mpi = [](const void* s, void* r, size_t n, MPI_Comm c) {
    return MPI_Allreduce(s == nullptr ? MPI_IN_PLACE : s, r, static_cast<int>(n), MPI_FLOAT,
                         MPI_SUM, c);
  };
  d.run_mpi_half = [](const void* s, void* r, size_t n, MPI_Datatype t, MPI_Op sum, MPI_Comm c) {
    return MPI_Allreduce(s == nullptr ? MPI_IN_PLACE : s, r, static_cast<int>(n), t, sum, c);
  };
  d.expected = expected_sum;
  return qccl::perf::run_benchmark(argc, argv, d);
}
