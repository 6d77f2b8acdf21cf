// Cheap cross-rank agreement on a collective call (docs/design.md §2): before any
// payload moves, ranks allgather a 32-byte descriptor of the call (kind,
// count, dtype, op, method, bucket size, call number). A rank whose
// descriptor differs makes every rank return qcclInvalidUsage naming the
// difference, instead of a hang or an MPI truncation error. The exchange is
// also the arrival check that QCCL_TIMEOUT_S applies to. Every operation
// that talks to the peers on the communicator's transport starts with it
// (collectives, engine start), and a call that fails its argument checks
// on one rank still takes part (as kRejectedCall), so calls never pair with
// another call's partner (docs/collectives.md "Call agreement").
#pragma once

#include <cstdint>

#include "collective/algorithm.h"
#include "collective/collective_context.h"

namespace qccl {

// What a descriptor's `kind` may say besides a CollectiveKind.
constexpr uint8_t kEngineStartCall = 0x10;  // qcclEngineStart
constexpr uint8_t kRejectedCall = 0xff;     // this rank's arguments failed its checks

struct CallDescriptor {
  uint64_t count = 0;
  uint64_t call_number = 0;
  uint32_t bucket_size = 0;
  uint8_t kind = 0;
  uint8_t dtype = 0;
  uint8_t op = 0;  // qcclRedOp_t; 0 for allgather
  uint8_t method = 0;
  uint64_t reserved = 0;
};
static_assert(sizeof(CallDescriptor) == 32, "descriptor is exchanged as 32 bytes");

Result agree_on_call(CollectiveContext& ctx, const CallDescriptor& mine);

}  // namespace qccl
