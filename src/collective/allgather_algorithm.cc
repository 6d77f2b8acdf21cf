// The `allgather` algorithm (docs/design.md §6): each rank encodes its
// whole buffer once, payloads are allgathered, and every rank decodes all N:
// summed in rank order for an allreduce, so every rank holds the same bytes
// (§5.1); one slot each for an allgather. Wire bytes per rank: (N-1)·C.
#include "collective/algorithm.h"
#include "collective/compressed_step.h"

namespace qccl {
namespace {

class AllgatherAlgorithm final : public CollectiveAlgorithm {
 public:
  const char* name() const override { return "allgather"; }

  bool enabled(const CollectiveContext& ctx, const CollectiveRequest& req) const override {
    return req.kind == CollectiveKind::kAllGather ||
           choose_compressed_algo(ctx.config, ctx.transport->size(), req.count) == Algo::kAllgather;
  }

  Result execute(CollectiveContext& ctx, const CollectiveRequest& req) override {
    const int n = ctx.transport->size();
    const bool gather = req.kind == CollectiveKind::kAllGather;
    Workspace& ws = *ctx.workspace;
    Codec& codec = *ctx.codec;
    log_choice_once(ctx, gather ? "allgather" : "allreduce", name(), req.bytes());
    PlannedEncode planned;
    QCCL_CHECK(plan_encode(ctx, req.send, req.count, req.dtype, &planned));
    PayloadHeader expected;
    QCCL_CHECK(expected_header(planned.spec, 0, req.count, &expected));
    const uint64_t bytes = expected.total_bytes;  // whole 4-byte words (payload_format.h)
    QCCL_CHECK(ws.reserve(&ws.encoded, bytes, "encoded payload"));
    QCCL_CHECK(ws.reserve_array(&ws.received, n, bytes, "received payloads"));
    QCCL_CHECK(codec.encode(req.send, req.dtype, req.count, planned.spec, ws.encoded.as(), bytes,
                            planned.stats_sink()));
    uint64_t* sizes = ensure_size(&ctx.tables.sizes, n);
    uint64_t* offsets = ensure_size(&ctx.tables.offsets, n);
    for (int r = 0; r < n; ++r) sizes[r] = bytes, offsets[r] = r * bytes;
    QCCL_CHECK(ctx.transport->allgatherv(ws.encoded.as(), bytes, ws.received.as(), sizes, offsets));
    const unsigned char* all = ws.received.as();
    const int me = ctx.transport->rank();

    if (req.own_decoded != nullptr)
      QCCL_CHECK(
          decode_payloads(ctx, ws.encoded.as(), bytes, 1, expected, req.own_decoded, false, me));
    // The send buffer has been encoded (earlier, in stream order), so a
    // float32 output, even in place, can take decoded values directly.
    const bool direct = req.dtype == DataType::kFloat32;
    if (!direct)
      QCCL_CHECK(ws.reserve_array(&ws.sum, req.count, sizeof(float), "float32 decode buffer"));
    if (gather) {
      const uint64_t slot = req.bytes();
      auto* out = static_cast<unsigned char*>(req.recv);
      for (int r = 0; r < n; ++r) {
        float* decoded = direct ? reinterpret_cast<float*>(out + r * slot) : ws.sum.as<float>();
        QCCL_CHECK(decode_payloads(ctx, all + r * bytes, bytes, 1, expected, decoded, false, r));
        if (!direct)
          QCCL_CHECK(codec.cast_from_float(decoded, req.count, req.dtype, out + r * slot));
      }
      QCCL_CHECK(submit_statistics(ctx, planned, req));
    } else {
      float* sum = direct ? static_cast<float*>(req.recv) : ws.sum.as<float>();
      QCCL_CHECK(decode_payloads(ctx, all, bytes, n, expected, sum, false, 0));
      QCCL_CHECK(submit_statistics(ctx, planned, req));
      QCCL_CHECK(finish_reduction(ctx, sum, req));
    }
    count_compressed_call(ctx, planned, req.input_bytes(), bytes, (n - 1) * bytes);
    return qcclSuccess;
  }
};

}  // namespace

std::unique_ptr<CollectiveAlgorithm> make_allgather_algorithm() {
  return std::make_unique<AllgatherAlgorithm>();
}

}  // namespace qccl
