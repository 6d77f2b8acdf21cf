// qcclCommInitTransport: a communicator over the caller's callbacks ("bring
// your own transport", docs/api.md), e.g. a torch.distributed process group
// through qccl.torch.init. Same configuration agreement and layers as every
// other qcclCommInit*; needs no MPI.
#include "api/comm.h"
#include "transport/callback_transport.h"

namespace qccl {
namespace {

Result init_transport(qcclComm_t* out, const qcclTransportOps_t* ops,
                      const qcclConfig_t* overrides) {
  QCCL_CHECK(check_init_args(out, overrides));
  std::unique_ptr<CallbackTransport> transport;
  QCCL_CHECK(CallbackTransport::create(ops, &transport));
  auto comm = std::make_unique<qcclComm>();
  const Result resolved = resolve_config(overrides, &comm->config);
  const std::string resolve_error = thread_last_error();
  // ctx stays the caller's until the communicator exists (qccl.h).
  CallbackTransport* adopted = transport.get();
  QCCL_CHECK(finish_comm_init(std::move(comm), resolved, resolve_error, std::move(transport),
                              "callback transport", out));
  adopted->own_context();
  return qcclSuccess;
}

}  // namespace
}  // namespace qccl

extern "C" qcclResult_t qcclCommInitTransport(qcclComm_t* comm, const qcclTransportOps_t* ops,
                                              const qcclConfig_t* config) {
  return qccl::api_call(nullptr, "qcclCommInitTransport",
                        [&] { return qccl::init_transport(comm, ops, config); });
}
