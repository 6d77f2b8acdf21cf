#include "collective/call_agreement.h"

#include <cstring>

namespace qccl {
namespace {

const char* kind_name(uint8_t kind) {
  switch (kind) {
    case static_cast<uint8_t>(CollectiveKind::kAllReduce): return "qcclAllReduce";
    case static_cast<uint8_t>(CollectiveKind::kAllGather): return "qcclAllGather";
    case kEngineStartCall: return "qcclEngineStart";
    case kRejectedCall: return "a call it rejected";
  }
  return "an unknown operation";
}
const char* op_name(uint8_t op) {
  return op == qcclSum ? "sum" : "avg";
}

// Names the first field in which `theirs` (rank r) differs from `mine`.
Result report_difference(int r, const CallDescriptor& theirs, const CallDescriptor& mine) {
  if (theirs.kind == kRejectedCall && mine.kind != kRejectedCall)
    return fail(qcclInvalidUsage,
                "rank {} rejected its arguments for call {} (its error says why), so every rank "
                "fails this call",
                r, theirs.call_number);
  if (theirs.kind != mine.kind)
    return fail(qcclInvalidUsage,
                "collective differs between ranks at call {}: rank {} called {}, this rank {}",
                mine.call_number, r, kind_name(theirs.kind), kind_name(mine.kind));
  if (theirs.count != mine.count)
    return fail(qcclInvalidUsage, "count differs between ranks: rank {} sent {}, this rank has {}",
                r, theirs.count, mine.count);
  if (theirs.dtype != mine.dtype)
    return fail(qcclInvalidUsage, "datatype differs between ranks: rank {} sent {}, this rank {}",
                r, dtype_name(static_cast<DataType>(theirs.dtype)),
                dtype_name(static_cast<DataType>(mine.dtype)));
  if (theirs.op != mine.op)
    return fail(qcclInvalidUsage,
                "reduction op differs between ranks: rank {} uses {}, this rank {}", r,
                op_name(theirs.op), op_name(mine.op));
  if (theirs.method != mine.method || theirs.bucket_size != mine.bucket_size)
    return fail(
        qcclInvalidUsage,
        "method differs between ranks: rank {} uses {} (bucket {}), this rank {} (bucket {})", r,
        method_name(static_cast<Method>(theirs.method)), theirs.bucket_size,
        method_name(static_cast<Method>(mine.method)), mine.bucket_size);
  return fail(qcclInvalidUsage,
              "collective calls are out of step: rank {} is at call {}, this rank at call {} (a "
              "rank skipped or added a call)",
              r, theirs.call_number, mine.call_number);
}

}  // namespace

Result agree_on_call(CollectiveContext& ctx, const CallDescriptor& mine) {
  const int n = ctx.transport->size();
  if (n == 1) return qcclSuccess;
  HostTables& t = ctx.tables;
  const uint64_t bytes = sizeof(CallDescriptor);
  unsigned char* all = ensure_size(&t.descriptors, n * bytes);
  uint64_t* sizes = ensure_size(&t.sizes, n);
  uint64_t* offsets = ensure_size(&t.offsets, n);
  for (int r = 0; r < n; ++r) sizes[r] = bytes, offsets[r] = r * bytes;
  QCCL_CHECK(ctx.transport->allgatherv(&mine, bytes, all, sizes, offsets));
  for (int r = 0; r < n; ++r) {
    CallDescriptor theirs;
    std::memcpy(&theirs, all + r * bytes, bytes);
    if (std::memcmp(&theirs, &mine, bytes) != 0) return report_difference(r, theirs, mine);
  }
  return qcclSuccess;
}

}  // namespace qccl
