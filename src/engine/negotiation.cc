#include "engine/negotiation.h"

#include <cstring>
#include <unordered_map>

#include "core/method.h"

namespace qccl {
namespace {

std::string describe_difference(const std::vector<const TensorAnnouncement*>& per_rank) {
  const TensorAnnouncement& a = *per_rank[0];
  for (size_t r = 1; r < per_rank.size(); ++r) {
    const TensorAnnouncement& b = *per_rank[r];
    if (a.count != b.count)
      return fmt::format("count differs between ranks: rank 0 has {}, rank {} has {}", a.count, r,
                         b.count);
    if (a.dtype != b.dtype)
      return fmt::format("dtype differs between ranks: rank 0 has {}, rank {} has {}",
                         dtype_name(static_cast<DataType>(a.dtype)), r,
                         dtype_name(static_cast<DataType>(b.dtype)));
    if (a.op != b.op)
      return fmt::format("reduction op differs between ranks: rank 0 has {}, rank {} has {}",
                         a.op == qcclAvg ? "avg" : "sum", r, b.op == qcclAvg ? "avg" : "sum");
    if (a.compress != b.compress)
      return fmt::format(
          "compression policy differs between ranks: rank 0 {} it, rank {} {} it "
          "(QCCL_ENQUEUE_UNCOMPRESSED or QCCL_MIN_COMPRESS_BYTES)",
          a.compress ? "compresses" : "does not compress", r,
          b.compress ? "compresses" : "does not compress");
  }
  return "no difference";
}

}  // namespace

CycleDecision decide_cycle(const std::vector<RankAnnouncements>& ranks) {
  CycleDecision d;
  const size_t n = ranks.size();
  d.all_stop_requested = true;
  for (const RankAnnouncements& r : ranks)
    d.all_stop_requested = d.all_stop_requested && (r.flags & kFlagStopRequested);

  // hash -> its record on each rank (null where not announced).
  std::unordered_map<uint64_t, std::vector<const TensorAnnouncement*>> seen;
  for (size_t r = 0; r < n; ++r)
    for (const TensorAnnouncement& t : ranks[r].tensors) {
      auto& slots = seen[t.name_hash];
      if (slots.empty()) slots.assign(n, nullptr);
      slots[r] = &t;
    }
  size_t finished = 0;
  for (const TensorAnnouncement& t : ranks[0].tensors) {
    const auto& slots = seen[t.name_hash];
    bool everywhere = true, identical = true;
    for (const TensorAnnouncement* s : slots) {
      everywhere = everywhere && s != nullptr;
      identical = identical && s != nullptr && s->same_call(t);
    }
    if (!everywhere) continue;
    ++finished;
    if (identical)
      d.ready.push_back(t);
    else
      d.mismatched.push_back({t.name_hash, describe_difference(slots)});
  }
  d.drains_everything = true;
  for (const RankAnnouncements& r : ranks)
    d.drains_everything = d.drains_everything && r.tensors.size() == finished;
  return d;
}

std::vector<int> ranks_announcing(const std::vector<RankAnnouncements>& ranks, uint64_t name_hash) {
  std::vector<int> out;
  for (size_t r = 0; r < ranks.size(); ++r)
    for (const TensorAnnouncement& t : ranks[r].tensors)
      if (t.name_hash == name_hash) {
        out.push_back(static_cast<int>(r));
        break;
      }
  return out;
}

Result exchange_announcements(Collectives& collectives, const RankAnnouncements& mine,
                              std::vector<RankAnnouncements>* all) {
  const int n = collectives.size();
  // Wire form: [flags u32][count u32][records...].
  std::vector<unsigned char> message(8 + mine.tensors.size() * sizeof(TensorAnnouncement));
  const uint32_t header[2] = {mine.flags, static_cast<uint32_t>(mine.tensors.size())};
  std::memcpy(message.data(), header, sizeof header);
  if (!mine.tensors.empty())
    std::memcpy(message.data() + 8, mine.tensors.data(),
                mine.tensors.size() * sizeof(TensorAnnouncement));
  std::vector<unsigned char> gathered;
  std::vector<uint64_t> offsets;
  QCCL_CHECK(collectives.gather_control(message.data(), message.size(), &gathered, &offsets));
  all->assign(n, RankAnnouncements());
  for (int r = 0; r < n; ++r) {
    const uint64_t bytes = offsets[r + 1] - offsets[r];
    uint32_t h[2];
    if (bytes < 8 || (bytes - 8) % sizeof(TensorAnnouncement) != 0)
      return fail(qcclInternalError, "engine negotiation: rank {} sent a {}-byte message", r,
                  bytes);
    std::memcpy(h, gathered.data() + offsets[r], sizeof h);
    if (8 + static_cast<uint64_t>(h[1]) * sizeof(TensorAnnouncement) != bytes)
      return fail(qcclInternalError, "engine negotiation: rank {} announced {} tensors in {} bytes",
                  r, h[1], bytes);
    (*all)[r].flags = h[0];
    (*all)[r].tensors.resize(h[1]);
    if (h[1] > 0)
      std::memcpy((*all)[r].tensors.data(), gathered.data() + offsets[r] + 8,
                  h[1] * sizeof(TensorAnnouncement));
  }
  return qcclSuccess;
}

}  // namespace qccl
