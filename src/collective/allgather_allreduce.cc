// The `allgather` algorithm (DESIGN.md §6): each rank encodes its whole
// buffer once, payloads are allgathered and every rank decodes all N and
// sums them in rank order, so every rank holds the same bytes (§5.1).
// Wire bytes per rank: (N-1)·C.
#include "collective/allreduce_algorithm.h"
#include "collective/compressed_step.h"

namespace qccl {
namespace {

class AllgatherAllreduce final : public AllreduceAlgorithm {
 public:
  const char* name() const override { return "allgather"; }

  bool enabled(const CollectiveContext& ctx, const AllreduceRequest& req) const override {
    return choose_compressed_algo(ctx.config, ctx.transport.size(), req.count) == Algo::kAllgather;
  }

  Result execute(CollectiveContext& ctx, const AllreduceRequest& req) override {
    const int n = ctx.transport.size();
    Workspace& ws = ctx.workspace;
    log_choice_once(ctx, "allreduce", name(), req.bytes());
    PlannedEncode planned;
    QCCL_CHECK(plan_encode(ctx, req.send, req.count, req.dtype, &planned));
    const uint64_t bytes = payload_bytes(planned.spec, req.count);
    QCCL_CHECK(encode(req.send, req.dtype, req.count, planned.spec, grow(&ws.encoded, bytes), bytes,
                      planned.stats_sink()));

    unsigned char* all = grow(&ws.received, n * bytes);
    uint64_t* sizes = grow(&ws.sizes, n);
    uint64_t* offsets = grow(&ws.offsets, n);
    for (int r = 0; r < n; ++r) sizes[r] = bytes, offsets[r] = r * bytes;
    QCCL_CHECK(ctx.transport.allgatherv(ws.encoded.data(), bytes, all, sizes, offsets));

    // The send buffer has been encoded, so a float32 recv (even in place)
    // can be the accumulator.
    float* sum =
        req.dtype == DataType::kFloat32 ? static_cast<float*>(req.recv) : grow(&ws.sum, req.count);
    QCCL_CHECK(decode_sum_from_ranks(all, sizes, offsets, n, req.count, planned.spec, sum));
    QCCL_CHECK(submit_statistics(ctx, planned));
    finish_reduction(sum, req.count, req.average, n, req.dtype, req.recv);
    count_compressed_call(ctx, planned, req.bytes(), bytes, (n - 1) * bytes);
    return qcclSuccess;
  }
};

}  // namespace

std::unique_ptr<AllreduceAlgorithm> make_allgather_allreduce() {
  return std::make_unique<AllgatherAllreduce>();
}

}  // namespace qccl
