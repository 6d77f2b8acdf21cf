// Entry points of the collective layer, called by api/ after argument checks.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "collective/allreduce_algorithm.h"
#include "collective/call_agreement.h"

namespace qccl {

class Collectives {
 public:
  Collectives(const Config& config, Transport& transport, Adapter& adapter)
      : ctx_(config, transport, adapter), algorithms_(make_allreduce_algorithms()) {}

  // Agrees on the call with the other ranks, then runs the first enabled
  // algorithm. count == 0 is a no-op (no communication).
  Result allreduce(const AllreduceRequest& req);
  // recv holds N·count elements, rank-major; compressed like allreduce's
  // `allgather` algorithm, each slot decoded from its rank's payload.
  Result allgather(const void* send, void* recv, uint64_t count, DataType dtype);

  // The call agreement and bookkeeping of allreduce()/allgather() around
  // `body`, which does the work (the device-buffer path,
  // device_collectives.h). For kAllGather, req.send/recv/count/dtype are
  // allgather's and req.average is false.
  Result run_agreed(CollectiveKind kind, const AllreduceRequest& req,
                    const std::function<Result(CollectiveContext&)>& body);

  void mark_step();
  void set_learning_rate(double lr) { ctx_.learning_rate = lr; }
  const CollectiveContext& context() const { return ctx_; }

 private:
  void end_call();
  Result gather_agreed(const void* send, void* recv, uint64_t count, DataType dtype);

  CollectiveContext ctx_;
  std::vector<std::unique_ptr<AllreduceAlgorithm>> algorithms_;
};

}  // namespace qccl
