#include "engine/fusion_plan.h"

#include <map>
#include <tuple>

#include "core/checked_math.h"

namespace qccl {

std::vector<FusionGroup> plan_fusion(const std::vector<TensorAnnouncement>& ready,
                                     uint64_t threshold_bytes) {
  std::vector<FusionGroup> groups;
  // (dtype, op, compress) -> index of that kind's group still being filled.
  std::map<std::tuple<uint8_t, uint8_t, uint8_t>, size_t> open;
  for (const TensorAnnouncement& t : ready) {
    const DataType dtype = static_cast<DataType>(t.dtype);
    const auto key = std::make_tuple(t.dtype, t.op, t.compress);
    auto it = open.find(key);
    if (it != open.end()) {
      // Checked: a sum past 2^64 closes the group like one past the
      // threshold (the group's size is checked again before it runs).
      const FusionGroup& g = groups[it->second];
      uint64_t fused_count = 0, fused_bytes = 0;
      if (!checked_add(g.count, t.count, &fused_count) ||
          !checked_mul(fused_count, dtype_size(dtype), &fused_bytes) ||
          fused_bytes > threshold_bytes) {
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
    g.count += t.count;
    g.name_hashes.push_back(t.name_hash);
  }
  return groups;
}

}  // namespace qccl
