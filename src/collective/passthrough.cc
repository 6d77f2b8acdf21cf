// Uncompressed allreduce through the transport's own reduction (DESIGN.md
// §6): method none, one rank, or a buffer below QCCL_MIN_COMPRESS_BYTES.
#include "codec/cpu_codec.h"
#include "collective/allreduce_algorithm.h"
#include "collective/compressed_step.h"

namespace qccl {
namespace {

class Passthrough final : public AllreduceAlgorithm {
 public:
  const char* name() const override { return "passthrough"; }

  bool enabled(const CollectiveContext& ctx, const AllreduceRequest& req) const override {
    return is_passthrough(ctx.config, ctx.transport.size(), req.bytes());
  }

  Result execute(CollectiveContext& ctx, const AllreduceRequest& req) override {
    const int n = ctx.transport.size();
    log_choice_once(ctx, "allreduce", name(), req.bytes());
    QCCL_CHECK(ctx.transport.allreduce_passthrough(req.send, req.recv, req.count, req.dtype));
    if (req.average) {
      // Sum exactly as MPI_Allreduce gives it, then one multiply by 1/N.
      const float inv = 1.0f / static_cast<float>(n);
      if (req.dtype == DataType::kFloat32) {
        float* out = static_cast<float*>(req.recv);
        for (uint64_t i = 0; i < req.count; ++i) out[i] *= inv;
      } else {
        float* widened = grow(&ctx.workspace.sum, req.count);
        cast_to_float(req.recv, req.count, req.dtype, widened);
        for (uint64_t i = 0; i < req.count; ++i) widened[i] *= inv;
        cast_from_float(widened, req.count, req.dtype, req.recv);
      }
    }
    // Ring-allreduce accounting: 2 (N-1)/N of the buffer leaves each rank.
    ctx.counters.wire_bytes += 2 * (n - 1) * req.bytes() / n;
    return qcclSuccess;
  }
};

}  // namespace

bool is_passthrough(const Config& config, int nranks, uint64_t bytes) {
  return config.method == Method::kNone || nranks == 1 || bytes < config.min_compress_bytes;
}

std::unique_ptr<AllreduceAlgorithm> make_passthrough() {
  return std::make_unique<Passthrough>();
}

}  // namespace qccl
