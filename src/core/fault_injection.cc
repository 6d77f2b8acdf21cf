#include "core/fault_injection.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>

namespace qccl {
namespace {

std::atomic<bool> g_armed{false};
std::mutex g_mutex;  // guards the two below
std::string g_site;
testing::Fault g_fault = testing::Fault::kRuntimeError;
std::string g_message;

}  // namespace

void maybe_inject_fault(const char* site) {
  if (!g_armed.load(std::memory_order_relaxed)) return;
  testing::Fault fault;
  std::string message;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (!g_armed.load(std::memory_order_relaxed) || g_site != site) return;
    g_armed.store(false, std::memory_order_relaxed);
    fault = g_fault;
    message = g_message;
  }
  switch (fault) {
    case testing::Fault::kBadAlloc: throw std::bad_alloc();
    case testing::Fault::kRuntimeError: throw std::runtime_error(message);
    case testing::Fault::kUnknown: throw 42;
  }
}

Result exception_result(const char* where) noexcept {
  Result code = qcclInternalError;
  try {
    try {
      throw;  // the exception being handled
    } catch (const std::bad_alloc& e) {
      code = qcclSystemError;
      set_error(code, fmt::format("out of memory in {}: {}", where, e.what()));
    } catch (const std::exception& e) {
      set_error(code, fmt::format("{}: unexpected exception: {}", where, e.what()));
    } catch (...) {
      set_error(code, fmt::format("{}: unexpected exception of an unknown type", where));
    }
  } catch (...) {
    // Building the message threw (out of memory): the code still goes back.
  }
  return code;
}

namespace testing {

void arm_fault(const std::string& site, Fault fault, const std::string& message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_site = site;
  g_fault = fault;
  g_message = message;
  g_armed.store(true, std::memory_order_relaxed);
}

void disarm_fault() {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_armed.store(false, std::memory_order_relaxed);
}

bool fault_armed() {
  return g_armed.load(std::memory_order_relaxed);
}

}  // namespace testing
}  // namespace qccl
