// Cross-rank agreement on which tensors are ready everywhere (docs/design.md §8).
// Each cycle every rank allgathers a small record per pending tensor (name
// hash, count, dtype, op, compress policy) plus its flags; every rank then
// computes the same decision from the same gathered bytes, so no
// coordinator is needed and ranks may submit in any order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "collective/collectives.h"
#include "core/result.h"

namespace qccl {

struct TensorAnnouncement {
  uint64_t name_hash = 0;
  uint64_t count = 0;
  uint8_t dtype = 0;
  uint8_t op = 0;  // qcclRedOp_t
  uint8_t compress = 0;
  uint8_t reserved[5] = {};

  bool same_call(const TensorAnnouncement& o) const {
    return count == o.count && dtype == o.dtype && op == o.op && compress == o.compress;
  }
};
static_assert(sizeof(TensorAnnouncement) == 24, "announcements are exchanged as 24 bytes");

constexpr uint32_t kFlagStopRequested = 1;

struct RankAnnouncements {
  uint32_t flags = 0;
  std::vector<TensorAnnouncement> tensors;  // in that rank's submission order
};

struct Mismatch {
  uint64_t name_hash;
  std::string description;  // "count differs between ranks: rank 1 has 10, rank 0 has 12"
};

struct CycleDecision {
  // Announced identically by every rank, in rank 0's submission order (an
  // order every rank computes the same way).
  std::vector<TensorAnnouncement> ready;
  // Announced by every rank but with different count/dtype/op/policy.
  std::vector<Mismatch> mismatched;
  bool all_stop_requested = false;
  // Nothing is left pending on any rank once `ready` and `mismatched` finish.
  bool drains_everything = false;
};

CycleDecision decide_cycle(const std::vector<RankAnnouncements>& ranks);

// The ranks (ascending) that announced `name_hash` this cycle.
std::vector<int> ranks_announcing(const std::vector<RankAnnouncements>& ranks, uint64_t name_hash);

// Allgathers this rank's announcements (a control message of the collective
// layer, Collectives::gather_control) into `all` (indexed by rank).
Result exchange_announcements(Collectives& collectives, const RankAnnouncements& mine,
                              std::vector<RankAnnouncements>* all);

}  // namespace qccl
