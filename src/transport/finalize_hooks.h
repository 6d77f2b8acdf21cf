// Work that must end before MPI goes away (docs/engine.md "MPI_Finalize"):
// an engine's cycle thread still calling MPI when MPI_Finalize tears it
// down would crash the process. The MPI transport runs these hooks at the
// start of MPI_Finalize (from the delete callback of an attribute on
// MPI_COMM_SELF), after its transports have started refusing calls, so each
// hook only has to wait for its thread. Without MPI they never run.
#pragma once

#include <functional>

namespace qccl {

// Returns an id for remove_finalize_hook.
int add_finalize_hook(std::function<void()> hook);
void remove_finalize_hook(int id);
// Runs (and forgets) every hook; called once, by the MPI transport.
void run_finalize_hooks();

}  // namespace qccl
