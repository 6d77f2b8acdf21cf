// Device-buffer collectives (device_collectives.h). CUDA builds only.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "codec/cuda_codec.h"
#include "collective/compressed_step.h"
#include "collective/device_collectives.h"
#include "cuda_check.cuh"
#include "scale_kernel.cuh"
#ifdef QCCL_HAVE_NCCL
#include "transport/nccl_transport.h"
#endif

namespace qccl {
namespace {

// A device (or pinned host) allocation that only grows. Freed after the
// stream that may still use it has drained.
struct Allocation {
  void* ptr = nullptr;
  uint64_t bytes = 0;
  bool pinned = false;

  ~Allocation() { release(); }
  void release() {
    if (ptr != nullptr) pinned ? cudaFreeHost(ptr) : cudaFree(ptr);
    ptr = nullptr, bytes = 0;
  }
  template <typename T = unsigned char>
  T* as() const {
    return static_cast<T*>(ptr);
  }
};

Result grow(Allocation* a, uint64_t bytes, cudaStream_t stream, const char* what) {
  if (a->bytes >= bytes) return qcclSuccess;
  const uint64_t target = std::max(bytes, 2 * a->bytes);
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream));
  a->release();
  const cudaError_t e = a->pinned ? cudaMallocHost(&a->ptr, target) : cudaMalloc(&a->ptr, target);
  if (e != cudaSuccess) {
    a->ptr = nullptr;
    return fail(qcclUnhandledCudaError, "device collectives: cannot allocate {} bytes for {}: {}",
                target, what, cudaGetErrorString(e));
  }
  a->bytes = target;
  return qcclSuccess;
}

}  // namespace

struct DeviceState {
  NcclTransport* nccl = nullptr;
  CudaCodec codec;
  Allocation encoded, received, sum;                                        // device
  Allocation staged_send{nullptr, 0, true}, staged_recv{nullptr, 0, true};  // pinned host
  std::vector<unsigned char> norm_input;  // host copy for adapters that need the global norm
  std::vector<uint64_t> sizes, offsets;
};

Result create_device_state(NcclTransport* nccl, std::shared_ptr<DeviceState>* out) {
  auto state = std::make_shared<DeviceState>();
  state->nccl = nccl;
  *out = std::move(state);
  return qcclSuccess;
}

namespace {

// MPI (or any host transport): copy in, the unchanged CPU path, copy out.
// Completes before it returns.
Result staged_call(DeviceState& d, const void* send, uint64_t send_bytes, void* recv,
                   uint64_t recv_bytes, cudaStream_t stream,
                   const std::function<Result(const void*, void*)>& host_call) {
  QCCL_CHECK(grow(&d.staged_send, send_bytes, stream, "staged send buffer"));
  QCCL_CHECK(grow(&d.staged_recv, recv_bytes, stream, "staged receive buffer"));
  QCCL_CUDA_CHECK(
      cudaMemcpyAsync(d.staged_send.ptr, send, send_bytes, cudaMemcpyDeviceToHost, stream));
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream));
  QCCL_CHECK(host_call(d.staged_send.ptr, d.staged_recv.ptr));
  QCCL_CUDA_CHECK(
      cudaMemcpyAsync(recv, d.staged_recv.ptr, recv_bytes, cudaMemcpyHostToDevice, stream));
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream));
  return qcclSuccess;
}

// Adapter step 1 on device data: the global norm (DQSGD) is taken on a host
// copy, an extra device-to-host copy on the steps that need it.
Result plan_device_encode(CollectiveContext& ctx, DeviceState& d, const void* send, uint64_t count,
                          DataType dtype, cudaStream_t stream, PlannedEncode* planned) {
  const void* norm_source = send;
  if (ctx.adapter.needs_global_norm()) {
    const uint64_t bytes = count * dtype_size(dtype);
    d.norm_input.resize(bytes);
    QCCL_CUDA_CHECK(
        cudaMemcpyAsync(d.norm_input.data(), send, bytes, cudaMemcpyDeviceToHost, stream));
    QCCL_CUDA_CHECK(cudaStreamSynchronize(stream));
    norm_source = d.norm_input.data();
  }
  return plan_encode(ctx, norm_source, count, dtype, planned);
}

// What encode_and_gather leaves in d.received: rank r's payload at
// r * stride, each laid out as `expected` (this rank's own header: every rank
// of the agreed call encodes the same count with the same method, bits and
// bucket size, so the payloads differ only in data, table values and draw
// key; the decode kernel checks that on the device).
struct GatheredPayloads {
  PayloadHeader expected;
  uint64_t stride;
};

// Encode `send` and allgather the payloads into d.received.
Result encode_and_gather(CollectiveContext& ctx, DeviceState& d, const void* send, uint64_t count,
                         DataType dtype, cudaStream_t stream, PlannedEncode* planned,
                         GatheredPayloads* gathered) {
  const int n = ctx.transport.size();
  QCCL_CHECK(plan_device_encode(ctx, d, send, count, dtype, stream, planned));
  QCCL_CHECK(make_payload_header(planned->spec, count, &gathered->expected));
  const uint64_t bytes = gathered->expected.total_bytes;
  // Payloads are whole 4-byte words (payload_format.h); keep every slot
  // 4-byte aligned for the decode kernel all the same.
  const uint64_t stride = (bytes + 3) / 4 * 4;
  gathered->stride = stride;
  QCCL_CHECK(grow(&d.encoded, stride, stream, "encoded payload"));
  QCCL_CHECK(grow(&d.received, n * stride, stream, "received payloads"));
  QCCL_CHECK(d.codec.encode_device(send, dtype, count, planned->spec, d.encoded.ptr, stride, stream,
                                   planned->stats_sink()));
  d.sizes.assign(n, stride);
  d.offsets.resize(n);
  for (int r = 0; r < n; ++r) d.offsets[r] = r * stride;
  return ctx.transport.allgatherv(d.encoded.ptr, stride, d.received.ptr, d.sizes.data(),
                                  d.offsets.data());
}

// avg: one float32 multiply by 1/N, the CPU's finish_reduction; then the
// cast into recv unless `sum` already is recv.
Result finish_device_reduction(DeviceState& d, float* sum, uint64_t count, bool average, int n,
                               DataType dtype, void* recv, cudaStream_t stream) {
  if (average) QCCL_CHECK(kernels::launch_scale(sum, count, 1.0f / static_cast<float>(n), stream));
  if (static_cast<void*>(sum) != recv)
    QCCL_CHECK(d.codec.cast_from_float_device(sum, count, dtype, recv, stream));
  return qcclSuccess;
}

Result nccl_allreduce(CollectiveContext& ctx, DeviceState& d, const AllreduceRequest& req,
                      cudaStream_t stream) {
  const int n = ctx.transport.size();
  if (is_passthrough(ctx.config, n, req.bytes())) {
    log_choice_once(ctx, "allreduce (device)", "passthrough", req.bytes());
    QCCL_CHECK(ctx.transport.allreduce_passthrough(req.send, req.recv, req.count, req.dtype));
    if (req.average) {
      float* sum = static_cast<float*>(req.recv);
      if (req.dtype != DataType::kFloat32) {
        QCCL_CHECK(grow(&d.sum, req.count * sizeof(float), stream, "float32 accumulator"));
        sum = d.sum.as<float>();
        QCCL_CHECK(d.codec.cast_to_float_device(req.recv, req.count, req.dtype, sum, stream));
      }
      QCCL_CHECK(finish_device_reduction(d, sum, req.count, true, n, req.dtype, req.recv, stream));
    }
    ctx.counters.wire_bytes += 2 * (n - 1) * req.bytes() / n;
    return qcclSuccess;
  }
  // The `allgather` algorithm on the GPU (`sra` is CPU-only for now).
  log_choice_once(ctx, "allreduce (device)", "allgather", req.bytes());
  PlannedEncode planned;
  GatheredPayloads gathered;
  QCCL_CHECK(
      encode_and_gather(ctx, d, req.send, req.count, req.dtype, stream, &planned, &gathered));
  // The send buffer is encoded (earlier on the stream), so a float32 recv,
  // even in place, can be the accumulator.
  float* sum = static_cast<float*>(req.recv);
  if (req.dtype != DataType::kFloat32) {
    QCCL_CHECK(grow(&d.sum, req.count * sizeof(float), stream, "float32 accumulator"));
    sum = d.sum.as<float>();
  }
  QCCL_CHECK(d.codec.decode_accumulate_uniform_device(d.received.ptr, gathered.stride, n,
                                                      gathered.expected, sum, stream,
                                                      /*accumulate=*/false));
  QCCL_CHECK(submit_statistics(ctx, planned));
  QCCL_CHECK(
      finish_device_reduction(d, sum, req.count, req.average, n, req.dtype, req.recv, stream));
  const uint64_t bytes = gathered.expected.total_bytes;
  count_compressed_call(ctx, planned, req.bytes(), bytes, (n - 1) * bytes);
  return qcclSuccess;
}

Result nccl_allgather(CollectiveContext& ctx, DeviceState& d, const void* send, void* recv,
                      uint64_t count, DataType dtype, cudaStream_t stream) {
  const int n = ctx.transport.size();
  const uint64_t slot = count * dtype_size(dtype);
  unsigned char* out = static_cast<unsigned char*>(recv);
  if (is_passthrough(ctx.config, n, slot)) {
    log_choice_once(ctx, "allgather (device)", "passthrough", slot);
    // ncclAllGather allows in place (send == recv + rank * slot).
    d.sizes.assign(n, slot);
    d.offsets.resize(n);
    for (int r = 0; r < n; ++r) d.offsets[r] = r * slot;
    QCCL_CHECK(ctx.transport.allgatherv(send, slot, recv, d.sizes.data(), d.offsets.data()));
    ctx.counters.wire_bytes += (n - 1) * slot;
    return qcclSuccess;
  }
  log_choice_once(ctx, "allgather (device)", "allgather", slot);
  PlannedEncode planned;
  GatheredPayloads gathered;
  QCCL_CHECK(encode_and_gather(ctx, d, send, count, dtype, stream, &planned, &gathered));
  if (dtype != DataType::kFloat32)
    QCCL_CHECK(grow(&d.sum, count * sizeof(float), stream, "float32 decode buffer"));
  for (int r = 0; r < n; ++r) {
    float* decoded =
        dtype == DataType::kFloat32 ? reinterpret_cast<float*>(out + r * slot) : d.sum.as<float>();
    QCCL_CHECK(d.codec.decode_accumulate_uniform_device(d.received.as() + r * gathered.stride,
                                                        gathered.stride, 1, gathered.expected,
                                                        decoded, stream, /*accumulate=*/false));
    if (dtype != DataType::kFloat32)
      QCCL_CHECK(d.codec.cast_from_float_device(decoded, count, dtype, out + r * slot, stream));
  }
  QCCL_CHECK(submit_statistics(ctx, planned));
  const uint64_t bytes = gathered.expected.total_bytes;
  count_compressed_call(ctx, planned, slot, bytes, (n - 1) * bytes);
  return qcclSuccess;
}

#ifdef QCCL_HAVE_NCCL
// Points the NCCL transport at the caller's stream for one call, then back
// at the default stream: host-buffer calls later must not use a stream the
// caller may have destroyed meanwhile.
class StreamScope {
 public:
  StreamScope(NcclTransport* nccl, cudaStream_t stream) : nccl_(nccl) { nccl_->set_stream(stream); }
  ~StreamScope() { nccl_->set_stream(nullptr); }

 private:
  NcclTransport* nccl_;
};
#endif

}  // namespace

Result device_allreduce(Collectives& collectives, DeviceState& d, const AllreduceRequest& req,
                        cudaStream_t stream) {
  if (d.nccl == nullptr) {
    return staged_call(d, req.send, req.bytes(), req.recv, req.bytes(), stream,
                       [&](const void* send, void* recv) {
                         AllreduceRequest host = req;
                         host.send = send;
                         host.recv = recv;
                         return collectives.allreduce(host);
                       });
  }
#ifdef QCCL_HAVE_NCCL
  const StreamScope scope(d.nccl, stream);
  return collectives.run_agreed(CollectiveKind::kAllReduce, req, [&](CollectiveContext& ctx) {
    return nccl_allreduce(ctx, d, req, stream);
  });
#else
  return fail(qcclInternalError, "an NCCL transport in a build without NCCL");
#endif
}

Result device_allgather(Collectives& collectives, DeviceState& d, const void* send, void* recv,
                        uint64_t count, DataType dtype, cudaStream_t stream) {
  const uint64_t slot = count * dtype_size(dtype);
  if (d.nccl == nullptr) {
    const uint64_t n = static_cast<uint64_t>(collectives.context().transport.size());
    return staged_call(d, send, slot, recv, n * slot, stream, [&](const void* s, void* r) {
      return collectives.allgather(s, r, count, dtype);
    });
  }
#ifdef QCCL_HAVE_NCCL
  const StreamScope scope(d.nccl, stream);
  AllreduceRequest req;
  req.send = send;
  req.recv = recv;
  req.count = count;
  req.dtype = dtype;
  return collectives.run_agreed(CollectiveKind::kAllGather, req, [&](CollectiveContext& ctx) {
    return nccl_allgather(ctx, d, send, recv, count, dtype, stream);
  });
#else
  return fail(qcclInternalError, "an NCCL transport in a build without NCCL");
#endif
}

}  // namespace qccl
