// qcclAllReduce / qcclAllGather: argument checks, then the collective layer.
#include "api/comm.h"
#ifdef QCCL_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace qccl {
namespace {

Result check_buffer(const void* p, const char* name) {
  if (p == nullptr) return fail(qcclInvalidArgument, "{} is NULL", name);
#ifdef QCCL_HAVE_CUDA
  // Device buffers arrive with the CUDA collectives; until then say so
  // instead of reading device memory from the host.
  cudaPointerAttributes attributes;
  if (cudaPointerGetAttributes(&attributes, p) == cudaSuccess &&
      attributes.type == cudaMemoryTypeDevice)
    return fail(qcclInvalidArgument,
                "{} {} is device memory: this build supports host buffers only", name, p);
  cudaGetLastError();
#endif
  return qcclSuccess;
}

Result check_dtype(qcclDataType_t dtype) {
  if (!valid_dtype(static_cast<int>(dtype)))
    return fail(qcclInvalidArgument,
                "datatype {} is not one of qcclFloat32, qcclFloat16, qcclBfloat16",
                static_cast<int>(dtype));
  return qcclSuccess;
}

}  // namespace
}  // namespace qccl

extern "C" {

qcclResult_t qcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           qcclDataType_t datatype, qcclRedOp_t op, qcclComm_t comm,
                           void* /*stream: host buffers complete before return*/) {
  return qccl::api_call(comm, "qcclAllReduce", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    QCCL_CHECK(qccl::check_dtype(datatype));
    if (op != qcclSum && op != qcclAvg)
      return qccl::fail(qcclInvalidArgument, "reduction op {} is not qcclSum or qcclAvg",
                        static_cast<int>(op));
    if (count == 0) return qcclSuccess;
    QCCL_CHECK(qccl::check_buffer(sendbuff, "sendbuff"));
    QCCL_CHECK(qccl::check_buffer(recvbuff, "recvbuff"));
    qccl::AllreduceRequest req;
    req.send = sendbuff;
    req.recv = recvbuff;
    req.count = count;
    req.dtype = static_cast<qccl::DataType>(datatype);
    req.average = op == qcclAvg;
    return comm->collectives->allreduce(req);
  });
}

qcclResult_t qcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           qcclDataType_t datatype, qcclComm_t comm, void* /*stream*/) {
  return qccl::api_call(comm, "qcclAllGather", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    QCCL_CHECK(qccl::check_dtype(datatype));
    if (sendcount == 0) return qcclSuccess;
    QCCL_CHECK(qccl::check_buffer(sendbuff, "sendbuff"));
    QCCL_CHECK(qccl::check_buffer(recvbuff, "recvbuff"));
    return comm->collectives->allgather(sendbuff, recvbuff, sendcount,
                                        static_cast<qccl::DataType>(datatype));
  });
}

}  // extern "C"
