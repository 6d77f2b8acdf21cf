#include "engine/fusion_plan.h"

#include <map>
#include <numeric>
#include <tuple>

#include "core/checked_math.h"

namespace qccl {
namespace {

uint64_t round_up(uint64_t x, uint64_t multiple) {
  return (x + multiple - 1) / multiple * multiple;
}

}  // namespace

uint64_t FusionGroup::padding() const {
  return count - std::accumulate(counts.begin(), counts.end(), uint64_t{0});
}

std::vector<FusionGroup> plan_fusion(const std::vector<TensorAnnouncement>& ready,
                                     uint64_t threshold_bytes, uint64_t bucket_size) {
  std::vector<FusionGroup> groups;
  // (dtype, op, compress) -> index of that kind's group still being filled.
  std::map<std::tuple<uint8_t, uint8_t, uint8_t>, size_t> open;
  for (const TensorAnnouncement& t : ready) {
    const DataType dtype = static_cast<DataType>(t.dtype);
    const uint64_t elem = dtype_size(dtype);
    const uint64_t align = t.compress != 0 && bucket_size > 0 ? bucket_size : 1;
    const auto key = std::make_tuple(t.dtype, t.op, t.compress);
    auto it = open.find(key);
    if (it != open.end()) {
      // Checked: a sum past 2^64 closes the group like one past the
      // threshold (the group's size is checked again before it runs).
      const FusionGroup& g = groups[it->second];
      uint64_t padded = 0, fused_count = 0, fused_bytes = 0;
      if (!checked_add(g.count, align - 1, &padded) ||
          !checked_add(padded / align * align, t.count, &fused_count) ||
          !checked_mul(fused_count, elem, &fused_bytes) || fused_bytes > threshold_bytes) {
        open.erase(it);
        it = open.end();
      }
    }
    if (it == open.end()) {
      FusionGroup g;
      g.dtype = dtype;
      g.average = t.op == qcclAvg;
      g.compress = t.compress != 0;
      groups.push_back(g);
      it = open.emplace(key, groups.size() - 1).first;
    }
    FusionGroup& g = groups[it->second];
    const uint64_t offset = round_up(g.count, align);
    g.offsets.push_back(offset);
    g.counts.push_back(t.count);
    g.count = offset + t.count;
    g.name_hashes.push_back(t.name_hash);
  }
  return groups;
}

}  // namespace qccl
