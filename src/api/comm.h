// The communicator behind qcclComm_t: the agreed config, the transport, the
// adapter and the collective layer, plus the last error text on it.
#pragma once

#include <memory>
#include <string>
#if defined(__GLIBCXX__)  // defined by the libstdc++ headers above
#include <cxxabi.h>
#endif

#include "adapt/adapter.h"
#include "collective/collectives.h"
#include "core/config.h"
#include "core/fault_injection.h"
#include "transport/transport.h"

struct qcclComm {
  qccl::Config config;
  std::unique_ptr<qccl::Transport> transport;
  std::unique_ptr<qccl::Adapter> adapter;
  // Host and device buffers alike (collective/collectives.h).
  std::unique_ptr<qccl::Collectives> collectives;
  std::string last_error;
};

namespace qccl {

// Fills the public stats from a collective context's counters.
void fill_stats(const CollectiveCounters& counters, const Config& config, uint64_t step,
                qcclStats_t* stats);

// Whether qcclEngineStart ran on comm without qcclEngineStop (engine_api.cc).
bool engine_running(qcclComm_t comm);

// The communicators qcclCommInit* handed out and qcclCommDestroy has not
// freed. A handle is looked up here, never dereferenced first, so a
// destroyed communicator or a pointer that never was one is an error, not
// a read of freed or foreign memory (docs/api.md "Errors").
void register_comm(qcclComm_t comm);
void unregister_comm(qcclComm_t comm);
bool is_live_comm(qcclComm_t comm);

// Validates a communicator handle (null, destroyed, or not a communicator).
Result check_comm(qcclComm_t comm);

// Shared by every qcclCommInit*: `out` not NULL (set to NULL), and
// config->size matching this library's qcclConfig_t.
Result check_init_args(qcclComm_t* out, const qcclConfig_t* overrides);

// The transport-independent end of every qcclCommInit*: agree on the
// configuration across ranks (a bad or differing one fails on every rank),
// then create the adapter and the collective layer and hand out the
// communicator. `resolved`/`resolve_error`: this rank's resolve_config result.
Result finish_comm_init(std::unique_ptr<qcclComm> comm, Result resolved,
                        const std::string& resolve_error, std::unique_ptr<Transport> transport,
                        const char* transport_name, qcclComm_t* out);

// Runs an API body: clears this thread's error, and on failure copies the
// message onto the communicator (if any) and logs it at WARN. Every public
// function that returns qcclResult_t goes through here, so no C++ exception
// crosses the C API (fails safe): std::bad_alloc becomes qcclSystemError
// ("out of memory in <function>: ..."), any other exception
// qcclInternalError (core/fault_injection.h). maybe_inject_fault is the
// test hook that throws here when a test armed it for `function`.
template <typename Body>
qcclResult_t api_call(qcclComm_t comm, const char* function, Body&& body) {
  Result r = qcclSuccess;
  try {
    clear_thread_error();
    maybe_inject_fault(function);
    r = body();
#if defined(__GLIBCXX__)
  } catch (::abi::__forced_unwind&) {
    throw;  // thread cancellation must unwind, not be turned into a code
#endif
  } catch (...) {
    r = exception_result(function);
  }
  if (r != qcclSuccess) {
    try {
      if (is_live_comm(comm)) comm->last_error = thread_last_error();
      QCCL_LOG_WARN("{} failed: {} ({})", function, thread_last_error(), result_name(r));
    } catch (...) {
      // Out of memory while copying or logging the text: the code still goes back.
    }
  }
  return r;
}

}  // namespace qccl
