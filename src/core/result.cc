#include "core/result.h"

#include "core/logging.h"

namespace qccl {
namespace {
thread_local std::string t_last_error;
}

// The default level (WARN) already logs each failed call with its message;
// DEBUG adds the file:line of every failing step under it, so that is the
// level that gives more detail and the one the hint names.
#define QCCL_DETAIL_HINT "(run with QCCL_DEBUG=DEBUG to log where it failed)"

Result set_error(Result code, std::string message) {
  t_last_error = std::move(message);
  return code;
}

const std::string& thread_last_error() {
  return t_last_error;
}

void clear_thread_error() {
  t_last_error.clear();
}

const char* result_name(Result code) {
  switch (code) {
    case qcclSuccess: return "no error";
    case qcclUnhandledCudaError: return "unhandled cuda error " QCCL_DETAIL_HINT;
    case qcclSystemError: return "unhandled system error " QCCL_DETAIL_HINT;
    case qcclInternalError:
      return "internal error - please report this issue to the qccl developers";
    case qcclInvalidArgument: return "invalid argument " QCCL_DETAIL_HINT;
    case qcclInvalidUsage: return "invalid usage " QCCL_DETAIL_HINT;
    case qcclRemoteError: return "remote process exited or there was a network error";
    case qcclInProgress: return "qccl operation in progress";
    case qcclCorruptPayload: return "corrupt or mismatched compressed payload";
    case qcclTimeout: return "collective timed out (QCCL_TIMEOUT_S)";
    case qcclTransportError: return "transport error (MPI, NCCL or transport callbacks)";
    default: return "unknown result code";
  }
}

void note_failure_site(Result code, const char* file, int line, const char* expr) {
  QCCL_LOG_DEBUG("{}:{} -> {} ({})", file, line, static_cast<int>(code), expr);
}

}  // namespace qccl
