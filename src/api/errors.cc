// Error names and texts, version, configuration check (docs/design.md §2–3).
#include <mutex>
#include <unordered_set>

#include "api/comm.h"

namespace qccl {
namespace {

std::mutex live_mutex;
std::unordered_set<qcclComm_t>& live_comms() {
  static auto* comms = new std::unordered_set<qcclComm_t>();  // never destroyed: used at exit
  return *comms;
}

}  // namespace

void register_comm(qcclComm_t comm) {
  std::lock_guard<std::mutex> lock(live_mutex);
  live_comms().insert(comm);
}

void unregister_comm(qcclComm_t comm) {
  std::lock_guard<std::mutex> lock(live_mutex);
  live_comms().erase(comm);
}

bool is_live_comm(qcclComm_t comm) {
  if (comm == nullptr) return false;
  std::lock_guard<std::mutex> lock(live_mutex);
  return live_comms().count(comm) != 0;
}

Result check_comm(qcclComm_t comm) {
  if (comm == nullptr) return fail(qcclInvalidArgument, "comm is NULL");
  if (!is_live_comm(comm))
    return fail(qcclInvalidUsage,
                "comm {} is not a live communicator (destroyed already, or not a qcclComm_t)",
                static_cast<const void*>(comm));
  return qcclSuccess;
}

}  // namespace qccl

extern "C" {

const char* qcclGetErrorString(qcclResult_t result) {
  return qccl::result_name(result);
}

const char* qcclGetLastError(qcclComm_t comm) {
  if (!qccl::is_live_comm(comm)) return qccl::thread_last_error().c_str();
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
