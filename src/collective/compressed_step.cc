#include "collective/compressed_step.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "codec/level_table.h"
#include "core/logging.h"

namespace qccl {

Result plan_encode(CollectiveContext& ctx, const void* data, uint64_t count, DataType dtype,
                   PlannedEncode* out) {
  double global_norm = 0;
  if (ctx.adapter.needs_global_norm()) {
    // The norm of the summed gradient is unknown before the reduction; the
    // L2 norm of all ranks' gradients stacked (sqrt of the summed squares)
    // stands in for it, and is identical on every rank.
    double squares = 0;
    QCCL_CHECK(ctx.codec->sum_of_squares(data, dtype, count, &squares));
    QCCL_CHECK(ctx.transport->allreduce_sum(&squares, 1));
    global_norm = std::sqrt(squares);
  }
  QCCL_CHECK(ctx.adapter.plan(ctx.step, global_norm, ctx.learning_rate, &out->plan));
  EncodeSpec& s = out->spec;
  s.method = ctx.config.method;
  s.bits = out->plan.bits > 0 ? out->plan.bits : ctx.config.bits;
  s.bucket_size = ctx.config.bucket_size;
  s.norm = ctx.config.effective_norm();
  if (out->plan.table) {
    // A table that would quantise wrongly must fail loudly, not corrupt
    // the sum (docs/design.md §5.3: every rank holds the same table, so every
    // rank fails alike).
    const LevelTable& t = *out->plan.table;
    if (is_quantizing(s.method) &&
        validate_levels(t.levels.data(), t.size(), s.bits) != qcclSuccess)
      return fail(qcclInternalError, "the adapter's level table v{} for {} bits is invalid: {}",
                  t.version, s.bits, std::string(thread_last_error()));
    s.levels = out->plan.table->levels.data();
    s.num_levels = out->plan.table->size();
    s.table_version = out->plan.table->version;
  }
  s.seed = ctx.config.seed;
  s.rank = static_cast<uint32_t>(ctx.transport->rank());
  s.stream = 0;
  s.step = static_cast<uint32_t>(ctx.step);
  s.index_base = 0;
  out->stats = EncodeStats{};
  out->count_cast_overflows = s.method == Method::kFp16 && !ctx.codec->on_device();
  return qcclSuccess;
}

void discount_padding(const std::vector<ZeroRun>& padding, uint32_t bucket_size,
                      EncodeStats* stats) {
  for (const ZeroRun& z : padding) {
    for (uint64_t i = z.offset; i < z.offset + z.count;) {
      const uint64_t b = i / bucket_size;
      const uint64_t end = std::min<uint64_t>(z.offset + z.count, (b + 1) * bucket_size);
      if (b >= stats->buckets.size()) return;
      BucketStats& s = stats->buckets[b];
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(end - i, s.count));
      s.count -= n;
      if (std::isfinite(s.norm)) {
        const double weight = static_cast<double>(s.norm) * s.norm * n;
        stats->hist[0] = std::max(0.0, stats->hist[0] - weight);
      }
      i = end;
    }
  }
}

void warn_cast_overflow_once(CollectiveContext& ctx, uint64_t overflows, const char* what) {
  if (overflows == 0 || ctx.warned_cast_overflow) return;
  ctx.warned_cast_overflow = true;
  QCCL_LOG_WARN(
      "method fp16: {} finite value(s) of {} are beyond the float16 range (|x| >= 65520) and "
      "became +/-Inf on the wire; use bf16 or a quantising method for such data (warned once "
      "per communicator)",
      overflows, what);
}

Result submit_statistics(CollectiveContext& ctx, PlannedEncode& planned,
                         const CollectiveRequest& req) {
  warn_cast_overflow_once(ctx, planned.stats.cast_overflows, "this rank's input");
  if (!planned.plan.collect_stats) return qcclSuccess;
  discount_padding(req.padding, planned.spec.bucket_size, &planned.stats);
  const std::vector<double> mine = ctx.adapter.summary(planned.stats);
  const int n = ctx.transport->size();
  const uint64_t bytes = mine.size() * sizeof(double);
  double* all = ensure_size(&ctx.tables.summaries, mine.size() * n);
  uint64_t* sizes = ensure_size(&ctx.tables.sizes, n);
  uint64_t* offsets = ensure_size(&ctx.tables.offsets, n);
  for (int r = 0; r < n; ++r) sizes[r] = bytes, offsets[r] = r * bytes;
  QCCL_CHECK(ctx.transport->allgatherv(mine.data(), bytes, all, sizes, offsets));
  const std::vector<double> gathered(all, all + mine.size() * n);
  return ctx.adapter.submit(ctx.step, gathered, n);
}

namespace {

// A payload from rank `from` failed to decode. Every rank agreed on the
// count and the method in the call agreement before any payload moved, so
// a header that says otherwise is corruption (in flight or in memory), not
// a caller's mismatch: reported as such, with what the header claimed.
Result payload_error(Result r, int from, const unsigned char* payload, uint64_t bytes,
                     uint64_t expected_count, Method mine) {
  if (r == qcclCorruptPayload && bytes >= sizeof(PayloadHeader)) {
    PayloadHeader h;
    std::memcpy(&h, payload, sizeof h);
    if (h.magic == kPayloadMagic &&
        (h.count != expected_count || h.method != static_cast<uint8_t>(mine)))
      return fail(qcclCorruptPayload,
                  "payload from rank {} is corrupt: its header says {} elements of method {}, but "
                  "every rank agreed on {} of {} for this call ({})",
                  from, h.count, h.method, expected_count, method_name(mine),
                  std::string(thread_last_error()));
  }
  return fail(r, "payload from rank {}: {}", from, std::string(thread_last_error()));
}

}  // namespace

Result expected_header(const EncodeSpec& spec, uint64_t index_base, uint64_t count,
                       PayloadHeader* out) {
  EncodeSpec at = spec;
  at.index_base = index_base;
  return make_payload_header(at, count, out);
}

Result decode_payloads(CollectiveContext& ctx, const unsigned char* payloads, uint64_t stride,
                       int n, const PayloadHeader& expected, float* out, bool accumulate,
                       int first_rank) {
  int failed = -1;
  const Result r = ctx.codec->decode_sum(payloads, stride, n, expected, out, accumulate, &failed);
  if (r == qcclSuccess || failed < 0) return r;
  // Only a host codec names the payload, and its payloads are host memory.
  return payload_error(r, first_rank + failed, payloads + failed * stride, expected.total_bytes,
                       expected.count, static_cast<Method>(expected.method));
}

Result finish_reduction(CollectiveContext& ctx, float* sum, const CollectiveRequest& req) {
  if (req.average)
    QCCL_CHECK(ctx.codec->scale(sum, req.count, 1.0f / static_cast<float>(ctx.transport->size())));
  if (static_cast<void*>(sum) != req.recv)
    QCCL_CHECK(ctx.codec->cast_from_float(sum, req.count, req.dtype, req.recv));
  return qcclSuccess;
}

void count_compressed_call(CollectiveContext& ctx, const PlannedEncode& planned,
                           uint64_t input_bytes, uint64_t payload_bytes, uint64_t wire_bytes) {
  CollectiveCounters& c = ctx.counters;
  c.compressed_calls++;
  c.compressed_input_bytes += input_bytes;
  c.compressed_payload_bytes += payload_bytes;
  c.wire_bytes += wire_bytes;
  c.bits = planned.spec.bits;
  c.table_version = planned.spec.table_version;
  if (planned.plan.table) c.levels = planned.plan.table->levels;
  c.predicted_variance = planned.plan.predicted_variance;
}

void log_choice_once(CollectiveContext& ctx, const char* collective, const char* algorithm,
                     uint64_t bytes) {
  int size_class = 0;
  while ((bytes >> size_class) > 1) ++size_class;
  if (!ctx.logged_choices.insert({std::string(collective) + "/" + algorithm, size_class}).second)
    return;
  QCCL_LOG_INFO("{} of {} bytes (size class 2^{}) on {} ranks: algorithm {} (method {}, {} bits)",
                collective, bytes, size_class, ctx.transport->size(), algorithm,
                method_name(ctx.config.method), ctx.config.bits);
}

}  // namespace qccl
