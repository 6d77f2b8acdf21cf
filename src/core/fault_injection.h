// Fails safe: no C++ exception crosses the C API or ends the engine's
// thread. Two pieces live here:
//  - exception_result(): inside a catch block, turns the exception in
//    flight into a result code and message (std::bad_alloc: qcclSystemError
//    "out of memory in <where>: <what>"; any other std::exception:
//    qcclInternalError "<where>: unexpected exception: <what>"; anything
//    else: qcclInternalError). api_call (api/comm.h) and the engine's cycle
//    use it.
//  - a test-only fault hook: maybe_inject_fault(site) sits at the entry of
//    every API call (site = the function's name, e.g. "qcclAllReduce") and
//    at the top of the engine's cycle ("engine cycle") and of each fused
//    group's reduction ("engine execute"), and at every allocation whose
//    size comes from a caller's count (site = what it is for: "encoded
//    payload", "fusion buffer", ...; core/checked_alloc.h,
//    collective/workspace.h), where a kBadAlloc becomes qcclSystemError
//    naming the buffer and its bytes. It costs one relaxed atomic
//    load when nothing is armed; a test arms one throw for one site with
//    testing::arm_fault and checks that the caller gets an error code.
#pragma once

#include <string>

#include "core/result.h"

namespace qccl {

// Throws the armed fault if one is armed for `site` (and disarms it).
void maybe_inject_fault(const char* site);

// Call only inside a catch block (catch (...) included): classifies the
// current exception, records the message with set_error (where = the API
// function or engine step that caught it) and returns the code. Never
// throws; if even the message cannot be built (out of memory), the code is
// returned with whatever error text the thread had.
Result exception_result(const char* where) noexcept;

namespace testing {

enum class Fault {
  kBadAlloc,      // throws std::bad_alloc
  kRuntimeError,  // throws std::runtime_error(message)
  kUnknown,       // throws an int (not a std::exception)
};

// The next maybe_inject_fault(site) throws `fault` (once). One fault is
// armed at a time: arming again replaces it.
void arm_fault(const std::string& site, Fault fault, const std::string& message = "injected fault");
void disarm_fault();
// Whether the armed fault has not fired yet.
bool fault_armed();

}  // namespace testing
}  // namespace qccl
