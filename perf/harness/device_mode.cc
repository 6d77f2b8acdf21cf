// GPU mode of the benchmark harness (-g, execution_mode.h): the one file of
// perf/harness that calls CUDA. In a build without CUDA or NCCL it compiles
// to make_device_mode() saying so.
#include <mpi.h>

#include <cstdio>
#include <string>

#include "harness/execution_mode.h"
#ifdef QCCL_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace qccl::perf {
namespace {

#if defined(QCCL_HAVE_CUDA) && defined(QCCL_HAVE_NCCL)

// This rank's index among the ranks of its node: its GPU.
int local_rank() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int rank = 0;
  MPI_Comm_rank(node, &rank);
  MPI_Comm_free(&node);
  return rank;
}

std::string cuda_text(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")";
}

bool cuda_ok(cudaError_t e, const char* call) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "%s failed: %s\n", call, cuda_text(e).c_str());
  return false;
}

class DeviceMode final : public ExecutionMode {
 public:
  ~DeviceMode() override {
    if (start_ != nullptr) cudaEventDestroy(start_);
    if (stop_ != nullptr) cudaEventDestroy(stop_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  // The stream and the two timing events on the current device.
  bool create(std::string* why) {
    cudaError_t e = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaEventCreate(&start_);
    if (e == cudaSuccess) e = cudaEventCreate(&stop_);
    if (e != cudaSuccess) *why = "cannot create a CUDA stream and events: " + cuda_text(e);
    return e == cudaSuccess;
  }

  const char* describe() const override {
    return "device buffers, GPU = local rank, communicators over NCCL";
  }
  bool host_buffers() const override { return false; }

  void* allocate(size_t bytes) override {
    void* p = nullptr;
    if (!cuda_ok(cudaMalloc(&p, bytes == 0 ? 4 : bytes), "cudaMalloc")) return nullptr;
    return p;
  }
  void release(void* p) override { cudaFree(p); }

  // Both after the stream's work (the collective that wrote `src`).
  bool copy_in(void* dst, const void* host, size_t bytes) override {
    return cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize") &&
           cuda_ok(cudaMemcpy(dst, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D");
  }
  bool copy_out(void* host, const void* src, size_t bytes) override {
    return cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize") &&
           cuda_ok(cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
  }

  void* stream() const override { return stream_; }

  // NCCL-style bootstrap: the id from rank 0, everyone's qcclCommInitRank.
  qcclResult_t init_comm(const qcclConfig_t* config, qcclComm_t* out) override {
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    qcclUniqueId id{};
    int got = qcclSuccess;
    if (rank == 0) got = qcclGetUniqueId(&id);
    MPI_Bcast(&got, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (got != qcclSuccess) return static_cast<qcclResult_t>(got);
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    return qcclCommInitRank(out, nranks, id, rank, config);
  }

  // cudaEvents around the calls on the stream, after the previous work has
  // drained and every rank has arrived.
  bool time_calls(int iters, const std::function<bool()>& call, double* us) override {
    if (!cuda_ok(cudaStreamSynchronize(stream_), "cudaStreamSynchronize")) return false;
    MPI_Barrier(MPI_COMM_WORLD);
    if (!cuda_ok(cudaEventRecord(start_, stream_), "cudaEventRecord")) return false;
    for (int i = 0; i < iters; ++i)
      if (!call()) return false;
    float ms = 0;
    if (!cuda_ok(cudaEventRecord(stop_, stream_), "cudaEventRecord") ||
        !cuda_ok(cudaEventSynchronize(stop_), "cudaEventSynchronize") ||
        !cuda_ok(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime"))
      return false;
    *us = 1e3 * ms / iters;
    return true;
  }

 private:
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

// This rank's GPU, selected, with its stream and events; null and *why
// when there is none.
std::unique_ptr<ExecutionMode> open_local_gpu(std::string* why) {
  int devices = 0;
  const cudaError_t e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess || devices == 0) {
    *why = "no CUDA device: " +
           (e != cudaSuccess ? cuda_text(e) : std::string("cudaGetDeviceCount reports 0"));
    cudaGetLastError();
    return nullptr;
  }
  const int local = local_rank();
  if (local >= devices) {
    *why = "this rank is rank " + std::to_string(local) + " on its node, which has " +
           std::to_string(devices) + " GPU(s): GPU mode needs one GPU per rank";
    return nullptr;
  }
  const cudaError_t set = cudaSetDevice(local);
  if (set != cudaSuccess) {
    *why = "cudaSetDevice(" + std::to_string(local) + ") failed: " + cuda_text(set);
    return nullptr;
  }
  auto mode = std::make_unique<DeviceMode>();
  if (!mode->create(why)) return nullptr;
  return mode;
}

#else

std::unique_ptr<ExecutionMode> open_local_gpu(std::string* why) {
#ifndef QCCL_HAVE_CUDA
  *why =
      "this qccl was built without CUDA (configure with -DQCCL_WITH_CUDA=ON where nvcc is found)";
#else
  *why = "this qccl was built without NCCL (libnccl was not found at configure time)";
#endif
  return nullptr;
}

#endif

}  // namespace

std::unique_ptr<ExecutionMode> make_device_mode(std::string* why) {
  std::unique_ptr<ExecutionMode> mode = open_local_gpu(why);
  // Collective: a rank without a GPU must not leave the others waiting in
  // qcclCommInitRank.
  int ok = mode != nullptr, all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (all_ok) return mode;
  if (ok) *why = "another rank has no GPU for GPU mode (see its message)";
  return nullptr;
}

}  // namespace qccl::perf
