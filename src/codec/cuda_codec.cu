// CudaCodec (cuda_codec.h): argument checks, header and table on the host,
// host-side payload validation, the workspace, the statistics read-back, the
// Codec face, and the CUDA device backend (device_backend.h). The kernels are
// in kernels/ (encode_kernel.cuh, decode_kernel.cuh, float_kernels.cuh).
#include <cuda.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "codec/cpu_codec.h"
#include "codec/cuda_codec.h"
#include "codec/device_backend.h"
#include "core/cuda_check.h"
#include "float_kernels.cuh"
#include "kernel_dispatch.cuh"

namespace qccl {

bool cuda_device_available(std::string* why) {
  int devices = 0;
  const cudaError_t error = cudaGetDeviceCount(&devices);
  if (error != cudaSuccess) {
    if (why != nullptr)
      *why = fmt::format("{} ({})", cudaGetErrorName(error), cudaGetErrorString(error));
    cudaGetLastError();  // do not leave the error sticky for the next call
    return false;
  }
  if (devices == 0) {
    if (why != nullptr) *why = "cudaGetDeviceCount reports 0 devices";
    return false;
  }
  return true;
}

namespace {

// The driver API's pointer query, loaded at run time: it classifies a
// pointer without creating a context (the runtime's cudaPointerGetAttributes
// would create one on the current device, so every rank of a node would
// pile a context onto GPU 0 even for host buffers), and a machine without
// libcuda simply has no device memory.
struct DriverPointerQuery {
  using InitFn = CUresult (*)(unsigned);
  using GetAttributeFn = CUresult (*)(void*, CUpointer_attribute, CUdeviceptr);
  GetAttributeFn get_attribute = nullptr;

  DriverPointerQuery() {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return;
    auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
    auto get = reinterpret_cast<GetAttributeFn>(dlsym(lib, "cuPointerGetAttribute"));
    if (init != nullptr && get != nullptr && init(0) == CUDA_SUCCESS) get_attribute = get;
  }
};

const DriverPointerQuery& driver_pointer_query() {
  static const DriverPointerQuery query;
  return query;
}

}  // namespace

bool is_device_pointer(const void* p) {
  const DriverPointerQuery& q = driver_pointer_query();
  if (q.get_attribute == nullptr || p == nullptr) return false;
  unsigned type = 0;
  if (q.get_attribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, reinterpret_cast<CUdeviceptr>(p)) !=
      CUDA_SUCCESS)
    return false;  // not known to CUDA: host memory
  if (type == CU_MEMORYTYPE_DEVICE) return true;
  unsigned managed = 0;
  return q.get_attribute(&managed, CU_POINTER_ATTRIBUTE_IS_MANAGED,
                         reinterpret_cast<CUdeviceptr>(p)) == CUDA_SUCCESS &&
         managed != 0;
}

namespace {

// Bytes of a payload's start that hold its header and largest possible table.
constexpr uint64_t kPrefixBytes = sizeof(PayloadHeader) + 4ull * kernels::kMaxLevels;

// A device or pinned host allocation that only grows.
struct Allocation {
  void* ptr = nullptr;
  size_t bytes = 0;
  bool pinned = false;
};

Result grow(Allocation* a, size_t bytes, bool pinned, const char* what) {
  if (a->bytes >= bytes) return qcclSuccess;
  const size_t target = std::max(bytes, 2 * a->bytes);
  if (a->ptr != nullptr) {
    QCCL_CUDA_CHECK(a->pinned ? cudaFreeHost(a->ptr) : cudaFree(a->ptr));
    a->ptr = nullptr;
    a->bytes = 0;
  }
  const cudaError_t error = pinned ? cudaMallocHost(&a->ptr, target) : cudaMalloc(&a->ptr, target);
  if (error != cudaSuccess) {
    a->ptr = nullptr;
    return fail(qcclUnhandledCudaError, "CUDA codec workspace: cannot allocate {} bytes for {}: {}",
                target, what, cudaGetErrorString(error));
  }
  a->bytes = target;
  a->pinned = pinned;
  return qcclSuccess;
}

void release_allocation(Allocation* a) {
  if (a->ptr == nullptr) return;
  // Destructor path: nothing to report to; the runtime may be shut down.
  if (a->pinned)
    cudaFreeHost(a->ptr);
  else
    cudaFree(a->ptr);
  a->ptr = nullptr;
}

// A buffer the kernels read or write must be device memory (or managed) of
// the current device: host pointers fail here with a message, not in a kernel.
Result check_device_pointer(const void* p, const char* what) {
  cudaPointerAttributes attributes;
  const cudaError_t error = cudaPointerGetAttributes(&attributes, p);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return fail(qcclInvalidArgument, "{} {} is not a CUDA pointer ({})", what, p,
                cudaGetErrorString(error));
  }
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
    return fail(qcclInvalidArgument, "{} {} is not device memory", what, p);
  int device = 0;
  QCCL_CUDA_CHECK(cudaGetDevice(&device));
  if (attributes.type == cudaMemoryTypeDevice && attributes.device != device)
    return fail(qcclInvalidArgument, "{} {} is on device {}, the current device is {}", what, p,
                attributes.device, device);
  return qcclSuccess;
}

}  // namespace

struct CudaCodec::Workspace {
  Allocation bucket_stats;            // device: BucketStats per bucket
  Allocation hist_counts;             // device: kHistBins uint32 per bucket
  Allocation stats_readback;          // pinned: both of the above
  Allocation prefixes;                // pinned: kPrefixBytes per payload
  Allocation sources_host;            // pinned: DecodeSource per payload
  Allocation sources_device;          // device: DecodeSource per payload
  Allocation error_word;              // device: uint32 set by decode kernels
  Allocation error_readback;          // pinned: uint32, a snapshot of error_word
  Allocation poisoned;                // device: uint32, check_headers_kernel's verdict
  Allocation squares;                 // device: partial sums + the sum of squares
  Allocation squares_readback;        // pinned: the sum of squares
  cudaEvent_t decode_done = nullptr;  // the last decode launch (workspace reuse, read-back)

  ~Workspace() {
    if (decode_done != nullptr) cudaEventDestroy(decode_done);
    for (Allocation* a :
         {&bucket_stats, &hist_counts, &stats_readback, &prefixes, &sources_host, &sources_device,
          &error_word, &error_readback, &poisoned, &squares, &squares_readback})
      release_allocation(a);
  }

  // The error word, its pinned snapshot and the decode event, created on
  // the first decode call.
  Result prepare_error_word(cudaStream_t stream) {
    QCCL_CHECK(grow(&error_word, 4, false, "error word"));
    QCCL_CHECK(grow(&error_readback, 4, true, "error word"));
    if (decode_done == nullptr) {
      QCCL_CUDA_CHECK(cudaEventCreateWithFlags(&decode_done, cudaEventDisableTiming));
      QCCL_CUDA_CHECK(cudaMemsetAsync(error_word.ptr, 0, 4, stream));
      *static_cast<uint32_t*>(error_readback.ptr) = 0;
    }
    return qcclSuccess;
  }

  // Errors of earlier launches, once their snapshot has landed. Never waits:
  // a snapshot still in flight is read by a later call (the word only
  // accumulates bits until it is reported).
  Result report_landed_errors(cudaStream_t stream) {
    if (decode_done == nullptr) return qcclSuccess;
    const cudaError_t landed = cudaEventQuery(decode_done);
    if (landed == cudaSuccess) return report_decode_errors(stream);
    if (landed == cudaErrorNotReady) {
      cudaGetLastError();  // "not ready" is not an error; leave nothing behind
      return qcclSuccess;
    }
    return cuda_failure(landed, "cudaEventQuery(decode_done)", __FILE__, __LINE__);
  }

  // Reports (once) the errors in the snapshot, which the caller knows has
  // landed, and clears the word on the device, stream-ordered.
  Result report_decode_errors(cudaStream_t stream) {
    uint32_t* snapshot = static_cast<uint32_t*>(error_readback.ptr);
    const uint32_t bits = *snapshot;
    if (bits == 0) return qcclSuccess;
    *snapshot = 0;
    QCCL_CUDA_CHECK(cudaMemsetAsync(error_word.ptr, 0, 4, stream));
    if (bits & kernels::kErrorHeaderMismatch)
      return fail(qcclCorruptPayload,
                  "payload: an earlier GPU decode met a payload whose header or table checksum "
                  "did not match the agreed layout (its output was set to NaN)");
    return fail(qcclCorruptPayload,
                "payload: an earlier GPU decode met a symbol beyond its level table");
  }
};

CudaCodec::CudaCodec() : workspace_(new Workspace) {}
CudaCodec::~CudaCodec() = default;

Result CudaCodec::encode_device(const void* in, DataType dtype, uint64_t count,
                                const EncodeSpec& spec, void* out_device, uint64_t capacity,
                                cudaStream_t stream, EncodeStats* stats) {
  if (!valid_dtype(static_cast<int>(dtype)))
    return fail(qcclInvalidArgument, "encode: unknown dtype {}", static_cast<int>(dtype));
  if ((in == nullptr && count > 0) || out_device == nullptr)
    return fail(qcclInvalidArgument, "encode: null {} buffer",
                out_device == nullptr ? "output" : "input");
  kernels::EncodeArgs args{};
  QCCL_CHECK(make_payload_header(spec, count, &args.header));
  const uint64_t total = args.header.total_bytes;
  if (capacity < total)
    return fail(qcclInvalidArgument, "encode: output capacity {} bytes < payload size {} bytes",
                capacity, total);
  if (reinterpret_cast<uintptr_t>(out_device) % 4 != 0)
    return fail(qcclInvalidArgument, "encode: output buffer {} is not 4-byte aligned", out_device);
  if (count > 0) QCCL_CHECK(check_device_pointer(in, "encode: input buffer"));
  QCCL_CHECK(check_device_pointer(out_device, "encode: output buffer"));

  args.in = in;
  args.out = static_cast<unsigned char*>(out_device);
  args.count = count;
  args.index_base = spec.index_base;
  args.key = DrawKey{spec.seed, spec.rank, spec.stream, spec.step};
  if (!is_quantizing(spec.method))
    return kernels::launch_encode_cast(args, dtype, spec.method, stream);

  const QuantLayout layout = quant_layout(count, spec.bucket_size, spec.bits, spec.num_levels);
  args.bucket_size = spec.bucket_size;
  args.num_levels = spec.num_levels;
  args.linf = spec.norm == NormKind::kLinf;
  args.norms_offset = layout.norms_offset;
  args.symbols_offset = layout.symbols_offset;
  std::memcpy(args.levels, spec.levels, sizeof(float) * spec.num_levels);
  const uint64_t buckets = num_buckets(count, spec.bucket_size);
  Workspace& ws = *workspace_;
  if (stats != nullptr && buckets > 0) {
    QCCL_CHECK(grow(&ws.bucket_stats, buckets * sizeof(BucketStats), false, "bucket statistics"));
    QCCL_CHECK(grow(&ws.hist_counts, buckets * kHistBins * 4, false, "histograms"));
    QCCL_CHECK(grow(&ws.stats_readback, buckets * (sizeof(BucketStats) + kHistBins * 4), true,
                    "statistics read-back"));
    args.stats = static_cast<BucketStats*>(ws.bucket_stats.ptr);
    args.hist_counts = static_cast<uint32_t*>(ws.hist_counts.ptr);
  }
  QCCL_CHECK(kernels::launch_encode_quantized(args, dtype, spec.bits, stream));
  if (args.stats == nullptr) return qcclSuccess;

  // Statistics are host data for the adaptation thread: read them back.
  auto* host_stats = static_cast<BucketStats*>(ws.stats_readback.ptr);
  auto* host_hist = reinterpret_cast<uint32_t*>(host_stats + buckets);
  QCCL_CUDA_CHECK(cudaMemcpyAsync(host_stats, args.stats, buckets * sizeof(BucketStats),
                                  cudaMemcpyDeviceToHost, stream));
  QCCL_CUDA_CHECK(cudaMemcpyAsync(host_hist, args.hist_counts, buckets * kHistBins * 4,
                                  cudaMemcpyDeviceToHost, stream));
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (uint64_t b = 0; b < buckets; ++b) {
    stats->buckets.push_back(host_stats[b]);
    const float norm = host_stats[b].norm;
    if (!std::isfinite(norm)) continue;  // as the CPU: no histogram for a non-finite bucket
    const double weight = static_cast<double>(norm) * norm;
    for (int i = 0; i < kHistBins; ++i) stats->hist[i] += weight * host_hist[b * kHistBins + i];
  }
  return qcclSuccess;
}

Result CudaCodec::decode_accumulate_device(const void* const* payloads, const uint64_t* sizes,
                                           int n, uint64_t count, float* acc_device,
                                           cudaStream_t stream, bool accumulate) {
  if (n < 0) return fail(qcclInvalidArgument, "decode: payload count must be >= 0, got {}", n);
  if (n == 0) return qcclSuccess;
  if (payloads == nullptr || sizes == nullptr)
    return fail(qcclInvalidArgument, "decode: null payload {} array",
                payloads == nullptr ? "pointer" : "size");
  if (count > 0 && acc_device == nullptr)
    return fail(qcclInvalidArgument, "decode: null output buffer");
  for (int p = 0; p < n; ++p) {
    if (payloads[p] == nullptr) return fail(qcclInvalidArgument, "decode: payload {} is null", p);
    if (reinterpret_cast<uintptr_t>(payloads[p]) % 4 != 0)
      return fail(qcclInvalidArgument, "decode: payload {} at {} is not 4-byte aligned", p,
                  payloads[p]);
    QCCL_CHECK(check_device_pointer(payloads[p], "decode: payload"));
  }
  if (count > 0) QCCL_CHECK(check_device_pointer(acc_device, "decode: output buffer"));

  Workspace& ws = *workspace_;
  QCCL_CHECK(ws.prepare_error_word(stream));
  // The previous decode (perhaps on another stream) has finished with the
  // payload list and has set its error word.
  QCCL_CUDA_CHECK(cudaEventSynchronize(ws.decode_done));
  QCCL_CHECK(grow(&ws.prefixes, n * kPrefixBytes, true, "payload headers"));
  QCCL_CHECK(grow(&ws.sources_host, n * sizeof(kernels::DecodeSource), true, "payload list"));
  QCCL_CHECK(grow(&ws.sources_device, n * sizeof(kernels::DecodeSource), false, "payload list"));

  // Host-side validation: copy each header and table back, then the CPU's
  // validate_payload (which reads only header and table of the prefix).
  auto* prefixes = static_cast<unsigned char*>(ws.prefixes.ptr);
  for (int p = 0; p < n; ++p) {
    const uint64_t bytes = std::min<uint64_t>(sizes[p], kPrefixBytes);
    QCCL_CUDA_CHECK(cudaMemcpyAsync(prefixes + p * kPrefixBytes, payloads[p], bytes,
                                    cudaMemcpyDeviceToHost, stream));
  }
  auto* error_host = static_cast<uint32_t*>(ws.error_readback.ptr);
  QCCL_CUDA_CHECK(
      cudaMemcpyAsync(error_host, ws.error_word.ptr, 4, cudaMemcpyDeviceToHost, stream));
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream));
  QCCL_CHECK(ws.report_decode_errors(stream));
  auto* sources = static_cast<kernels::DecodeSource*>(ws.sources_host.ptr);
  for (int p = 0; p < n; ++p) {
    PayloadView view;
    if (validate_payload(prefixes + p * kPrefixBytes, sizes[p], count, &view) != qcclSuccess)
      return fail(qcclCorruptPayload, "decode: payload {} of {}: {}", p, n, thread_last_error());
    const PayloadHeader& h = view.header;
    kernels::DecodeSource s{};
    s.payload = static_cast<const unsigned char*>(payloads[p]);
    s.bits = h.bits;
    s.method = h.method;
    if (is_quantizing(static_cast<Method>(h.method))) {
      const QuantLayout layout = quant_layout(h.count, h.bucket_size, h.bits, h.table_size);
      s.norms_offset = layout.norms_offset;
      s.symbols_offset = layout.symbols_offset;
      s.bucket_size = h.bucket_size;
      s.table_size = h.table_size;
    }
    sources[p] = s;
  }
  if (count == 0) return qcclSuccess;
  QCCL_CUDA_CHECK(cudaMemcpyAsync(ws.sources_device.ptr, sources, n * sizeof(kernels::DecodeSource),
                                  cudaMemcpyHostToDevice, stream));
  kernels::DecodeSources list{};
  list.list = static_cast<const kernels::DecodeSource*>(ws.sources_device.ptr);
  QCCL_CHECK(kernels::launch_decode_accumulate(list, n, count, acc_device, !accumulate, nullptr,
                                               static_cast<uint32_t*>(ws.error_word.ptr), stream));
  QCCL_CUDA_CHECK(cudaEventRecord(ws.decode_done, stream));
  return qcclSuccess;
}

namespace {

// The layout every uniform payload must have, from the caller's header
// (the same consistency rules validate_payload applies to a received one).
Result uniform_layout(const PayloadHeader& h, kernels::DecodeSource* out) {
  QuantLayout layout{};
  QCCL_CHECK(check_payload_header(h, h.total_bytes, qcclInvalidArgument, "decode: expected header",
                                  &layout));
  *out = kernels::DecodeSource{};
  out->bits = h.bits;
  out->method = h.method;
  if (!is_quantizing(static_cast<Method>(h.method))) return qcclSuccess;  // a cast
  out->norms_offset = layout.norms_offset;
  out->symbols_offset = layout.symbols_offset;
  out->bucket_size = h.bucket_size;
  out->table_size = h.table_size;
  return qcclSuccess;
}

}  // namespace

Result CudaCodec::decode_accumulate_uniform_device(const void* payloads_device, uint64_t stride,
                                                   int n, const PayloadHeader& expected,
                                                   float* acc_device, cudaStream_t stream,
                                                   bool accumulate) {
  if (n < 0) return fail(qcclInvalidArgument, "decode: payload count must be >= 0, got {}", n);
  if (n == 0) return qcclSuccess;
  if (payloads_device == nullptr) return fail(qcclInvalidArgument, "decode: null payload buffer");
  kernels::DecodeSources uniform{};
  QCCL_CHECK(uniform_layout(expected, &uniform.uniform));
  if (n > 1 && stride < expected.total_bytes)
    return fail(qcclInvalidArgument, "decode: payload stride {} < payload size {} bytes", stride,
                expected.total_bytes);
  if (reinterpret_cast<uintptr_t>(payloads_device) % 4 != 0 || stride % 4 != 0)
    return fail(qcclInvalidArgument, "decode: payloads at {} with stride {} are not 4-byte aligned",
                payloads_device, stride);
  QCCL_CHECK(check_device_pointer(payloads_device, "decode: payload buffer"));
  const uint64_t count = expected.count;
  if (count > 0 && acc_device == nullptr)
    return fail(qcclInvalidArgument, "decode: null output buffer");
  if (count > 0) QCCL_CHECK(check_device_pointer(acc_device, "decode: output buffer"));

  Workspace& ws = *workspace_;
  QCCL_CHECK(ws.prepare_error_word(stream));
  QCCL_CHECK(grow(&ws.poisoned, 4, false, "header check word"));
  QCCL_CHECK(ws.report_landed_errors(stream));
  if (count == 0) return qcclSuccess;

  uniform.uniform.payload = static_cast<const unsigned char*>(payloads_device);
  uniform.stride = stride;
  auto* poisoned = static_cast<uint32_t*>(ws.poisoned.ptr);
  auto* error = static_cast<uint32_t*>(ws.error_word.ptr);
  QCCL_CUDA_CHECK(cudaMemsetAsync(poisoned, 0, 4, stream));
  QCCL_CHECK(kernels::launch_check_headers(uniform, n, expected, poisoned, error, stream));
  QCCL_CHECK(kernels::launch_decode_accumulate(uniform, n, count, acc_device, !accumulate, poisoned,
                                               error, stream));
  // Snapshot the error word for a later call; the event says when it landed.
  QCCL_CUDA_CHECK(cudaMemcpyAsync(ws.error_readback.ptr, error, 4, cudaMemcpyDeviceToHost, stream));
  QCCL_CUDA_CHECK(cudaEventRecord(ws.decode_done, stream));
  return qcclSuccess;
}

namespace {

// The checks both cast directions make; *nothing_to_do for count == 0.
Result check_cast(const void* in, uint64_t count, DataType dtype, const void* out,
                  bool* nothing_to_do) {
  *nothing_to_do = false;
  if (!valid_dtype(static_cast<int>(dtype)))
    return fail(qcclInvalidArgument, "cast: unknown dtype {}", static_cast<int>(dtype));
  if (count == 0) return *nothing_to_do = true, qcclSuccess;
  if (in == nullptr || out == nullptr)
    return fail(qcclInvalidArgument, "cast: null {} buffer", in == nullptr ? "input" : "output");
  QCCL_CHECK(check_device_pointer(in, "cast: input buffer"));
  QCCL_CHECK(check_device_pointer(out, "cast: output buffer"));
  return qcclSuccess;
}

}  // namespace

Result CudaCodec::cast_from_float_device(const float* in, uint64_t count, DataType dtype, void* out,
                                         cudaStream_t stream) {
  bool nothing_to_do;
  QCCL_CHECK(check_cast(in, count, dtype, out, &nothing_to_do));
  return nothing_to_do ? qcclSuccess
                       : kernels::launch_cast_from_float(in, count, dtype, out, stream);
}

Result CudaCodec::cast_to_float_device(const void* in, uint64_t count, DataType dtype, float* out,
                                       cudaStream_t stream) {
  bool nothing_to_do;
  QCCL_CHECK(check_cast(in, count, dtype, out, &nothing_to_do));
  return nothing_to_do ? qcclSuccess : kernels::launch_cast_to_float(in, count, dtype, out, stream);
}

// ---- the Codec face ----------------------------------------------------------

Result CudaCodec::scale(float* x, uint64_t count, float factor) {
  return kernels::launch_scale(x, count, factor, stream_);
}

Result CudaCodec::sum_of_squares(const void* in, DataType dtype, uint64_t count, double* out) {
  Workspace& ws = *workspace_;
  QCCL_CHECK(
      grow(&ws.squares, (kernels::kSquaresBlocks + 1) * sizeof(double), false, "sum of squares"));
  QCCL_CHECK(grow(&ws.squares_readback, sizeof(double), true, "sum of squares"));
  auto* partials = static_cast<double*>(ws.squares.ptr);
  QCCL_CHECK(kernels::launch_sum_of_squares(in, dtype, count, partials,
                                            partials + kernels::kSquaresBlocks, stream_));
  QCCL_CUDA_CHECK(cudaMemcpyAsync(ws.squares_readback.ptr, partials + kernels::kSquaresBlocks,
                                  sizeof(double), cudaMemcpyDeviceToHost, stream_));
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  *out = *static_cast<double*>(ws.squares_readback.ptr);
  return qcclSuccess;
}

Result CudaCodec::take_deferred_error() {
  return workspace_->report_landed_errors(stream_);
}

Result CudaCodec::allocate(uint64_t bytes, void** out) {
  QCCL_CUDA_CHECK(cudaMalloc(out, bytes));
  return qcclSuccess;
}

void CudaCodec::release(void* p) {
  cudaFree(p);
}

Result CudaCodec::copy_to_host(void* host, const void* src, uint64_t bytes) {
  if (bytes == 0) return qcclSuccess;
  QCCL_CUDA_CHECK(cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, stream_));
  return qcclSuccess;
}

Result CudaCodec::copy_from_host(void* dst, const void* host, uint64_t bytes) {
  if (bytes == 0) return qcclSuccess;
  QCCL_CUDA_CHECK(cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, stream_));
  return qcclSuccess;
}

Result CudaCodec::copy(void* dst, const void* src, uint64_t bytes) {
  if (bytes == 0 || dst == src) return qcclSuccess;
  QCCL_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
  return qcclSuccess;
}

Result CudaCodec::synchronize() {
  QCCL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return qcclSuccess;
}

// ---- the CUDA device backend ---------------------------------------------------

namespace {

class CudaBackend final : public DeviceBackend {
 public:
  const char* name() const override { return "cuda"; }
  bool is_device_memory(const void* p) const override { return is_device_pointer(p); }
  Result device_of(const void* p, int* device) const override {
    const DriverPointerQuery& q = driver_pointer_query();
    int ordinal = -1;
    if (q.get_attribute == nullptr ||
        q.get_attribute(&ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                        reinterpret_cast<CUdeviceptr>(p)) != CUDA_SUCCESS)
      return fail(qcclInvalidArgument, "cannot tell which CUDA device holds {}", p);
    *device = ordinal;
    return qcclSuccess;
  }
  Result set_device(int device, int* previous) override {
    QCCL_CUDA_CHECK(cudaGetDevice(previous));
    if (*previous != device) QCCL_CUDA_CHECK(cudaSetDevice(device));
    return qcclSuccess;
  }
  Result make_codec(int device, std::unique_ptr<Codec>* out) override {
    (void)device;  // the caller made it current
    *out = std::make_unique<CudaCodec>();
    return qcclSuccess;
  }
};

}  // namespace

DeviceBackend* cuda_device_backend() {
  static CudaBackend backend;
  return &backend;
}

}  // namespace qccl
