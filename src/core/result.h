// Result codes and error text, in the NCCL manner: every internal function
// that can fail returns qcclResult_t; the detailed message of the most recent
// failure is kept per thread and copied onto the communicator by api/.
#pragma once

#include <fmt/format.h>

#include <string>

#include "qccl/qccl.h"

namespace qccl {

using Result = qcclResult_t;

// Records `message` as this thread's last error and returns `code`.
Result set_error(Result code, std::string message);
const std::string& thread_last_error();
void clear_thread_error();

// Formats the message, records it, returns code: `return fail(qcclInvalidArgument, "...{}", x);`
template <typename... Args>
Result fail(Result code, fmt::format_string<Args...> format, Args&&... args) {
  return set_error(code, fmt::format(format, std::forward<Args>(args)...));
}

const char* result_name(Result code);

// Logs file:line of a failing call at TRACE/DEBUG so that a failure deep in a
// transport reads as a short backtrace.
void note_failure_site(Result code, const char* file, int line, const char* expr);

}  // namespace qccl

#define QCCL_CHECK(call)                                                        \
  do {                                                                          \
    const qcclResult_t qccl_check_result_ = (call);                             \
    if (qccl_check_result_ != qcclSuccess) {                                    \
      ::qccl::note_failure_site(qccl_check_result_, __FILE__, __LINE__, #call); \
      return qccl_check_result_;                                                \
    }                                                                           \
  } while (0)
