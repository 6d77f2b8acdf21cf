// Which ready tensors travel together (docs/design.md §8): tensors of one dtype,
// op and compression policy are packed, in the agreed order, into groups of
// at most QCCL_FUSION_THRESHOLD bytes (a larger tensor travels alone).
// Computed from the announcements only, so every rank builds the same groups.
#pragma once

#include <cstdint>
#include <vector>

#include "core/method.h"
#include "engine/negotiation.h"

namespace qccl {

struct FusionGroup {
  DataType dtype = DataType::kFloat32;
  bool average = false;
  bool compress = true;
  uint64_t count = 0;                 // elements in the fused buffer
  std::vector<uint64_t> name_hashes;  // members, in buffer order
};

std::vector<FusionGroup> plan_fusion(const std::vector<TensorAnnouncement>& ready,
                                     uint64_t threshold_bytes);

}  // namespace qccl
