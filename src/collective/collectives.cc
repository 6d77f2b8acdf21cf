#include "collective/collectives.h"

#include <cstring>

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

std::vector<std::unique_ptr<AllreduceAlgorithm>> make_allreduce_algorithms() {
  std::vector<std::unique_ptr<AllreduceAlgorithm>> v;
  v.push_back(make_passthrough());
  v.push_back(make_allgather_allreduce());
  v.push_back(make_scatter_reduce_allgather());
  return v;
}

void Collectives::mark_step() {
  ctx_.step_marked = true;
  ++ctx_.step;
}

void Collectives::end_call() {
  ctx_.counters.calls++;
  if (!ctx_.step_marked) ++ctx_.step;
}

Result Collectives::run_agreed(CollectiveKind kind, const AllreduceRequest& req,
                               const std::function<Result(CollectiveContext&)>& body) {
  if (req.count == 0) return qcclSuccess;
  CallDescriptor d;
  d.kind = static_cast<uint8_t>(kind);
  d.count = req.count;
  d.dtype = static_cast<uint8_t>(req.dtype);
  if (kind == CollectiveKind::kAllReduce) d.op = req.average ? qcclAvg : qcclSum;
  d.method = static_cast<uint8_t>(ctx_.config.method);
  d.bucket_size = ctx_.config.bucket_size;
  d.call_number = ctx_.counters.calls;
  QCCL_CHECK(agree_on_call(ctx_, d));
  // Past the agreement every rank counts the call, failed or not, so the
  // call numbers stay in step.
  const Result r = body(ctx_);
  ctx_.counters.input_bytes += req.bytes();
  end_call();
  return r;
}

Result Collectives::allreduce(const AllreduceRequest& req) {
  return run_agreed(CollectiveKind::kAllReduce, req, [&](CollectiveContext& ctx) {
    for (auto& algorithm : algorithms_) {
      if (algorithm->enabled(ctx, req)) return algorithm->execute(ctx, req);
    }
    return fail(qcclInternalError, "no allreduce algorithm accepts {} elements", req.count);
  });
}

Result Collectives::allgather(const void* send, void* recv, uint64_t count, DataType dtype) {
  AllreduceRequest req;
  req.send = send;
  req.recv = recv;
  req.count = count;
  req.dtype = dtype;
  return run_agreed(CollectiveKind::kAllGather, req,
                    [&](CollectiveContext&) { return gather_agreed(send, recv, count, dtype); });
}

Result Collectives::gather_agreed(const void* send, void* recv, uint64_t count, DataType dtype) {
  const int n = ctx_.transport.size();
  const uint64_t slot = count * dtype_size(dtype);
  Workspace& ws = ctx_.workspace;
  uint64_t* sizes = grow(&ws.sizes, n);
  uint64_t* offsets = grow(&ws.offsets, n);
  unsigned char* out = static_cast<unsigned char*>(recv);

  if (is_passthrough(ctx_.config, n, slot)) {
    log_choice_once(ctx_, "allgather", "passthrough", slot);
    // MPI forbids aliasing send and recv; in-place (send == own slot) or any
    // overlap goes through a copy.
    unsigned char* staged = grow(&ws.encoded, slot);
    std::memcpy(staged, send, slot);
    for (int r = 0; r < n; ++r) sizes[r] = slot, offsets[r] = r * slot;
    QCCL_CHECK(ctx_.transport.allgatherv(staged, slot, out, sizes, offsets));
    ctx_.counters.wire_bytes += (n - 1) * slot;
  } else {
    log_choice_once(ctx_, "allgather", "allgather", slot);
    PlannedEncode planned;
    QCCL_CHECK(plan_encode(ctx_, send, count, dtype, &planned));
    const uint64_t bytes = payload_bytes(planned.spec, count);
    QCCL_CHECK(encode(send, dtype, count, planned.spec, grow(&ws.encoded, bytes), bytes,
                      planned.stats_sink()));
    unsigned char* all = grow(&ws.received, n * bytes);
    for (int r = 0; r < n; ++r) sizes[r] = bytes, offsets[r] = r * bytes;
    QCCL_CHECK(ctx_.transport.allgatherv(ws.encoded.data(), bytes, all, sizes, offsets));
    float* decoded = grow(&ws.sum, count);
    for (int r = 0; r < n; ++r) {
      QCCL_CHECK(decode_from_rank(r, all + offsets[r], bytes, count, planned.spec, false, decoded));
      cast_from_float(decoded, count, dtype, out + r * slot);
    }
    QCCL_CHECK(submit_statistics(ctx_, planned));
    count_compressed_call(ctx_, planned, slot, bytes, (n - 1) * bytes);
  }
  return qcclSuccess;
}

}  // namespace qccl
