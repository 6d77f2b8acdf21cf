#include "transport/abort_job.h"

#include <cstdio>
#include <cstdlib>

#ifdef QCCL_HAVE_MPI
#include <mpi.h>
#endif

namespace qccl {

void abort_job(const std::string& report) {
  std::fprintf(stderr, "qccl: QCCL_ON_TIMEOUT=abort: %s\n", report.c_str());
  std::fflush(stderr);
#ifdef QCCL_HAVE_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  std::abort();
}

}  // namespace qccl
