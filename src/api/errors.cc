// Error names and texts, version, configuration check (docs/design.md §2–3).
#include "api/comm.h"

namespace qccl {

Result check_comm(qcclComm_t comm) {
  if (comm == nullptr) return fail(qcclInvalidArgument, "comm is NULL");
  if (comm->magic != qcclComm::kAlive)
    return fail(qcclInvalidUsage, "comm {} is not a live communicator (destroyed already?)",
                static_cast<const void*>(comm));
  return qcclSuccess;
}

}  // namespace qccl

extern "C" {

const char* qcclGetErrorString(qcclResult_t result) {
  return qccl::result_name(result);
}

const char* qcclGetLastError(qcclComm_t comm) {
  if (comm == nullptr || comm->magic != qcclComm::kAlive) return qccl::thread_last_error().c_str();
  return comm->last_error.c_str();
}

qcclResult_t qcclGetVersion(int* version) {
  return qccl::api_call(nullptr, "qcclGetVersion", [&] {
    if (version == nullptr) return qccl::fail(qcclInvalidArgument, "version is NULL");
    *version = QCCL_VERSION_CODE;
    return qcclSuccess;
  });
}

qcclResult_t qcclConfigValidate(const qcclConfig_t* config) {
  return qccl::api_call(nullptr, "qcclConfigValidate", [&] {
    qccl::Config resolved;
    return qccl::resolve_config(config, &resolved);
  });
}

}  // extern "C"
