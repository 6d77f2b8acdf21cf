// The engine's C API (include/qccl/qccl.h, docs/design.md §8). Engines
// live in a registry keyed by communicator until qcclComm grows an engine
// member (docs/engine.md); shared_ptr so an enqueue racing a stop never
// touches a destroyed engine.
#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "api/comm.h"
#include "collective/call_size.h"
#include "engine/engine.h"
#include "qccl/qccl.h"

namespace qccl {
namespace {

std::mutex registry_mutex;
std::map<qcclComm_t, std::shared_ptr<Engine>>& registry() {
  static auto* engines = new std::map<qcclComm_t, std::shared_ptr<Engine>>();
  return *engines;
}

Result find_engine(qcclComm_t comm, std::shared_ptr<Engine>* out) {
  QCCL_CHECK(check_comm(comm));
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto it = registry().find(comm);
  if (it == registry().end() || it->second == nullptr)  // null: still starting
    return fail(qcclInvalidUsage,
                "the engine of this communicator is not started (call "
                "qcclEngineStart on every rank first)");
  *out = it->second;
  return qcclSuccess;
}

// datatype and op are the raw ints the caller passed (raw_enum): checked
// before they are used as enums.
Result enqueue(qcclComm_t comm, const char* name, void* buf, size_t count, int datatype, int op,
               unsigned flags, qcclEngineCallback_t callback, void* user) {
  std::shared_ptr<Engine> engine;
  QCCL_CHECK(find_engine(comm, &engine));
  if (name == nullptr || name[0] == '\0')
    return fail(qcclInvalidArgument, "name is NULL or empty: every tensor needs a unique name");
  if (buf == nullptr && count > 0) return fail(qcclInvalidArgument, "buf of '{}' is NULL", name);
  if (!valid_dtype(datatype))
    return fail(qcclInvalidArgument,
                "datatype {} of '{}' is not one of qcclFloat32, qcclFloat16, qcclBfloat16",
                datatype, name);
  if (op != qcclSum && op != qcclAvg)
    return fail(qcclInvalidArgument, "reduction op {} of '{}' is not qcclSum or qcclAvg", op, name);
  if ((flags & ~QCCL_ENQUEUE_UNCOMPRESSED) != 0)
    return fail(qcclInvalidArgument, "unknown flags {:#x} for '{}'", flags, name);
  const std::string what = fmt::format("count of '{}'", name);
  QCCL_CHECK(check_call_size(CollectiveKind::kAllReduce, count, static_cast<DataType>(datatype),
                             comm->collectives->size(), what.c_str()));
  return engine->enqueue(name, buf, count, static_cast<DataType>(datatype), op == qcclAvg,
                         (flags & QCCL_ENQUEUE_UNCOMPRESSED) != 0, callback, user);
}

// The engine gets a duplicate of the communicator's transport, so direct
// calls on the communicator keep working while it runs, and an adapter of
// its own: an adapter's state follows one sequence of steps and calls
// that every rank makes in the same order (adapter.h), and the engine's
// thread and direct callers interleave differently on each rank.
Result create_engine(qcclComm_t comm, std::shared_ptr<Engine>* out) {
  // Every rank must be starting its engine now, not in another call on
  // this communicator (which would pair with the duplication below).
  QCCL_CHECK(comm->collectives->agree_on_operation(kEngineStartCall));
  std::unique_ptr<Transport> transport;
  const Result duplicated = comm->transport->duplicate(&transport);
  if (duplicated != qcclSuccess)
    return set_error(duplicated,
                     fmt::format("the engine needs its own duplicate of the communicator's "
                                 "transport (so that direct calls keep working beside it), and "
                                 "duplicating it failed: {}",
                                 thread_last_error()));
  std::unique_ptr<Adapter> adapter;
  QCCL_CHECK(create_adapter(comm->config, &adapter));
  *out = std::make_shared<Engine>(comm->config, std::move(transport), std::move(adapter));
  return (*out)->start();
}

}  // namespace
}  // namespace qccl

namespace qccl {
bool engine_running(qcclComm_t comm) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  return registry().count(comm) != 0;
}
}  // namespace qccl

extern "C" {

qcclResult_t qcclEngineStart(qcclComm_t comm) {
  return qccl::api_call(comm, "qcclEngineStart", [&] {
    QCCL_CHECK(qccl::check_comm(comm));
    {
      std::lock_guard<std::mutex> lock(qccl::registry_mutex);
      if (qccl::registry().count(comm) != 0)
        return qccl::fail(qcclInvalidUsage, "the engine of this communicator is already started");
      qccl::registry()[comm] = nullptr;  // reserved: qcclCommDestroy refuses meanwhile
    }
    // Outside the lock: duplicating the transport is a collective that waits
    // on the other ranks, and other communicators' engines need the registry.
    std::shared_ptr<qccl::Engine> engine;
    const qccl::Result created = qccl::create_engine(comm, &engine);
    std::lock_guard<std::mutex> lock(qccl::registry_mutex);
    if (created != qcclSuccess) {
      qccl::registry().erase(comm);
      return created;
    }
    qccl::registry()[comm] = std::move(engine);
    return qcclSuccess;
  });
}

qcclResult_t qcclEngineStop(qcclComm_t comm) {
  return qccl::api_call(comm, "qcclEngineStop", [&] {
    std::shared_ptr<qccl::Engine> engine;
    QCCL_CHECK(qccl::find_engine(comm, &engine));
    {
      std::lock_guard<std::mutex> lock(qccl::registry_mutex);
      qccl::registry().erase(comm);
    }
    return engine->stop();
  });
}

qcclResult_t qcclEnqueueAllReduce(qcclComm_t comm, const char* name, void* buf, size_t count,
                                  qcclDataType_t datatype, qcclRedOp_t op,
                                  qcclEngineCallback_t callback, void* user) {
  return qccl::api_call(comm, "qcclEnqueueAllReduce", [&] {
    return qccl::enqueue(comm, name, buf, count, qccl::raw_enum(&datatype), qccl::raw_enum(&op), 0,
                         callback, user);
  });
}

qcclResult_t qcclEnqueueAllReduceFlags(qcclComm_t comm, const char* name, void* buf, size_t count,
                                       qcclDataType_t datatype, qcclRedOp_t op, unsigned flags,
                                       qcclEngineCallback_t callback, void* user) {
  return qccl::api_call(comm, "qcclEnqueueAllReduceFlags", [&] {
    return qccl::enqueue(comm, name, buf, count, qccl::raw_enum(&datatype), qccl::raw_enum(&op),
                         flags, callback, user);
  });
}

qcclResult_t qcclEngineGetStats(qcclComm_t comm, qcclStats_t* stats) {
  return qccl::api_call(comm, "qcclEngineGetStats", [&] {
    std::shared_ptr<qccl::Engine> engine;
    QCCL_CHECK(qccl::find_engine(comm, &engine));
    if (stats == nullptr) return qccl::fail(qcclInvalidArgument, "stats is NULL");
    const qccl::EngineCounters e = engine->counters();
    qccl::fill_stats(e.collective, comm->config, e.step, stats);
    return qcclSuccess;
  });
}

}  // extern "C"
