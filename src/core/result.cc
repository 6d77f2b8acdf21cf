#include "core/result.h"

#include "core/logging.h"

namespace qccl {
namespace {
thread_local std::string t_last_error;
}

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
    case qcclUnhandledCudaError:
      return "unhandled cuda error (run with QCCL_DEBUG=INFO for details)";
    case qcclSystemError: return "unhandled system error (run with QCCL_DEBUG=INFO for details)";
    case qcclInternalError:
      return "internal error - please report this issue to the qccl developers";
    case qcclInvalidArgument: return "invalid argument (run with QCCL_DEBUG=WARN for details)";
    case qcclInvalidUsage: return "invalid usage (run with QCCL_DEBUG=WARN for details)";
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
