#include "collective/collectives.h"

#include "codec/host_codec.h"
#include "collective/call_agreement.h"
#include "collective/compressed_step.h"

namespace qccl {

Algo choose_compressed_algo(const Config& config, int nranks, uint64_t count) {
  if (config.algo != Algo::kAuto) return config.algo;
  // docs/collectives.md "auto rule". Every rank must own a whole bucket, so
  // sra's chunks are balanced. The quantising methods: `sra` from 8 ranks;
  // below that `allgather` wins: at N = 4 on CPU the two took the same time
  // while sra's second quantisation made the error ~5x larger
  // (perf/results/2026-11-23-cpu-allreduce-np4.txt). The casts (fp16, bf16):
  // `sra` from 3 ranks, where it sends fewer bytes than `allgather`
  // ((3N-4)/N·C at most vs (N-1)·C) and its second rounding costs one
  // half-precision ulp of the sum, the size of the first.
  const bool balanced = count >= static_cast<uint64_t>(nranks) * config.bucket_size;
  const int sra_from = is_quantizing(config.method) ? 8 : 3;
  return balanced && nranks >= sra_from ? Algo::kSra : Algo::kAllgather;
}

std::vector<std::unique_ptr<CollectiveAlgorithm>> make_algorithms() {
  std::vector<std::unique_ptr<CollectiveAlgorithm>> v;
  v.push_back(make_passthrough());
  v.push_back(make_allgather_algorithm());
  v.push_back(make_scatter_reduce_allgather());
  return v;
}

Collectives::Collectives(const Config& config, Transport& transport, Adapter& adapter)
    : ctx_(config, transport, adapter),
      algorithms_(make_algorithms()),
      host_workspace_(host_codec()) {
  ctx_.codec = &host_codec();
  ctx_.workspace = &host_workspace_;
  ctx_.transport = &transport;
}

Collectives::~Collectives() {
  // The device workspace is freed next; work on it must have finished.
  if (device_codec_) device_codec_->synchronize();
}

Result Collectives::gather_control(const void* mine, uint64_t bytes,
                                   std::vector<unsigned char>* all,
                                   std::vector<uint64_t>* offsets) {
  Transport& t = ctx_.base_transport;
  const int n = t.size();
  std::vector<uint64_t> sizes(n), eight(n, sizeof(uint64_t)), slots(n);
  for (int r = 0; r < n; ++r) slots[r] = r * sizeof(uint64_t);
  QCCL_CHECK(t.allgatherv(&bytes, sizeof bytes, sizes.data(), eight.data(), slots.data()));
  offsets->assign(n + 1, 0);
  for (int r = 0; r < n; ++r) {
    if ((*offsets)[r] + sizes[r] < (*offsets)[r])
      return fail(qcclInternalError, "control message sizes overflow (rank {} sent {} bytes)", r,
                  sizes[r]);
    (*offsets)[r + 1] = (*offsets)[r] + sizes[r];
  }
  all->resize((*offsets)[n]);
  return t.allgatherv(mine, bytes, all->data(), sizes.data(), offsets->data());
}

void Collectives::mark_step() {
  ctx_.step_marked = true;
  ++ctx_.step;
}

namespace {

// For one device call: the call's stream on the codec and the transport, and
// the communicator's device current; all restored when the call returns
// (the caller may destroy the stream afterwards; its thread keeps its own
// current device).
class DeviceCallScope {
 public:
  DeviceCallScope(CollectiveContext& ctx, DeviceBackend& backend, int device, void* stream)
      : ctx_(ctx), backend_(backend) {
    set_ = backend_.set_device(device, &previous_) == qcclSuccess;
    ctx_.codec->set_stream(stream);
    ctx_.transport->set_stream(stream);
  }
  ~DeviceCallScope() {
    ctx_.codec->set_stream(nullptr);
    ctx_.transport->set_stream(nullptr);
    int ignored;
    if (set_) backend_.set_device(previous_, &ignored);
  }
  bool device_set() const { return set_; }

 private:
  CollectiveContext& ctx_;
  DeviceBackend& backend_;
  int previous_ = -1;
  bool set_ = false;
};

}  // namespace

Result Collectives::place(const Placement& where, const CollectiveRequest& req) {
  if (!where.device) {
    ctx_.codec = &host_codec();
    ctx_.workspace = &host_workspace_;
    ctx_.transport = &ctx_.base_transport;
    return qcclSuccess;
  }
  DeviceBackend* backend = device_backend();
  if (backend == nullptr)
    return fail(qcclInvalidArgument, "device buffers, but this process has no device backend");
  if (!device_codec_) {
    if (device_ < 0) QCCL_CHECK(backend->device_of(req.send, &device_));
    QCCL_CHECK(backend->make_codec(device_, &device_codec_));
    device_workspace_ = std::make_unique<Workspace>(*device_codec_);
    if (!ctx_.base_transport.accepts_device_memory())
      staging_ = std::make_unique<StagingTransport>(ctx_.base_transport, *device_codec_);
  }
  ctx_.codec = device_codec_.get();
  ctx_.workspace = device_workspace_.get();
  ctx_.transport = staging_ ? static_cast<Transport*>(staging_.get()) : &ctx_.base_transport;
  return qcclSuccess;
}

Result Collectives::run(const CollectiveRequest& req, const Placement& where) {
  if (req.count == 0) return qcclSuccess;
  QCCL_CHECK(place(where, req));
  if (!where.device) return agree_and_run(req);
  DeviceBackend& backend = *device_backend();
  const DeviceCallScope scope(ctx_, backend, device_, where.stream);
  if (!scope.device_set())
    return fail(qcclUnhandledCudaError, "cannot make device {} current: {}", device_,
                std::string(thread_last_error()));
  const Result r = agree_and_run(req);
  // An error the device found in an earlier call's work (docs/gpu.md
  // "Corrupt payloads on the device").
  const Result late = ctx_.codec->take_deferred_error();
  return r != qcclSuccess ? r : late;
}

Result Collectives::agree_on_operation(uint8_t kind) {
  QCCL_CHECK(place(Placement{}, CollectiveRequest{}));
  CallDescriptor d;
  d.kind = kind;
  d.method = static_cast<uint8_t>(ctx_.config.method);
  d.bucket_size = ctx_.config.bucket_size;
  d.call_number = ctx_.agreed_calls++;
  return agree_on_call(ctx_, d);
}

Result Collectives::take_part_rejected(Result local_error) {
  const std::string message = thread_last_error();
  const Result agreed = agree_on_operation(kRejectedCall);
  // This rank's own error is the one to report; a failed agreement (a
  // timeout) is added to it.
  if (agreed != qcclSuccess && agreed != qcclInvalidUsage)
    return set_error(local_error, message + "; and telling the other ranks failed: " +
                                      std::string(thread_last_error()));
  return set_error(local_error, message);
}

Result Collectives::agree_and_run(const CollectiveRequest& req) {
  CallDescriptor d;
  d.kind = static_cast<uint8_t>(req.kind);
  d.count = req.count;
  d.dtype = static_cast<uint8_t>(req.dtype);
  if (req.kind == CollectiveKind::kAllReduce) d.op = req.average ? qcclAvg : qcclSum;
  d.method = static_cast<uint8_t>(ctx_.config.method);
  d.bucket_size = ctx_.config.bucket_size;
  d.call_number = ctx_.agreed_calls++;
  QCCL_CHECK(agree_on_call(ctx_, d));
  // Past the agreement every rank counts the call, failed or not.
  CollectiveAlgorithm* chosen = nullptr;
  for (auto& algorithm : algorithms_) {
    if (algorithm->enabled(ctx_, req)) {
      chosen = algorithm.get();
      break;
    }
  }
  const Result r =
      chosen != nullptr
          ? chosen->execute(ctx_, req)
          : fail(qcclInternalError, "no algorithm accepts this {} of {} elements",
                 req.kind == CollectiveKind::kAllReduce ? "allreduce" : "allgather", req.count);
  ctx_.counters.input_bytes += req.input_bytes();
  ctx_.counters.calls++;
  if (!ctx_.step_marked) ++ctx_.step;
  return r;
}

}  // namespace qccl
