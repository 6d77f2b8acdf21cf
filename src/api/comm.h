// The communicator behind qcclComm_t: the agreed config, the transport, the
// adapter and the collective layer, plus the last error text on it.
#pragma once

#include <memory>
#include <string>

#include "adapt/adapter.h"
#include "collective/collectives.h"
#include "core/config.h"
#include "transport/transport.h"

struct qcclComm {
  static constexpr uint64_t kAlive = 0x71636c6c636f6d6dull;  // "qcllcomm"
  uint64_t magic = kAlive;  // cleared by qcclCommDestroy: catches double destroy
  qccl::Config config;
  std::unique_ptr<qccl::Transport> transport;
  std::unique_ptr<qccl::Adapter> adapter;
  std::unique_ptr<qccl::Collectives> collectives;
  std::string last_error;
};

namespace qccl {

// Validates a communicator handle (null or destroyed).
Result check_comm(qcclComm_t comm);

// Runs an API body: clears this thread's error, and on failure copies the
// message onto the communicator (if any) and logs it at WARN.
template <typename Body>
qcclResult_t api_call(qcclComm_t comm, const char* function, Body&& body) {
  clear_thread_error();
  const Result r = body();
  if (r != qcclSuccess) {
    if (comm != nullptr && comm->magic == qcclComm::kAlive) comm->last_error = thread_last_error();
    QCCL_LOG_WARN("{} failed: {} ({})", function, thread_last_error(), result_name(r));
  }
  return r;
}

}  // namespace qccl
