#include "engine/tensor_queue.h"

namespace qccl {

uint64_t hash_name(const std::string& name) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Result TensorQueue::push(std::unique_ptr<TensorEntry> entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = sequence_of_hash_.find(entry->name_hash);
  if (found != sequence_of_hash_.end()) {
    const std::string& other = by_sequence_[found->second]->name;
    if (other == entry->name)
      return fail(qcclInvalidUsage,
                  "tensor '{}' is already pending on this rank: wait for its callback before "
                  "enqueueing the name again",
                  entry->name);
    return fail(qcclInvalidUsage,
                "tensor names '{}' and '{}' have the same 64-bit hash; rename one", entry->name,
                other);
  }
  const uint64_t seq = next_sequence_++;
  sequence_of_hash_[entry->name_hash] = seq;
  by_sequence_[seq] = std::move(entry);
  return qcclSuccess;
}

std::vector<TensorEntry*> TensorQueue::snapshot() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<TensorEntry*> out;
  out.reserve(by_sequence_.size());
  for (auto& [seq, entry] : by_sequence_) out.push_back(entry.get());
  return out;
}

std::unique_ptr<TensorEntry> TensorQueue::take(uint64_t name_hash) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = sequence_of_hash_.find(name_hash);
  if (found == sequence_of_hash_.end()) return nullptr;
  auto node = by_sequence_.find(found->second);
  std::unique_ptr<TensorEntry> entry = std::move(node->second);
  by_sequence_.erase(node);
  sequence_of_hash_.erase(found);
  return entry;
}

bool TensorQueue::empty() {
  std::lock_guard<std::mutex> lock(mutex_);
  return by_sequence_.empty();
}

}  // namespace qccl
