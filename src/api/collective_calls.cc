// qcclAllReduce / qcclAllGather: argument checks, then the collective layer,
// which serves host and device buffers through one path
// (collective/collectives.h, docs/gpu.md "Buffer placement").
#include <cstdint>

#include "api/comm.h"
#include "codec/device_backend.h"
#include "collective/call_size.h"

namespace qccl {
namespace {

Result check_buffer(const void* p, const char* name) {
  if (p == nullptr) return fail(qcclInvalidArgument, "{} is NULL", name);
  return qcclSuccess;
}

// Where the buffers live: both host (the call completes before it returns)
// or both device memory (stream-ordered on `stream`). Mixed is an error.
// Without a device backend (a CPU build) every buffer is host memory.
Result locate_buffers(const void* send, const void* recv, void* stream, Placement* where) {
  *where = Placement{};
  DeviceBackend* backend = device_backend();
  if (backend == nullptr) return qcclSuccess;
  const bool send_on_device = backend->is_device_memory(send);
  const bool recv_on_device = backend->is_device_memory(recv);
  if (send_on_device != recv_on_device)
    return fail(qcclInvalidArgument,
                "sendbuff {} is {} memory but recvbuff {} is {}: both must be host or both device",
                send, send_on_device ? "device" : "host", recv, recv_on_device ? "device" : "host");
  where->device = send_on_device;
  where->stream = send_on_device ? stream : nullptr;
  return qcclSuccess;
}

Result check_dtype(int dtype) {
  if (!valid_dtype(dtype))
    return fail(qcclInvalidArgument,
                "datatype {} is not one of qcclFloat32, qcclFloat16, qcclBfloat16", dtype);
  return qcclSuccess;
}

// docs/api.md "Aliasing": the buffers may be the same memory only in place
// (allreduce: send == recv; allgather: send == recv + rank·sendcount);
// any other overlap is an error (MPI forbids it, and the uncompressed path
// would read what it has already written). Sizes are checked already.
Result check_aliasing(const CollectiveRequest& req, int nranks, int rank) {
  const uint64_t send_bytes = req.bytes();
  const bool gather = req.kind == CollectiveKind::kAllGather;
  const uint64_t recv_bytes = gather ? send_bytes * static_cast<uint64_t>(nranks) : send_bytes;
  const auto send = reinterpret_cast<uintptr_t>(req.send);
  const auto recv = reinterpret_cast<uintptr_t>(req.recv);
  const uintptr_t in_place = recv + (gather ? send_bytes * static_cast<uint64_t>(rank) : 0);
  if (send == in_place) return qcclSuccess;
  uint64_t send_end = 0, recv_end = 0;
  if (!checked_add(send, send_bytes, &send_end) || !checked_add(recv, recv_bytes, &recv_end))
    return fail(qcclInvalidArgument,
                "sendbuff {} / recvbuff {} plus the call's bytes wrap around the address space",
                req.send, static_cast<const void*>(req.recv));
  if (send < recv_end && recv < send_end)
    return fail(qcclInvalidArgument,
                "sendbuff {} ({} bytes) and recvbuff {} ({} bytes) overlap but the call is not in "
                "place: only {} may share memory (docs/api.md \"Aliasing\")",
                req.send, send_bytes, static_cast<const void*>(req.recv), recv_bytes,
                gather ? "sendbuff == recvbuff + rank × sendcount" : "sendbuff == recvbuff");
  return qcclSuccess;
}

// The checks both collectives make on a valid communicator.
Result check_call(CollectiveRequest* req, int raw_dtype, int raw_op, void* stream, int nranks,
                  int rank, Placement* where) {
  QCCL_CHECK(check_dtype(raw_dtype));
  // Allgather has no op (raw_op is ignored): no value of an int may stand
  // for "none", or an allreduce passing it would be accepted.
  if (req->kind == CollectiveKind::kAllReduce && raw_op != qcclSum && raw_op != qcclAvg)
    return fail(qcclInvalidArgument, "reduction op {} is not qcclSum or qcclAvg", raw_op);
  req->average = req->kind == CollectiveKind::kAllReduce && raw_op == qcclAvg;
  QCCL_CHECK(check_buffer(req->send, "sendbuff"));
  QCCL_CHECK(check_buffer(req->recv, "recvbuff"));
  req->dtype = static_cast<DataType>(raw_dtype);
  QCCL_CHECK(check_call_size(req->kind, req->count, req->dtype, nranks,
                             req->kind == CollectiveKind::kAllGather ? "sendcount" : "count"));
  QCCL_CHECK(check_aliasing(*req, nranks, rank));
  QCCL_CHECK(locate_buffers(req->send, req->recv, stream, where));
  return qcclSuccess;
}

// Count 0 is a no-op without communication (on every rank alike). Any
// other call that fails its checks here still takes part in the call
// agreement, so the other ranks fail it too instead of pairing their next
// call with this rank's (docs/collectives.md "Call agreement").
Result run_collective(qcclComm_t comm, CollectiveRequest req, int raw_dtype, int raw_op,
                      void* stream) {
  QCCL_CHECK(check_comm(comm));
  if (req.count == 0) {
    QCCL_CHECK(check_dtype(raw_dtype));
    if (req.kind == CollectiveKind::kAllReduce && raw_op != qcclSum && raw_op != qcclAvg)
      return fail(qcclInvalidArgument, "reduction op {} is not qcclSum or qcclAvg", raw_op);
    return qcclSuccess;
  }
  Placement where;
  const Result checked = check_call(&req, raw_dtype, raw_op, stream, comm->collectives->size(),
                                    comm->collectives->rank(), &where);
  if (checked != qcclSuccess) return comm->collectives->take_part_rejected(checked);
  return comm->collectives->run(req, where);
}

}  // namespace
}  // namespace qccl

extern "C" {

qcclResult_t qcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           qcclDataType_t datatype, qcclRedOp_t op, qcclComm_t comm, void* stream) {
  return qccl::api_call(comm, "qcclAllReduce", [&] {
    const int raw_op = qccl::raw_enum(&op);
    qccl::CollectiveRequest req;
    req.kind = qccl::CollectiveKind::kAllReduce;
    req.send = sendbuff;
    req.recv = recvbuff;
    req.count = count;
    return qccl::run_collective(comm, req, qccl::raw_enum(&datatype), raw_op, stream);
  });
}

qcclResult_t qcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           qcclDataType_t datatype, qcclComm_t comm, void* stream) {
  return qccl::api_call(comm, "qcclAllGather", [&] {
    qccl::CollectiveRequest req;
    req.kind = qccl::CollectiveKind::kAllGather;
    req.send = sendbuff;
    req.recv = recvbuff;
    req.count = sendcount;
    return qccl::run_collective(comm, req, qccl::raw_enum(&datatype), qcclSum, stream);
  });
}

}  // extern "C"
