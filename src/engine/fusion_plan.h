// Which ready tensors travel together (docs/design.md §8): tensors of one dtype,
// op and compression policy are packed, in the agreed order, into groups of
// at most QCCL_FUSION_THRESHOLD bytes (a larger tensor travels alone).
// Computed from the announcements only, so every rank builds the same groups.
//
// In a group that a quantising method compresses, every member starts at a
// multiple of the bucket size, so no quantisation bucket spans two tensors:
// one tensor's NaN or magnitude never reaches another's bucket norm
// (docs/engine.md "Fusion"). The gaps are zero padding.
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
  uint64_t count = 0;                 // elements in the fused buffer, padding included
  std::vector<uint64_t> name_hashes;  // members, in buffer order
  std::vector<uint64_t> offsets;      // element offset of each member in the buffer
  std::vector<uint64_t> counts;       // elements of each member

  // Elements of the buffer that belong to no member (zero padding).
  uint64_t padding() const;
};

// `bucket_size`: the alignment of members of compressed groups (the
// quantising methods' QCCL_BUCKET_SIZE; 1 for casts and none, which have no
// buckets). Uncompressed groups are never padded. Padding counts towards
// the threshold (it is part of the buffer).
std::vector<FusionGroup> plan_fusion(const std::vector<TensorAnnouncement>& ready,
                                     uint64_t threshold_bytes, uint64_t bucket_size);

}  // namespace qccl
