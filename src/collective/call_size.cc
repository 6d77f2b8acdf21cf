#include "collective/call_size.h"

#include "core/checked_math.h"

namespace qccl {
namespace {

Result too_large(const char* what, uint64_t count, DataType dtype, const char* needs) {
  return fail(qcclInvalidArgument,
              "{} {} is too large for {}: {} exceeds the limit of 2^56 bytes per call "
              "(docs/api.md \"Size limits\")",
              what, count, dtype_name(dtype), needs);
}

}  // namespace

Result check_call_size(CollectiveKind kind, uint64_t count, DataType dtype, int nranks,
                       const char* what) {
  uint64_t bytes = 0;
  if (!checked_mul(count, dtype_size(dtype), &bytes) || bytes > kMaxCallBytes)
    return too_large(what, count, dtype, "count × element size");
  uint64_t payload = 0, all_payloads = 0;
  const uint64_t ranks = nranks > 0 ? static_cast<uint64_t>(nranks) : 1;
  if (!checked_mul(count, 4, &payload) || !checked_add(payload, kPayloadOverheadBound, &payload) ||
      !checked_mul(payload, ranks, &all_payloads) || all_payloads > kMaxCallBytes)
    return too_large(what, count, dtype,
                     kind == CollectiveKind::kAllGather
                         ? "nranks × (4 × count + 4096), the gathered payloads,"
                         : "nranks × (4 × count + 4096), the worst-case payloads of all ranks,");
  return qcclSuccess;
}

}  // namespace qccl
