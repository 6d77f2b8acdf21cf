// Uncompressed collectives through the transport's own operations
// (docs/design.md §6): the cases goes_uncompressed() names.
#include "collective/algorithm.h"
#include "collective/compressed_step.h"

namespace qccl {
namespace {

class Passthrough final : public CollectiveAlgorithm {
 public:
  const char* name() const override { return "passthrough"; }

  bool enabled(const CollectiveContext& ctx, const CollectiveRequest& req) const override {
    return goes_uncompressed(ctx.config, ctx.transport->size(), req);
  }

  Result execute(CollectiveContext& ctx, const CollectiveRequest& req) override {
    const int n = ctx.transport->size();
    const uint64_t bytes = req.bytes();
    if (req.kind == CollectiveKind::kAllGather) {
      log_choice_once(ctx, "allgather", name(), bytes);
      // MPI forbids aliasing send and recv; in place (send == own slot) or
      // any overlap goes through a copy.
      Workspace& ws = *ctx.workspace;
      QCCL_CHECK(ws.reserve(&ws.encoded, bytes, "allgather send copy"));
      QCCL_CHECK(ctx.codec->copy(ws.encoded.as(), req.send, bytes));
      uint64_t* sizes = ensure_size(&ctx.tables.sizes, n);
      uint64_t* offsets = ensure_size(&ctx.tables.offsets, n);
      for (int r = 0; r < n; ++r) sizes[r] = bytes, offsets[r] = r * bytes;
      QCCL_CHECK(ctx.transport->allgatherv(ws.encoded.as(), bytes, req.recv, sizes, offsets));
      ctx.counters.wire_bytes += (n - 1) * bytes;
      return qcclSuccess;
    }
    log_choice_once(ctx, "allreduce", name(), bytes);
    QCCL_CHECK(ctx.transport->allreduce_passthrough(req.send, req.recv, req.count, req.dtype));
    if (req.average) {
      // Sum exactly as the transport's allreduce gives it, then the one
      // multiply by 1/N every path uses.
      float* sum = static_cast<float*>(req.recv);
      if (req.dtype != DataType::kFloat32) {
        Workspace& ws = *ctx.workspace;
        QCCL_CHECK(ws.reserve_array(&ws.sum, req.count, sizeof(float), "float32 accumulator"));
        sum = ws.sum.as<float>();
        QCCL_CHECK(ctx.codec->cast_to_float(req.recv, req.count, req.dtype, sum));
      }
      QCCL_CHECK(finish_reduction(ctx, sum, req));
    }
    // Ring-allreduce accounting: 2 (N-1)/N of the buffer leaves each rank.
    ctx.counters.wire_bytes += 2 * (n - 1) * bytes / n;
    return qcclSuccess;
  }
};

}  // namespace

bool goes_uncompressed(const Config& config, int nranks, const CollectiveRequest& req) {
  return !req.compress || config.method == Method::kNone ||
         (nranks == 1 && !config.compress_one_rank) || req.bytes() < config.min_compress_bytes;
}

std::unique_ptr<CollectiveAlgorithm> make_passthrough() {
  return std::make_unique<Passthrough>();
}

}  // namespace qccl
