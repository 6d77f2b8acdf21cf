// What a collective call needs from its communicator: the agreed config,
// the transport, the adapter, the call's codec and scratch memory, the step
// counter and the counters behind qcclCommGetStats. One per communicator;
// not thread-safe (like an NCCL communicator, one call at a time).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "adapt/adapter.h"
#include "codec/codec.h"
#include "collective/workspace.h"
#include "core/config.h"
#include "transport/transport.h"

namespace qccl {

struct CollectiveCounters {
  uint64_t calls = 0;
  uint64_t compressed_calls = 0;
  uint64_t input_bytes = 0;
  uint64_t wire_bytes = 0;                // bytes this rank sent (docs/design.md §6 accounting)
  uint64_t compressed_input_bytes = 0;    // user bytes of the compressed calls
  uint64_t compressed_payload_bytes = 0;  // their encoded size (first quantisation)
  // From the last compressed call's plan.
  int bits = 0;
  uint32_t table_version = 0;
  std::vector<float> levels;
  double predicted_variance = -1;
};

struct CollectiveContext {
  CollectiveContext(const Config& c, Transport& t, Adapter& a)
      : config(c), base_transport(t), adapter(a) {}

  const Config& config;
  Transport& base_transport;  // the communicator's
  Adapter& adapter;

  // Set by Collectives for each call from where its buffers live: host
  // memory -> the host codec, its workspace and the base transport; device
  // memory -> the device codec, its workspace, and the base transport when
  // it accepts device memory, else a staging wrapper around it.
  Codec* codec = nullptr;
  Workspace* workspace = nullptr;
  Transport* transport = nullptr;
  HostTables tables;

  // docs/design.md §7: advanced by qcclCommMarkStep; until the first mark,
  // by every collective call.
  uint64_t step = 0;
  bool step_marked = false;
  double learning_rate = 1.0;
  CollectiveCounters counters;
  // Every operation that went through the call agreement, failed or not:
  // the descriptors' call number (call_agreement.h).
  uint64_t agreed_calls = 0;
  std::set<std::pair<std::string, int>> logged_choices;  // (algorithm, size class) logged
  bool warned_cast_overflow = false;                     // warn_cast_overflow_once
};

}  // namespace qccl
