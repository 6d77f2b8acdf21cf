// Allreduce algorithms as objects chosen at run time (Horovod's Enabled()
// pattern, STYLE.md): the first candidate in priority order whose enabled()
// accepts the request runs it. Order: Passthrough, Allgather,
// ScatterReduceAllgather (DESIGN.md §6; the `auto` rule is in
// choose_compressed_algo, documented in docs/collectives.md).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "collective/collective_context.h"

namespace qccl {

struct AllreduceRequest {
  const void* send = nullptr;
  void* recv = nullptr;
  uint64_t count = 0;
  DataType dtype = DataType::kFloat32;
  bool average = false;

  uint64_t bytes() const { return count * dtype_size(dtype); }
};

class AllreduceAlgorithm {
 public:
  virtual ~AllreduceAlgorithm() = default;
  virtual const char* name() const = 0;
  virtual bool enabled(const CollectiveContext& ctx, const AllreduceRequest& req) const = 0;
  virtual Result execute(CollectiveContext& ctx, const AllreduceRequest& req) = 0;
};

// Whether `req` goes uncompressed: method none, a single rank (nothing to
// send), or fewer than QCCL_MIN_COMPRESS_BYTES.
bool is_passthrough(const Config& config, int nranks, uint64_t bytes);

// QCCL_ALGO, with `auto` resolved from the rank count and the size.
Algo choose_compressed_algo(const Config& config, int nranks, uint64_t count);

std::unique_ptr<AllreduceAlgorithm> make_passthrough();
std::unique_ptr<AllreduceAlgorithm> make_allgather_allreduce();
std::unique_ptr<AllreduceAlgorithm> make_scatter_reduce_allgather();

// The candidates in priority order.
std::vector<std::unique_ptr<AllreduceAlgorithm>> make_allreduce_algorithms();

}  // namespace qccl
