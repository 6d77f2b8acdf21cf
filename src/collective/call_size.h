// The size limit of a collective call (docs/api.md "Size limits"), checked
// once at the entry of every call (qcclAllReduce, qcclAllGather,
// qcclEnqueueAllReduce*) and again for each fused engine group: a count
// whose buffers, workspace or payloads would not fit under kMaxCallBytes
// is qcclInvalidArgument naming the argument and the limit. Below the
// limit every byte count the algorithms derive (payload sizes, per-rank
// chunk sizes and offsets, workspace sizes) fits in 64 bits with room to
// spare; they are still computed with checked arithmetic.
#pragma once

#include <cstdint>

#include "collective/algorithm.h"
#include "core/result.h"

namespace qccl {

// 2^56 bytes (64 PiB): more than any machine's memory, far below 2^64.
constexpr uint64_t kMaxCallBytes = uint64_t{1} << 56;

// An upper bound of one rank's payload for `count` elements under any
// method: 4 bytes per element (method none) plus 4 KiB of header, level
// table and padding. The quantising methods need at most 1.125 bytes per
// element plus the same overhead.
constexpr uint64_t kPayloadOverheadBound = 4096;

// The call's size check: count × element size, and nranks × (4 × count +
// 4096) (every rank's worst-case payload, which also bounds the float32
// workspace and an allgather's nranks × count × element size), must not
// exceed kMaxCallBytes. `what` names the argument in the message ("count",
// "sendcount", "count of 'name'").
Result check_call_size(CollectiveKind kind, uint64_t count, DataType dtype, int nranks,
                       const char* what);

}  // namespace qccl
