// qcclAllReduce / qcclAllGather: argument checks, then the collective layer:
// host buffers on the CPU path, device buffers (CUDA builds) on the device
// path (collective/device_collectives.h, docs/gpu.md "The NCCL path").
#include "api/comm.h"
#ifdef QCCL_HAVE_CUDA
#include "codec/cuda_codec.h"
#include "collective/device_collectives.h"
#endif

namespace qccl {
namespace {

Result check_buffer(const void* p, const char* name) {
  if (p == nullptr) return fail(qcclInvalidArgument, "{} is NULL", name);
  return qcclSuccess;
}

// Where the buffers live: both host (the CPU path, completes before return)
// or both device (the device path, *device = the communicator's device
// state, created on first use). Mixed is an error.
Result locate_buffers(qcclComm_t comm, const void* send, const void* recv, DeviceState** device) {
  *device = nullptr;
#ifdef QCCL_HAVE_CUDA
  const bool send_on_device = is_device_pointer(send);
  const bool recv_on_device = is_device_pointer(recv);
  if (send_on_device != recv_on_device)
    return fail(qcclInvalidArgument,
                "sendbuff {} is {} memory but recvbuff {} is {}: both must be host or both device",
                send, send_on_device ? "device" : "host", recv, recv_on_device ? "device" : "host");
  if (!send_on_device) return qcclSuccess;
  if (!comm->device) QCCL_CHECK(create_device_state(nullptr, &comm->device));
  *device = comm->device.get();
#else
  (void)comm, (void)send, (void)recv;
#endif
  return qcclSuccess;
}

Result check_dtype(int dtype) {
  if (!valid_dtype(dtype))
    return fail(qcclInvalidArgument,
                "datatype {} is not one of qcclFloat32, qcclFloat16, qcclBfloat16", dtype);
  return qcclSuccess;
}

}  // namespace
}  // namespace qccl

extern "C" {

qcclResult_t qcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           qcclDataType_t datatype, qcclRedOp_t op, qcclComm_t comm, void* stream) {
  return qccl::api_call(comm, "qcclAllReduce", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    QCCL_CHECK(qccl::check_dtype(qccl::raw_enum(&datatype)));
    const int raw_op = qccl::raw_enum(&op);
    if (raw_op != qcclSum && raw_op != qcclAvg)
      return qccl::fail(qcclInvalidArgument, "reduction op {} is not qcclSum or qcclAvg", raw_op);
    if (count == 0) return qcclSuccess;
    QCCL_CHECK(qccl::check_buffer(sendbuff, "sendbuff"));
    QCCL_CHECK(qccl::check_buffer(recvbuff, "recvbuff"));
    qccl::DeviceState* device = nullptr;
    QCCL_CHECK(qccl::locate_buffers(comm, sendbuff, recvbuff, &device));
    qccl::AllreduceRequest req;
    req.send = sendbuff;
    req.recv = recvbuff;
    req.count = count;
    req.dtype = static_cast<qccl::DataType>(datatype);
    req.average = op == qcclAvg;
#ifdef QCCL_HAVE_CUDA
    if (device != nullptr)
      return qccl::device_allreduce(*comm->collectives, *device, req,
                                    static_cast<cudaStream_t>(stream));
#endif
    (void)stream;  // host buffers complete before return
    return comm->collectives->allreduce(req);
  });
}

qcclResult_t qcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           qcclDataType_t datatype, qcclComm_t comm, void* stream) {
  return qccl::api_call(comm, "qcclAllGather", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    QCCL_CHECK(qccl::check_dtype(qccl::raw_enum(&datatype)));
    if (sendcount == 0) return qcclSuccess;
    QCCL_CHECK(qccl::check_buffer(sendbuff, "sendbuff"));
    QCCL_CHECK(qccl::check_buffer(recvbuff, "recvbuff"));
    qccl::DeviceState* device = nullptr;
    QCCL_CHECK(qccl::locate_buffers(comm, sendbuff, recvbuff, &device));
#ifdef QCCL_HAVE_CUDA
    if (device != nullptr)
      return qccl::device_allgather(*comm->collectives, *device, sendbuff, recvbuff, sendcount,
                                    static_cast<qccl::DataType>(datatype),
                                    static_cast<cudaStream_t>(stream));
#endif
    (void)stream;
    return comm->collectives->allgather(sendbuff, recvbuff, sendcount,
                                        static_cast<qccl::DataType>(datatype));
  });
}

}  // extern "C"
