// Host allocations whose size comes from a caller's count: failure is a
// result, never an exception (fails safe, core/fault_injection.h). A size
// that overflows, std::bad_alloc and std::length_error all become
// qcclSystemError naming what was being allocated and how many bytes. Each
// allocation is a fault-injection site named by `what`, so tests can make
// exactly that one fail.
#pragma once

#include <new>
#include <stdexcept>
#include <vector>

#include "core/checked_math.h"
#include "core/fault_injection.h"
#include "core/result.h"

namespace qccl {

// The message every failed allocation gives.
Result allocation_failed(const char* what, uint64_t bytes, const char* why);

// Grows `v` to at least n elements (never shrinks; contents are kept).
template <typename T>
Result grow_vector(std::vector<T>* v, uint64_t n, const char* what) {
  if (v->size() >= n) return qcclSuccess;
  uint64_t bytes = 0;
  if (!checked_mul(n, sizeof(T), &bytes))
    return fail(qcclSystemError,
                "cannot allocate {} elements of {} bytes for the {}: the size "
                "overflows 64 bits",
                n, sizeof(T), what);
  try {
    maybe_inject_fault(what);
    if (n > v->max_size()) return allocation_failed(what, bytes, "larger than a vector can hold");
    v->resize(n);
  } catch (const std::bad_alloc&) {
    return allocation_failed(what, bytes, "out of memory");
  } catch (const std::length_error&) {
    return allocation_failed(what, bytes, "larger than a vector can hold");
  }
  return qcclSuccess;
}

}  // namespace qccl
