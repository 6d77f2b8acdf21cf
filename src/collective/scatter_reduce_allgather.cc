// The `sra` algorithm (docs/design.md §6): the buffer is cut into N chunks of
// whole buckets; chunk i of every rank is encoded and sent to rank i
// (all-to-all); rank i decodes and sums its N pieces in rank order,
// re-encodes the sum (stream 1, so its draws differ from the first round)
// and the reduced payloads are allgathered. Every rank, the owner included,
// decodes every reduced payload, so all ranks hold the same bytes (§5.1).
// Wire bytes per rank about 2·(N-1)/N·C; one more quantisation than
// `allgather`. Host and device buffers alike (algorithm.h).
#include <algorithm>

#include "collective/algorithm.h"
#include "collective/compressed_step.h"
#include "core/checked_math.h"

namespace qccl {
namespace {

// Chunk i holds buckets [i·nb/N, (i+1)·nb/N): balanced to one bucket, and a
// bucket never straddles two chunks, so the first quantisation is bucketed
// exactly like `allgather`'s. Chunks may be empty when nb < N.
struct ChunkLayout {
  std::vector<uint64_t> begin;  // N+1 element offsets
  ChunkLayout(uint64_t count, uint32_t bucket, int n) : begin(n + 1) {
    const uint64_t nb = num_buckets(count, bucket);
    // nb·i/n without forming nb·i (it overflows for huge counts): with
    // nb = q·n + r, it is q·i + r·i/n, and r·i < n² fits.
    const uint64_t q = nb / n, r = nb % n;
    for (int i = 0; i <= n; ++i) {
      const uint64_t buckets_before = q * i + r * i / n;
      begin[i] = buckets_before > count / bucket ? count : buckets_before * bucket;
    }
  }
  uint64_t count(int i) const { return begin[i + 1] - begin[i]; }
};

// The decoded padding of the first round is quantisation noise around 0
// (a table need not hold 0): sum[i] *= 0 for the request's padding inside
// [begin, begin + count), so the second quantisation of a tensor's last
// bucket sees its own values only. Non-finite padding sums stay non-finite,
// but only in a bucket that is already non-finite.
Result zero_padding(Codec& codec, const std::vector<ZeroRun>& padding, uint64_t begin,
                    uint64_t count, float* sum) {
  for (const ZeroRun& z : padding) {
    const uint64_t lo = std::max(z.offset, begin);
    const uint64_t hi = std::min(z.offset + z.count, begin + count);
    if (lo < hi) QCCL_CHECK(codec.scale(sum + (lo - begin), hi - lo, 0.0f));
  }
  return qcclSuccess;
}

// sizes[i] = the payload bytes of chunk i, packed back to back at
// offsets[i]; *total = their sum. Checked: a sum past 2^64 is an error,
// not a wrapped offset (docs/api.md "Size limits").
Result pack_payload_sizes(const EncodeSpec& spec, const ChunkLayout& chunks, int n, uint64_t* sizes,
                          uint64_t* offsets, uint64_t* total) {
  uint64_t at = 0;
  for (int i = 0; i < n; ++i) {
    uint64_t next = 0;
    if (!checked_payload_bytes(spec, chunks.count(i), &sizes[i]) ||
        !checked_add(at, sizes[i], &next))
      return fail(qcclInvalidArgument,
                  "sra: the payloads of {} chunks ({} elements in chunk {}) overflow 64 bits "
                  "(docs/api.md \"Size limits\")",
                  n, chunks.count(i), i);
    offsets[i] = at;
    at = next;
  }
  *total = at;
  return qcclSuccess;
}

class ScatterReduceAllgather final : public CollectiveAlgorithm {
 public:
  const char* name() const override { return "sra"; }

  bool enabled(const CollectiveContext& ctx, const CollectiveRequest& req) const override {
    return req.kind == CollectiveKind::kAllReduce &&
           choose_compressed_algo(ctx.config, ctx.transport->size(), req.count) == Algo::kSra;
  }

  Result execute(CollectiveContext& ctx, const CollectiveRequest& req) override {
    const int n = ctx.transport->size();
    const int me = ctx.transport->rank();
    Workspace& ws = *ctx.workspace;
    Codec& codec = *ctx.codec;
    HostTables& t = ctx.tables;
    log_choice_once(ctx, "allreduce", name(), req.bytes());
    PlannedEncode planned;
    QCCL_CHECK(plan_encode(ctx, req.send, req.count, req.dtype, &planned));
    const ChunkLayout chunks(req.count, ctx.config.bucket_size, n);
    const size_t elem = dtype_size(req.dtype);

    // Round 1: encode chunk i for rank i, all-to-all.
    uint64_t* sizes = ensure_size(&t.sizes, n);
    uint64_t* offsets = ensure_size(&t.offsets, n);
    uint64_t* sizes_in = ensure_size(&t.sizes_in, n);
    uint64_t* offsets_in = ensure_size(&t.offsets_in, n);
    uint64_t total = 0;
    QCCL_CHECK(pack_payload_sizes(planned.spec, chunks, n, sizes, offsets, &total));
    const uint64_t mine = chunks.count(me);
    QCCL_CHECK(ws.reserve(&ws.encoded, total, "encoded chunks"));
    QCCL_CHECK(ws.reserve_array(&ws.received, n, sizes[me], "received chunks"));
    QCCL_CHECK(
        ws.reserve_array(&ws.chunk_sum, std::max<uint64_t>(mine, 1), sizeof(float), "chunk sum"));
    unsigned char* encoded = ws.encoded.as();
    const unsigned char* in = static_cast<const unsigned char*>(req.send);
    for (int i = 0; i < n; ++i) {
      EncodeSpec spec = planned.spec;
      spec.index_base = chunks.begin[i];
      QCCL_CHECK(codec.encode(in + chunks.begin[i] * elem, req.dtype, chunks.count(i), spec,
                              encoded + offsets[i], sizes[i], planned.stats_sink()));
    }
    for (int r = 0; r < n; ++r) sizes_in[r] = sizes[me], offsets_in[r] = r * sizes[me];
    QCCL_CHECK(
        ctx.transport->alltoallv(encoded, sizes, offsets, ws.received.as(), sizes_in, offsets_in));
    const uint64_t first_round_wire = total - sizes[me];
    const uint64_t first_round_payload = total;
    if (req.own_decoded != nullptr) {
      for (int i = 0; i < n; ++i) {
        PayloadHeader own;
        QCCL_CHECK(expected_header(planned.spec, chunks.begin[i], chunks.count(i), &own));
        QCCL_CHECK(decode_payloads(ctx, encoded + offsets[i], sizes[i], 1, own,
                                   req.own_decoded + chunks.begin[i], false, me));
      }
    }

    // Reduce this rank's chunk in rank order and re-encode it.
    float* chunk_sum = ws.chunk_sum.as<float>();
    PayloadHeader first;
    QCCL_CHECK(expected_header(planned.spec, chunks.begin[me], mine, &first));
    QCCL_CHECK(decode_payloads(ctx, ws.received.as(), sizes[me], n, first, chunk_sum, false, 0));
    QCCL_CHECK(zero_padding(codec, req.padding, chunks.begin[me], mine, chunk_sum));
    EncodeSpec respec = planned.spec;
    respec.stream = 1;
    respec.index_base = chunks.begin[me];
    uint64_t gathered_total = 0;
    QCCL_CHECK(pack_payload_sizes(respec, chunks, n, sizes_in, offsets_in, &gathered_total));
    QCCL_CHECK(ws.reserve(&ws.reduced, sizes_in[me], "re-encoded chunk"));
    QCCL_CHECK(ws.reserve(&ws.gathered, gathered_total, "re-encoded chunks"));
    // fp16: the reduced sum can leave the float16 range although every
    // input was inside it.
    EncodeStats resum;
    QCCL_CHECK(codec.encode(chunk_sum, DataType::kFloat32, mine, respec, ws.reduced.as(),
                            sizes_in[me], planned.count_cast_overflows ? &resum : nullptr));
    warn_cast_overflow_once(ctx, resum.cast_overflows, "the reduced sum");

    // Round 2: allgather the reduced chunks; everyone decodes all of them.
    const unsigned char* gathered = ws.gathered.as();
    QCCL_CHECK(ctx.transport->allgatherv(ws.reduced.as(), sizes_in[me], ws.gathered.as(), sizes_in,
                                         offsets_in));
    float* sum = static_cast<float*>(req.recv);
    if (req.dtype != DataType::kFloat32) {
      QCCL_CHECK(ws.reserve_array(&ws.sum, req.count, sizeof(float), "float32 accumulator"));
      sum = ws.sum.as<float>();
    }
    for (int r = 0; r < n; ++r) {
      PayloadHeader second;
      QCCL_CHECK(expected_header(respec, chunks.begin[r], chunks.count(r), &second));
      QCCL_CHECK(decode_payloads(ctx, gathered + offsets_in[r], sizes_in[r], 1, second,
                                 sum + chunks.begin[r], false, r));
    }
    QCCL_CHECK(submit_statistics(ctx, planned, req));
    QCCL_CHECK(finish_reduction(ctx, sum, req));
    count_compressed_call(ctx, planned, req.input_bytes(), first_round_payload,
                          first_round_wire + (n - 1) * sizes_in[me]);
    return qcclSuccess;
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_scatter_reduce_allgather() {
  return std::make_unique<ScatterReduceAllgather>();
}

}  // namespace qccl
