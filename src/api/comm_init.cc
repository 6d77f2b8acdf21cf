// Communicator lifetime and per-communicator settings (docs/design.md §2–3).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "api/comm.h"
#include "codec/payload_format.h"
#include "core/logging.h"
#ifdef QCCL_HAVE_MPI
#include "transport/mpi_transport.h"
#endif

namespace qccl {
namespace {

// Settings that only affect this process and may differ between ranks.
bool is_local_setting(const std::string& name) {
  return name == "QCCL_DEBUG" || name == "QCCL_TIMELINE" || name == "QCCL_TIMEOUT_S" ||
         name == "QCCL_ON_TIMEOUT";
}

// One (name, FNV-1a of the value) per setting that must agree, from the
// same table describe_config prints.
struct SettingHashes {
  int32_t status = qcclSuccess;  // this rank's resolve_config result
  uint32_t count = 0;
  uint32_t hashes[64] = {};
};

std::vector<std::string> agreed_setting_names(const Config& c, SettingHashes* out) {
  std::vector<std::string> names;
  const std::string text = describe_config(c);
  size_t pos = 0;
  while (pos < text.size() && out->count < 64) {
    const size_t end = text.find('\n', pos);
    std::string line = text.substr(pos, end - pos);
    pos = end == std::string::npos ? text.size() : end + 1;
    line.erase(0, line.find_first_not_of(' '));
    const size_t eq = line.find('=');
    if (eq == std::string::npos || is_local_setting(line.substr(0, eq))) continue;
    names.push_back(line.substr(0, eq));
    out->hashes[out->count++] =
        fnv1a(kFnvOffset, reinterpret_cast<const unsigned char*>(line.data()), line.size());
  }
  return names;
}

// Every rank learns every rank's resolve status and setting hashes, so a
// bad or differing configuration fails the init on all ranks (no rank goes
// on to a collective the others never join).
Result agree_on_config(Transport& transport, Result local_status, const Config& config) {
  const int n = transport.size();
  SettingHashes mine;
  mine.status = local_status;
  const std::vector<std::string> names = agreed_setting_names(config, &mine);
  std::vector<SettingHashes> all(n);
  std::vector<uint64_t> sizes(n, sizeof mine), offsets(n);
  for (int r = 0; r < n; ++r) offsets[r] = r * sizeof mine;
  QCCL_CHECK(transport.allgatherv(&mine, sizeof mine, all.data(), sizes.data(), offsets.data()));
  if (local_status != qcclSuccess) return local_status;  // keeps this rank's own message
  for (int r = 0; r < n; ++r) {
    if (all[r].status != qcclSuccess)
      return fail(qcclInvalidUsage, "rank {} rejected its QCCL_* configuration (see its log)", r);
    for (uint32_t k = 0; k < mine.count; ++k) {
      if (all[r].count != mine.count || all[r].hashes[k] != mine.hashes[k])
        return fail(
            qcclInvalidUsage,
            "configuration differs between ranks: {} on rank {} is not this rank's value "
            "(every QCCL_* setting except DEBUG, TIMELINE, TIMEOUT_S and ON_TIMEOUT must match)",
            names[k], r);
    }
  }
  return qcclSuccess;
}

#ifdef QCCL_HAVE_MPI
Result init_mpi(qcclComm_t* out, const void* mpi_comm, const qcclConfig_t* overrides) {
  QCCL_CHECK(check_init_args(out, overrides));
  if (mpi_comm == nullptr)
    return fail(qcclInvalidArgument, "mpiComm is NULL (pass the address of an MPI_Comm)");
  auto comm = std::make_unique<qcclComm>();
  const Result resolved = resolve_config(overrides, &comm->config);
  const std::string resolve_error = thread_last_error();
  std::unique_ptr<MpiTransport> transport;
  // Until the configuration is agreed, a bad one gets the default timeout.
  const Config& used = resolved == qcclSuccess ? comm->config : Config{};
  const TimeoutPolicy policy{used.timeout_s, used.abort_on_timeout};
  QCCL_CHECK(MpiTransport::create(*static_cast<const MPI_Comm*>(mpi_comm), policy, &transport));
  return finish_comm_init(std::move(comm), resolved, resolve_error, std::move(transport), "MPI",
                          out);
}
#endif

}  // namespace

Result check_init_args(qcclComm_t* out, const qcclConfig_t* overrides) {
  if (out == nullptr) return fail(qcclInvalidArgument, "comm (the output pointer) is NULL");
  *out = nullptr;
  if (overrides != nullptr && overrides->size != sizeof(qcclConfig_t))
    return fail(qcclInvalidArgument,
                "config->size is {}, expected {} (initialise with QCCL_CONFIG_INITIALIZER)",
                overrides->size, sizeof(qcclConfig_t));
  return qcclSuccess;
}

Result finish_comm_init(std::unique_ptr<qcclComm> comm, Result resolved,
                        const std::string& resolve_error, std::unique_ptr<Transport> transport,
                        const char* transport_name, qcclComm_t* out) {
  const Result agreed = agree_on_config(*transport, resolved, comm->config);
  if (agreed != qcclSuccess) {
    if (resolved != qcclSuccess) set_error(resolved, resolve_error);
    return agreed;
  }
  log::set_level(comm->config.debug);
  log::set_rank(transport->rank());
  if (transport->rank() == 0)
    QCCL_LOG_INFO("qccl {}.{}.{} on {} ranks ({}), configuration:\n{}", QCCL_MAJOR, QCCL_MINOR,
                  QCCL_PATCH, transport->size(), transport_name, describe_config(comm->config));
  QCCL_CHECK(create_adapter(comm->config, &comm->adapter));
  comm->transport = std::move(transport);
  comm->collectives = std::make_unique<Collectives>(comm->config, *comm->transport, *comm->adapter);
  register_comm(comm.get());
  *out = comm.release();
  return qcclSuccess;
}

}  // namespace qccl

namespace qccl {

void fill_stats(const CollectiveCounters& c, const Config& config, uint64_t step,
                qcclStats_t* stats) {
  std::memset(stats, 0, sizeof *stats);
  stats->calls = c.calls;
  stats->compressedCalls = c.compressed_calls;
  stats->inputBytes = c.input_bytes;
  stats->wireBytes = c.wire_bytes;
  stats->compressionRatio = c.compressed_payload_bytes == 0
                                ? 0.0
                                : static_cast<double>(c.compressed_input_bytes) /
                                      static_cast<double>(c.compressed_payload_bytes);
  stats->method = static_cast<qcclMethod_t>(config.method);
  stats->bits = c.bits > 0 ? c.bits : config.bits;
  stats->tableVersion = c.table_version;
  stats->numLevels = static_cast<int>(std::min<size_t>(c.levels.size(), QCCL_MAX_LEVELS));
  for (int i = 0; i < stats->numLevels; ++i) stats->levels[i] = c.levels[i];
  stats->predictedVariance = c.predicted_variance;
  stats->step = step;
}

}  // namespace qccl

extern "C" {

qcclResult_t qcclCommInitMpi(qcclComm_t* comm, const void* mpiComm, const qcclConfig_t* config) {
  return qccl::api_call(nullptr, "qcclCommInitMpi", [&] {
#ifdef QCCL_HAVE_MPI
    return qccl::init_mpi(comm, mpiComm, config);
#else
    (void)comm, (void)mpiComm, (void)config;
    return qccl::fail(qcclInvalidUsage, "this qccl was built without MPI (QCCL_WITH_MPI=OFF)");
#endif
  });
}

qcclResult_t qcclCommDestroy(qcclComm_t comm) {
  // On failure the communicator is still alive, and its text is set
  // (api_call touches it only when it is live).
  return qccl::api_call(comm, "qcclCommDestroy", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    // The engine's cycle thread still uses the communicator: destroying it
    // now would be a use-after-free on that thread.
    if (qccl::engine_running(comm)) {
      const qccl::Result r =
          qccl::fail(qcclInvalidUsage,
                     "qcclCommDestroy: the engine of this communicator is running; call "
                     "qcclEngineStop (collective) first");
      comm->last_error = qccl::thread_last_error();  // the communicator lives on
      return r;
    }
    qccl::unregister_comm(comm);
    // The transport goes first: it waits for its own work under the deadline
    // (NCCL: aborting a communicator stuck on a dead peer), so freeing the
    // device workspace afterwards cannot hang. Nothing else calls it here.
    comm->transport.reset();
    delete comm;
    return qcclSuccess;
  });
}

qcclResult_t qcclCommCount(qcclComm_t comm, int* count) {
  return qccl::api_call(comm, "qcclCommCount", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    if (count == nullptr) return qccl::fail(qcclInvalidArgument, "count is NULL");
    *count = comm->transport->size();
    return qcclSuccess;
  });
}

qcclResult_t qcclCommUserRank(qcclComm_t comm, int* rank) {
  return qccl::api_call(comm, "qcclCommUserRank", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    if (rank == nullptr) return qccl::fail(qcclInvalidArgument, "rank is NULL");
    *rank = comm->transport->rank();
    return qcclSuccess;
  });
}

qcclResult_t qcclCommMarkStep(qcclComm_t comm) {
  return qccl::api_call(comm, "qcclCommMarkStep", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    comm->collectives->mark_step();
    return qcclSuccess;
  });
}

qcclResult_t qcclCommSetLearningRate(qcclComm_t comm, double lr) {
  return qccl::api_call(comm, "qcclCommSetLearningRate", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    if (!(lr > 0) || !std::isfinite(lr))
      return qccl::fail(qcclInvalidArgument, "learning rate must be finite and > 0, got {}", lr);
    comm->collectives->set_learning_rate(lr);
    return qcclSuccess;
  });
}

qcclResult_t qcclCommGetStats(qcclComm_t comm, qcclStats_t* stats) {
  return qccl::api_call(comm, "qcclCommGetStats", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    if (stats == nullptr) return qccl::fail(qcclInvalidArgument, "stats is NULL");
    const qccl::CollectiveContext& ctx = comm->collectives->context();
    qccl::fill_stats(ctx.counters, comm->config, ctx.step, stats);
    return qcclSuccess;
  });
}

}  // extern "C"
