// The pieces every compressed algorithm shares: asking the adapter for the
// table (adapter.h protocol), feeding statistics back, decoding a peer's
// payload with mismatch-aware errors, and the final avg scaling + dtype cast.
#pragma once

#include <cstdint>

#include "codec/cpu_codec.h"
#include "collective/collective_context.h"

namespace qccl {

struct PlannedEncode {
  EncodePlan plan;
  EncodeSpec spec;
  EncodeStats stats;  // filled by encode when plan.collect_stats
  EncodeStats* stats_sink() { return plan.collect_stats ? &stats : nullptr; }
};

// Steps 1 of the adapter protocol: global norm if the adapter needs it
// (DQSGD), plan(), and the EncodeSpec for this rank (stream 0, index 0).
Result plan_encode(CollectiveContext& ctx, const void* data, uint64_t count, DataType dtype,
                   PlannedEncode* out);

// Step 2: allgather summary(stats) and submit(), if the plan asked for it.
Result submit_statistics(CollectiveContext& ctx, PlannedEncode& planned);

// decode (accumulate = false) or decode_accumulate the payload rank `from`
// sent; a count/method that differs from ours is qcclInvalidUsage.
Result decode_from_rank(int from, const unsigned char* payload, uint64_t bytes,
                        uint64_t expected_count, const EncodeSpec& mine, bool accumulate,
                        float* out);

// out = the rank-order sum of the N payloads at all + offsets[r] (one fused
// pass, codec decode_sum), with the same error translation.
Result decode_sum_from_ranks(const unsigned char* all, const uint64_t* sizes,
                             const uint64_t* offsets, int n, uint64_t expected_count,
                             const EncodeSpec& mine, float* out);

// avg: multiply by 1/N (the same float on every rank); then write `sum`
// into recv as `dtype` (a no-op copy when they are the same float buffer).
void finish_reduction(const float* sum, uint64_t count, bool average, int nranks, DataType dtype,
                      void* recv);

// Books a compressed call into the counters.
void count_compressed_call(CollectiveContext& ctx, const PlannedEncode& planned,
                           uint64_t input_bytes, uint64_t payload_bytes, uint64_t wire_bytes);

// Logs the algorithm choice at INFO once per (collective + algorithm,
// power-of-two size class).
void log_choice_once(CollectiveContext& ctx, const char* collective, const char* algorithm,
                     uint64_t bytes);

}  // namespace qccl
