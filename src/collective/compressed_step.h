// The pieces every compressed algorithm shares: asking the adapter for the
// table (adapter.h protocol), feeding statistics back, decoding payloads
// with mismatch-aware errors, and the final avg scaling + dtype cast. All
// work goes through the call's codec (ctx.codec), so the same code serves
// host and device buffers.
#pragma once

#include <cstdint>

#include "codec/cpu_codec.h"
#include "collective/algorithm.h"
#include "collective/collective_context.h"

namespace qccl {

struct PlannedEncode {
  EncodePlan plan;
  EncodeSpec spec;
  EncodeStats stats;  // filled by encode when plan.collect_stats, or for fp16
  // fp16 on a host codec asks for the statistics too, for their count of
  // values the cast turned into ±Inf (warn_cast_overflow_once); a device
  // codec would have to wait for them, so device buffers are not checked.
  bool count_cast_overflows = false;
  EncodeStats* stats_sink() {
    return plan.collect_stats || count_cast_overflows ? &stats : nullptr;
  }
};

// Step 1 of the adapter protocol: global norm if the adapter needs it
// (DQSGD; computed by the codec where the data lives), plan(), and the
// EncodeSpec for this rank (stream 0, index 0).
Result plan_encode(CollectiveContext& ctx, const void* data, uint64_t count, DataType dtype,
                   PlannedEncode* out);

// Step 2: allgather summary(stats) and submit(), if the plan asked for it;
// the request's padding is taken out of the statistics first. Also warns
// (warn_cast_overflow_once) if the fp16 cast overflowed.
Result submit_statistics(CollectiveContext& ctx, PlannedEncode& planned,
                         const CollectiveRequest& req);

// Takes zero padding back out of statistics that encode() gathered over it:
// a padded coordinate is r = 0 in its bucket (count, and norm^2 in
// histogram bin 0; nothing in sum_r or sum_r2), so the tables are fitted
// from the caller's data only, as if each tensor were reduced alone.
void discount_padding(const std::vector<ZeroRun>& padding, uint32_t bucket_size,
                      EncodeStats* stats);

// fp16 only: a WARN, once per collective context, the first time the cast
// turned `overflows` finite values into ±Inf (docs/algorithms.md §6).
void warn_cast_overflow_once(CollectiveContext& ctx, uint64_t overflows, const char* what);

// The header of the payload `spec` gives for `count` elements starting at
// element `index_base` (what every rank's payload for that range must
// match).
Result expected_header(const EncodeSpec& spec, uint64_t index_base, uint64_t count,
                       PayloadHeader* out);

// out (+)= the rank-order sum of the n payloads at payloads + p * stride,
// which came from ranks first_rank, first_rank + 1, ... (for messages); a
// count or method that differs from ours is qcclInvalidUsage naming the
// rank.
Result decode_payloads(CollectiveContext& ctx, const unsigned char* payloads, uint64_t stride,
                       int n, const PayloadHeader& expected, float* out, bool accumulate,
                       int first_rank);

// avg: multiply `sum` by 1/N (the same float on every rank and memory);
// then write it into req.recv as req.dtype (nothing more when `sum` is
// recv).
Result finish_reduction(CollectiveContext& ctx, float* sum, const CollectiveRequest& req);

// Books a compressed call into the counters.
void count_compressed_call(CollectiveContext& ctx, const PlannedEncode& planned,
                           uint64_t input_bytes, uint64_t payload_bytes, uint64_t wire_bytes);

// Logs the algorithm choice at INFO once per (collective + algorithm,
// power-of-two size class).
void log_choice_once(CollectiveContext& ctx, const char* collective, const char* algorithm,
                     uint64_t bytes);

}  // namespace qccl
