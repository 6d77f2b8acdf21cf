// The call agreement (collective/call_agreement.h): a call that differs
// between ranks in kind, count, dtype, op, method or call number is
// qcclInvalidUsage on every rank, naming the field and the rank, before any
// payload moves. Ranks are threads over the in-process fake transport.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fake_transport.h"
#include "qccl/qccl.h"

namespace {

using qccl::fake::FakeRank;
using qccl::fake::FakeWorld;

struct Mismatch {
  const char* name;
  const char* fragment;  // expected in the message on every rank
};

class CallAgreement : public ::testing::TestWithParam<Mismatch> {};

INSTANTIATE_TEST_SUITE_P(Fields, CallAgreement,
                         ::testing::Values(Mismatch{"kind", "collective differs between ranks"},
                                           Mismatch{"count", "count differs between ranks"},
                                           Mismatch{"dtype", "datatype differs between ranks"},
                                           Mismatch{"op", "reduction op differs between ranks"}),
                         [](const ::testing::TestParamInfo<Mismatch>& i) { return i.param.name; });

TEST_P(CallAgreement, EveryRankFailsNamingTheDifference) {
  const Mismatch m = GetParam();
  constexpr int kRanks = 2;
  FakeWorld world(kRanks);
  std::vector<qcclResult_t> results(kRanks);
  std::vector<std::string> messages(kRanks);
  qccl::fake::run_ranks(kRanks, [&](int me) {
    auto* ctx = new FakeRank(&world, me);
    const qcclTransportOps_t ops = qccl::fake::fake_ops(ctx);
    qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
    config.minCompressBytes = "0";
    qcclComm_t comm = nullptr;
    ASSERT_EQ(qcclCommInitTransport(&comm, &ops, &config), qcclSuccess);
    std::vector<float> buf(4096, 1.0f), out(2 * 4096);
    const bool odd = me == 1;
    qcclResult_t r = qcclSuccess;
    const std::string name = m.name;
    if (name == "kind") {
      r = odd ? qcclAllGather(buf.data(), out.data(), 4096, qcclFloat32, comm, nullptr)
              : qcclAllReduce(buf.data(), buf.data(), 4096, qcclFloat32, qcclSum, comm, nullptr);
    } else if (name == "count") {
      r = qcclAllReduce(buf.data(), buf.data(), odd ? 4000 : 4096, qcclFloat32, qcclSum, comm,
                        nullptr);
    } else if (name == "dtype") {
      r = qcclAllReduce(buf.data(), buf.data(), 2048, odd ? qcclFloat16 : qcclFloat32, qcclSum,
                        comm, nullptr);
    } else if (name == "op") {
      r = qcclAllReduce(buf.data(), buf.data(), 4096, qcclFloat32, odd ? qcclAvg : qcclSum, comm,
                        nullptr);
    }
    results[me] = r;
    messages[me] = qcclGetLastError(comm);
    EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
  });
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(results[r], qcclInvalidUsage) << "rank " << r;
    EXPECT_NE(messages[r].find(m.fragment), std::string::npos) << messages[r];
    EXPECT_NE(messages[r].find("rank"), std::string::npos) << messages[r];
  }
}

}  // namespace
