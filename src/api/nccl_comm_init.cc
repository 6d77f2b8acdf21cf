// Communicators over NCCL (docs/api.md "Communicators over NCCL", issue 5):
// qcclGetUniqueId / qcclCommInitRank (NCCL-style bootstrap) and
// qcclCommInitNccl (wrap a framework's communicator). Compiled in every
// build so the C API is the same everywhere; without NCCL every call, after
// its argument checks, is qcclInvalidUsage.
#include <cstring>

#include "api/comm.h"
#ifdef QCCL_HAVE_NCCL
#include <nccl.h>

#include "transport/nccl_transport.h"
#endif

namespace qccl {
namespace {

#ifndef QCCL_HAVE_NCCL
Result without_nccl(const char* function) {
  return fail(qcclInvalidUsage,
              "{}: this qccl was built without NCCL (needs CUDA and libnccl at build time)",
              function);
}
#endif

#ifdef QCCL_HAVE_NCCL
static_assert(sizeof(ncclUniqueId) <= sizeof(qcclUniqueId),
              "an ncclUniqueId must fit in qcclUniqueId");

Result nccl_call_failed(ncclResult_t r, const char* call) {
  return fail(r == ncclRemoteError ? qcclRemoteError : qcclTransportError, "{} failed: {}", call,
              ncclGetErrorString(r));
}

// The common tail of both initialisations over an NCCL communicator. The
// configuration is resolved first: the transport waits under its
// QCCL_TIMEOUT_S from creation on (a non-blocking communicator may still be
// initialising). A bad configuration is reported by the agreement, on every
// rank; until then the default timeout applies.
Result init_over_nccl(qcclComm_t* out, ncclComm_t nccl, bool owned, const qcclConfig_t* overrides) {
  auto comm = std::make_unique<qcclComm>();
  const Result resolved = resolve_config(overrides, &comm->config);
  const std::string resolve_error = thread_last_error();
  const Config& used = resolved == qcclSuccess ? comm->config : Config{};
  std::unique_ptr<NcclTransport> transport;
  // An owned communicator is the transport's from here on, even when
  // create fails (it may have been aborted: it must not be destroyed here).
  QCCL_CHECK(NcclTransport::create(nccl, owned, used.timeout_s, &transport));
  transport->set_abort_on_timeout(used.abort_on_timeout);
  const int device = transport->cuda_device();
  QCCL_CHECK(finish_comm_init(std::move(comm), resolved, resolve_error, std::move(transport),
                              "NCCL", out));
  // Device calls run on the communicator's device, whatever the caller's
  // current one is then.
  (*out)->collectives->bind_device(device);
  return qcclSuccess;
}
#endif

}  // namespace
}  // namespace qccl

extern "C" {

qcclResult_t qcclGetUniqueId(qcclUniqueId* uniqueId) {
  return qccl::api_call(nullptr, "qcclGetUniqueId", [&] {
    if (uniqueId == nullptr) return qccl::fail(qcclInvalidArgument, "uniqueId is NULL");
#ifdef QCCL_HAVE_NCCL
    ncclUniqueId id;
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return qccl::nccl_call_failed(r, "ncclGetUniqueId");
    std::memset(uniqueId, 0, sizeof *uniqueId);
    std::memcpy(uniqueId->internal, &id, sizeof id);
    return qcclSuccess;
#else
    return qccl::without_nccl("qcclGetUniqueId");
#endif
  });
}

qcclResult_t qcclCommInitRank(qcclComm_t* comm, int nranks, qcclUniqueId commId, int rank,
                              const qcclConfig_t* config) {
  return qccl::api_call(nullptr, "qcclCommInitRank", [&] {
    QCCL_CHECK(qccl::check_init_args(comm, config));
    if (nranks < 1) return qccl::fail(qcclInvalidArgument, "nranks is {}, must be >= 1", nranks);
    if (rank < 0 || rank >= nranks)
      return qccl::fail(qcclInvalidArgument, "rank {} is outside [0, nranks = {})", rank, nranks);
#ifdef QCCL_HAVE_NCCL
    ncclUniqueId id;
    std::memcpy(&id, commId.internal, sizeof id);
    ncclComm_t nccl = nullptr;
    // ncclInProgress: a non-blocking communicator (NCCL_COMM_BLOCKING=0),
    // still initialising; the transport waits for it under QCCL_TIMEOUT_S.
    const ncclResult_t r = ncclCommInitRank(&nccl, nranks, id, rank);
    if (r != ncclSuccess && r != ncclInProgress)
      return qccl::nccl_call_failed(r, "ncclCommInitRank");
    return qccl::init_over_nccl(comm, nccl, /*owned=*/true, config);
#else
    (void)commId;
    return qccl::without_nccl("qcclCommInitRank");
#endif
  });
}

qcclResult_t qcclCommInitNccl(qcclComm_t* comm, void* ncclComm, const qcclConfig_t* config) {
  return qccl::api_call(nullptr, "qcclCommInitNccl", [&] {
    QCCL_CHECK(qccl::check_init_args(comm, config));
    if (ncclComm == nullptr)
      return qccl::fail(qcclInvalidArgument, "ncclComm is NULL (pass the ncclComm_t itself)");
#ifdef QCCL_HAVE_NCCL
    return qccl::init_over_nccl(comm, static_cast<ncclComm_t>(ncclComm), /*owned=*/false, config);
#else
    return qccl::without_nccl("qcclCommInitNccl");
#endif
  });
}

}  // extern "C"
