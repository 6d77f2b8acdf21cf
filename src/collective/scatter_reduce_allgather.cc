// The `sra` algorithm (DESIGN.md §6): the buffer is cut into N chunks of
// whole buckets; chunk i of every rank is encoded and sent to rank i
// (all-to-all); rank i decodes and sums its N pieces in rank order,
// re-encodes the sum (stream 1, so its draws differ from the first round)
// and the reduced payloads are allgathered. Every rank, the owner included,
// decodes every reduced payload, so all ranks hold the same bytes (§5.1).
// Wire bytes per rank about 2·(N-1)/N·C; one more quantisation than
// `allgather`.
#include <algorithm>

#include "collective/allreduce_algorithm.h"
#include "collective/compressed_step.h"

namespace qccl {
namespace {

// Chunk i holds buckets [i·nb/N, (i+1)·nb/N): balanced to one bucket, and a
// bucket never straddles two chunks, so the first quantisation is bucketed
// exactly like `allgather`'s. Chunks may be empty when nb < N.
struct ChunkLayout {
  std::vector<uint64_t> begin;  // N+1 element offsets
  ChunkLayout(uint64_t count, uint32_t bucket, int n) : begin(n + 1) {
    const uint64_t nb = num_buckets(count, bucket);
    for (int i = 0; i <= n; ++i) begin[i] = std::min(count, (nb * i / n) * bucket);
  }
  uint64_t count(int i) const { return begin[i + 1] - begin[i]; }
};

class ScatterReduceAllgather final : public AllreduceAlgorithm {
 public:
  const char* name() const override { return "sra"; }

  bool enabled(const CollectiveContext& ctx, const AllreduceRequest& req) const override {
    return choose_compressed_algo(ctx.config, ctx.transport.size(), req.count) == Algo::kSra;
  }

  Result execute(CollectiveContext& ctx, const AllreduceRequest& req) override {
    const int n = ctx.transport.size();
    const int me = ctx.transport.rank();
    Workspace& ws = ctx.workspace;
    log_choice_once(ctx, "allreduce", name(), req.bytes());
    PlannedEncode planned;
    QCCL_CHECK(plan_encode(ctx, req.send, req.count, req.dtype, &planned));
    const ChunkLayout chunks(req.count, ctx.config.bucket_size, n);
    const size_t elem = dtype_size(req.dtype);

    // Round 1: encode chunk i for rank i, all-to-all.
    uint64_t* sizes = grow(&ws.sizes, n);
    uint64_t* offsets = grow(&ws.offsets, n);
    uint64_t* sizes_in = grow(&ws.sizes_in, n);
    uint64_t* offsets_in = grow(&ws.offsets_in, n);
    uint64_t total = 0;
    for (int i = 0; i < n; ++i) {
      sizes[i] = payload_bytes(planned.spec, chunks.count(i));
      offsets[i] = total;
      total += sizes[i];
    }
    unsigned char* encoded = grow(&ws.encoded, total);
    const unsigned char* in = static_cast<const unsigned char*>(req.send);
    for (int i = 0; i < n; ++i) {
      EncodeSpec spec = planned.spec;
      spec.index_base = chunks.begin[i];
      QCCL_CHECK(encode(in + chunks.begin[i] * elem, req.dtype, chunks.count(i), spec,
                        encoded + offsets[i], sizes[i], planned.stats_sink()));
    }
    const uint64_t mine = chunks.count(me);
    for (int r = 0; r < n; ++r) sizes_in[r] = sizes[me], offsets_in[r] = r * sizes[me];
    unsigned char* received = grow(&ws.received, n * sizes[me]);
    QCCL_CHECK(ctx.transport.alltoallv(encoded, sizes, offsets, received, sizes_in, offsets_in));
    const uint64_t first_round_wire = total - sizes[me];
    const uint64_t first_round_payload = total;

    // Reduce this rank's chunk in rank order and re-encode it.
    float* chunk_sum = grow(&ws.chunk_sum, mine);
    QCCL_CHECK(
        decode_sum_from_ranks(received, sizes_in, offsets_in, n, mine, planned.spec, chunk_sum));
    EncodeSpec respec = planned.spec;
    respec.stream = 1;
    respec.index_base = chunks.begin[me];
    for (int r = 0; r < n; ++r) {
      sizes_in[r] = payload_bytes(respec, chunks.count(r));
      offsets_in[r] = r == 0 ? 0 : offsets_in[r - 1] + sizes_in[r - 1];
    }
    unsigned char* reduced = grow(&ws.reduced, sizes_in[me]);
    QCCL_CHECK(encode(chunk_sum, DataType::kFloat32, mine, respec, reduced, sizes_in[me], nullptr));

    // Round 2: allgather the reduced chunks; everyone decodes all of them.
    unsigned char* gathered = grow(&ws.gathered, offsets_in[n - 1] + sizes_in[n - 1]);
    QCCL_CHECK(ctx.transport.allgatherv(reduced, sizes_in[me], gathered, sizes_in, offsets_in));
    float* sum =
        req.dtype == DataType::kFloat32 ? static_cast<float*>(req.recv) : grow(&ws.sum, req.count);
    for (int r = 0; r < n; ++r)
      QCCL_CHECK(decode_from_rank(r, gathered + offsets_in[r], sizes_in[r], chunks.count(r), respec,
                                  false, sum + chunks.begin[r]));
    QCCL_CHECK(submit_statistics(ctx, planned));
    finish_reduction(sum, req.count, req.average, n, req.dtype, req.recv);
    count_compressed_call(ctx, planned, req.bytes(), first_round_payload,
                          first_round_wire + (n - 1) * sizes_in[me]);
    return qcclSuccess;
  }
};

}  // namespace

std::unique_ptr<AllreduceAlgorithm> make_scatter_reduce_allgather() {
  return std::make_unique<ScatterReduceAllgather>();
}

}  // namespace qccl
