// qcclEngineStart on a communicator whose transport cannot be duplicated
// (Transport::duplicate's default): the engine needs its own transport
// (docs/engine.md "Its own communicator"), so the start fails with a clear
// message and leaves the communicator usable and destroyable.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "api/comm.h"
#include "qccl/qccl.h"

namespace qccl {
namespace {

// One rank, no duplicate(): every collective is a local copy.
class SingleRankTransport final : public Transport {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t*,
                    const uint64_t* recv_offsets) override {
    if (send_bytes > 0)
      std::memmove(static_cast<unsigned char*>(recv) + recv_offsets[0], send, send_bytes);
    return qcclSuccess;
  }
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t*, const uint64_t* recv_offsets) override {
    if (send_bytes[0] > 0)
      std::memmove(static_cast<unsigned char*>(recv) + recv_offsets[0],
                   static_cast<const unsigned char*>(send) + send_offsets[0], send_bytes[0]);
    return qcclSuccess;
  }
  Result allreduce_sum(double*, size_t) override { return qcclSuccess; }
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override {
    if (send != recv && count > 0) std::memmove(recv, send, count * dtype_size(dtype));
    return qcclSuccess;
  }
  Result barrier() override { return qcclSuccess; }
};

qcclComm_t single_rank_comm() {
  auto comm = std::make_unique<qcclComm>();
  const Result resolved = resolve_config(nullptr, &comm->config);
  qcclComm_t out = nullptr;
  EXPECT_EQ(finish_comm_init(std::move(comm), resolved, thread_last_error(),
                             std::make_unique<SingleRankTransport>(), "test", &out),
            qcclSuccess)
      << thread_last_error();
  return out;
}

TEST(EngineStart, TransportWithoutDuplicateFailsClearlyAndLeavesTheCommUsable) {
  qcclComm_t comm = single_rank_comm();
  ASSERT_NE(comm, nullptr);
  EXPECT_EQ(qcclEngineStart(comm), qcclInvalidUsage);
  const std::string error = qcclGetLastError(comm);
  EXPECT_NE(error.find("needs its own duplicate of the communicator's transport"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("this transport cannot be duplicated"), std::string::npos) << error;
  // Not left half-started: enqueue and stop say so, direct calls work, and
  // the communicator can be destroyed.
  float x[3] = {1, 2, 3};
  EXPECT_EQ(qcclEnqueueAllReduce(comm, "x", x, 3, qcclFloat32, qcclSum, nullptr, nullptr),
            qcclInvalidUsage);
  EXPECT_NE(std::string(qcclGetLastError(comm)).find("not started"), std::string::npos);
  EXPECT_EQ(qcclEngineStop(comm), qcclInvalidUsage);
  EXPECT_EQ(qcclAllReduce(x, x, 3, qcclFloat32, qcclSum, comm, nullptr), qcclSuccess);
  EXPECT_EQ(x[2], 3.0f);
  EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
}

}  // namespace
}  // namespace qccl
