// QCCL_ON_TIMEOUT=abort (docs/collectives.md "Timeouts and broken
// communicators"): a timeout ends the whole job instead of returning
// qcclTimeout, so mpirun/torchrun tear it down and a restart policy can act.
#pragma once

#include <string>

namespace qccl {

// What a transport's timeout does.
struct TimeoutPolicy {
  double seconds = 300;    // QCCL_TIMEOUT_S
  bool abort_job = false;  // QCCL_ON_TIMEOUT=abort
};

// Prints `report` (the stall report) to stderr, then MPI_Abort on
// MPI_COMM_WORLD when MPI is up, else abort(). Does not return.
[[noreturn]] void abort_job(const std::string& report);

}  // namespace qccl
