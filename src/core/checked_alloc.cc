#include "core/checked_alloc.h"

namespace qccl {

Result allocation_failed(const char* what, uint64_t bytes, const char* why) {
  return fail(qcclSystemError, "cannot allocate {} bytes for the {}: {}", bytes, what, why);
}

}  // namespace qccl
