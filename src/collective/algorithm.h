// Collective algorithms as objects chosen at run time (Horovod's Enabled()
// pattern, docs/style.md "From Horovod"): the first candidate in priority
// order whose enabled() accepts the request runs it. Order: Passthrough,
// Allgather, ScatterReduceAllgather (docs/design.md §6; the `auto` rule is
// in choose_compressed_algo, documented in docs/collectives.md). Each is
// written once against the Codec face and the Transport, so it serves host
// and device buffers alike (docs/architecture.md "One collective path").
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "collective/collective_context.h"

namespace qccl {

enum class CollectiveKind : uint8_t { kAllReduce = 1, kAllGather = 2 };

// Elements [offset, offset + count) of an allreduce's input that hold zeros
// and no caller data: the engine's padding between fused tensors
// (docs/engine.md "Fusion"). They travel like any element, but they are
// not input bytes in the counters, not coordinates of the adaptive
// statistics, and `sra` sums them to exact zeros before its second
// quantisation.
struct ZeroRun {
  uint64_t offset = 0;
  uint64_t count = 0;
};

struct CollectiveRequest {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  const void* send = nullptr;
  // allreduce: count elements; allgather: N·count elements, rank-major.
  void* recv = nullptr;
  uint64_t count = 0;  // elements per rank
  DataType dtype = DataType::kFloat32;
  bool average = false;  // allreduce only
  // false: uncompressed whatever the size (the engine's force-uncompressed
  // tensors).
  bool compress = true;
  // Allreduce, compressed: also this rank's own quantised input Q(x), as
  // float32 in the call's memory (error feedback keeps x - Q(x)). Left
  // untouched when the call goes uncompressed.
  float* own_decoded = nullptr;
  // Allreduce: padding inside the buffer (sorted, disjoint).
  std::vector<ZeroRun> padding;

  uint64_t bytes() const { return count * dtype_size(dtype); }  // one rank's buffer
  // The caller's data in it: bytes() less the padding.
  uint64_t input_bytes() const {
    uint64_t pad = 0;
    for (const ZeroRun& z : padding) pad += z.count;
    return (count - pad) * dtype_size(dtype);
  }
};

class CollectiveAlgorithm {
 public:
  virtual ~CollectiveAlgorithm() = default;
  virtual const char* name() const = 0;
  virtual bool enabled(const CollectiveContext& ctx, const CollectiveRequest& req) const = 0;
  virtual Result execute(CollectiveContext& ctx, const CollectiveRequest& req) = 0;
};

// The passthrough rule, in one place: whether `req` goes uncompressed —
// asked to, method none, a single rank (nothing to send; unless
// QCCL_COMPRESS_ONE_RANK), or fewer than QCCL_MIN_COMPRESS_BYTES per rank.
bool goes_uncompressed(const Config& config, int nranks, const CollectiveRequest& req);

// QCCL_ALGO, with `auto` resolved from the rank count and the size.
Algo choose_compressed_algo(const Config& config, int nranks, uint64_t count);

std::unique_ptr<CollectiveAlgorithm> make_passthrough();
std::unique_ptr<CollectiveAlgorithm> make_allgather_algorithm();
std::unique_ptr<CollectiveAlgorithm> make_scatter_reduce_allgather();

// The candidates in priority order.
std::vector<std::unique_ptr<CollectiveAlgorithm>> make_algorithms();

}  // namespace qccl
