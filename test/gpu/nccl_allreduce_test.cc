// End-to-end qcclAllReduce on device buffers over NCCL (issue 5): one
// thread and one GPU per rank, communicators from qcclGetUniqueId +
// qcclCommInitRank. Parametrised by rank count; NCCL refuses two ranks on
// one GPU, so N ranks need N GPUs and the test skips when there are fewer.
//
// The reference is the CPU path on the same communicator: the same call on
// host buffers (CPU encode, NCCL allgather of the payloads, CPU decode in
// rank order). Both calls run at the same step (qcclCommMarkStep freezes the
// step counter between marks), so the draws are the same and the GPU result
// must equal the CPU result bit for bit (docs/design.md §5, promise 2).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gpu_test_util.h"
#include "qccl/qccl.h"

namespace qccl::gpu_test {
namespace {

int DeviceCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
  cudaGetLastError();
  return n;
}

struct RankOutcome {
  std::string error;                  // empty when every call succeeded
  std::vector<unsigned char> device;  // device-path result
  std::vector<unsigned char> host;    // CPU-path result on the same communicator
  std::vector<unsigned char> input;
};

// Runs on its own thread: rank `rank` of `nranks` on GPU `rank`.
void RunRank(int rank, int nranks, qcclUniqueId id, const char* method, qcclRedOp_t op,
             DataType dtype, size_t count, RankOutcome* out) {
  auto failed = [&](const char* what, qcclResult_t r) {
    out->error =
        std::string(what) + ": " + qcclGetErrorString(r) + ": " + qcclGetLastError(nullptr);
  };
  if (cudaSetDevice(rank) != cudaSuccess) return void(out->error = "cudaSetDevice failed");
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.method = method;
  config.minCompressBytes = "0";
  config.algo = "allgather";  // the device path runs `allgather` only (docs/gpu.md)
  qcclComm_t comm = nullptr;
  qcclResult_t r = qcclCommInitRank(&comm, nranks, id, rank, &config);
  if (r != qcclSuccess) return failed("qcclCommInitRank", r);
  qcclCommMarkStep(comm);  // both calls below run at the same step

  const std::vector<float> values = GaussianValues(count, 1000 + rank);
  out->input = AsDtype(values, dtype);
  const size_t bytes = out->input.size();
  const auto type = static_cast<qcclDataType_t>(dtype);
  {
    DeviceBuffer send(bytes), recv(bytes);
    cudaStream_t stream = nullptr;
    cudaStreamCreate(&stream);
    cudaMemcpy(send.get(), out->input.data(), bytes, cudaMemcpyHostToDevice);
    r = qcclAllReduce(send.get(), recv.get(), count, type, op, comm, stream);
    if (r == qcclSuccess && cudaStreamSynchronize(stream) == cudaSuccess)
      out->device = recv.download(bytes);
    cudaStreamDestroy(stream);
  }
  if (r != qcclSuccess) {
    failed("qcclAllReduce (device)", r);
  } else {
    out->host.resize(bytes);
    r = qcclAllReduce(out->input.data(), out->host.data(), count, type, op, comm, nullptr);
    if (r != qcclSuccess) failed("qcclAllReduce (host)", r);
  }
  qcclCommDestroy(comm);
}

using Params = std::tuple<int /*ranks*/, const char* /*method*/, qcclRedOp_t, DataType>;

class NcclAllReduce : public ::testing::TestWithParam<Params> {};

TEST_P(NcclAllReduce, DeviceResultEqualsCpuPathBitForBit) {
  QCCL_REQUIRE_CUDA_DEVICE();
  QCCL_REQUIRE_NCCL();
  const auto [nranks, method, op, dtype] = GetParam();
  // Not a "no GPU" skip: QCCL_TEST_REQUIRE_GPU leaves it a skip, so a
  // one-GPU machine passes with the multi-rank cases skipped.
  if (DeviceCount() < nranks)
    GTEST_SKIP() << nranks << " ranks need " << nranks << " GPUs, found " << DeviceCount();
  qcclUniqueId id;
  if (qcclGetUniqueId(&id) != qcclSuccess) {
    const std::string error = qcclGetLastError(nullptr);
    QCCL_SKIP_IF_NCCL_MISSING(error);
    FAIL() << "qcclGetUniqueId: " << error;
  }
  const size_t count = 100003;  // ragged: not a multiple of the bucket or a warp
  std::vector<RankOutcome> outcomes(nranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back(RunRank, r, nranks, id, method, op, dtype, count, &outcomes[r]);
  for (auto& t : threads) t.join();
  for (int r = 0; r < nranks; ++r) QCCL_SKIP_IF_NCCL_MISSING(outcomes[r].error);
  for (int r = 0; r < nranks; ++r) {
    ASSERT_EQ(outcomes[r].error, "") << "rank " << r;
    ASSERT_EQ(outcomes[r].device.size(), outcomes[r].host.size());
    EXPECT_EQ(
        std::memcmp(outcomes[r].device.data(), outcomes[r].host.data(), outcomes[r].host.size()), 0)
        << "rank " << r << ": device and CPU paths differ";
    // Every rank holds the same bytes (docs/design.md §5.1).
    EXPECT_EQ(outcomes[r].device, outcomes[0].device) << "rank " << r;
  }
  // One rank: nothing is sent, the sum is the input, bit for bit.
  if (nranks == 1) {
    EXPECT_EQ(outcomes[0].device, outcomes[0].input);
  }
}

std::string ParamName(const ::testing::TestParamInfo<Params>& info) {
  const auto [nranks, method, op, dtype] = info.param;
  return std::to_string(nranks) + "ranks_" + method + (op == qcclAvg ? "_avg_" : "_sum_") +
         dtype_name(dtype);
}

INSTANTIATE_TEST_SUITE_P(
    Ranks, NcclAllReduce,
    ::testing::Combine(::testing::Values(1, 2, 4, 8), ::testing::Values("none", "qsgd"),
                       ::testing::Values(qcclSum, qcclAvg),
                       ::testing::Values(DataType::kFloat32, DataType::kBfloat16)),
    ParamName);

}  // namespace
}  // namespace qccl::gpu_test
