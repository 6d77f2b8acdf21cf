// Tensors submitted to the engine and not yet completed (docs/design.md §8).
// Producers are any threads (qcclEnqueueAllReduce); the consumer is the
// cycle thread, which snapshots the pending set each cycle and removes the
// entries it completes. One mutex: enqueue is rare next to a cycle.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/method.h"
#include "core/result.h"
#include "qccl/qccl.h"

namespace qccl {

struct TensorEntry {
  std::string name;
  uint64_t name_hash = 0;
  void* buf = nullptr;
  uint64_t count = 0;
  DataType dtype = DataType::kFloat32;
  bool average = false;
  bool compress = true;  // policy decided at enqueue (docs/engine.md)
  qcclEngineCallback_t callback = nullptr;
  void* user = nullptr;
  std::chrono::steady_clock::time_point submitted;
  int64_t submitted_us = 0;  // timeline clock (Timeline::now_us)
  bool stall_warned = false;

  uint64_t bytes() const { return count * dtype_size(dtype); }
};

// 64-bit FNV-1a of a tensor name: what ranks exchange instead of the name.
uint64_t hash_name(const std::string& name);

class TensorQueue {
 public:
  // qcclInvalidUsage if `entry.name` is already pending on this rank.
  Result push(std::unique_ptr<TensorEntry> entry);
  // The pending entries in submission order (pointers stay valid until take()).
  std::vector<TensorEntry*> snapshot();
  // Removes and returns the entry with this hash.
  std::unique_ptr<TensorEntry> take(uint64_t name_hash);
  bool empty();

 private:
  std::mutex mutex_;
  uint64_t next_sequence_ = 0;
  std::map<uint64_t, uint64_t> sequence_of_hash_;                 // hash -> submission sequence
  std::map<uint64_t, std::unique_ptr<TensorEntry>> by_sequence_;  // ordered by submission
};

}  // namespace qccl
