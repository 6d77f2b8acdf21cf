// The native half of `import qccl` (docs/design.md §9): a Communicator over an
// MPI communicator or over a Python transport object (python_transport.h;
// qccl.torch's process groups), raw-pointer collectives (the Python layer
// turns numpy / torch / array-interface objects into pointers and dtypes;
// DLPack capsules are parsed in dlpack_buffer.h), stats, and the engine
// with completion handles that Python waits on. Only the public C API is
// used. The engine's callbacks never touch Python: they complete a Handle,
// and Python waits on it with the GIL released.
#include <mpi.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "dlpack_buffer.h"
#include "python_transport.h"
#include "qccl/qccl.h"

namespace py = pybind11;

namespace {

struct QcclError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(qcclResult_t r, qcclComm_t comm) {
  if (r == qcclSuccess) return;
  throw QcclError(std::string(qcclGetErrorString(r)) + ": " + qcclGetLastError(comm));
}

bool mpi_initialized_here = false;  // then qccl finalizes it at exit

void ensure_mpi() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  // The engine thread and direct calls may use MPI at the same time.
  int provided = 0;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  mpi_initialized_here = true;
}

// Config fields by keyword name; strings kept alive with the struct.
const std::map<std::string, const char * qcclConfig_t::*>& config_fields() {
  static const std::map<std::string, const char* qcclConfig_t::*> fields = {
      {"method", &qcclConfig_t::method},
      {"bits", &qcclConfig_t::bits},
      {"bucket_size", &qcclConfig_t::bucketSize},
      {"norm", &qcclConfig_t::norm},
      {"algo", &qcclConfig_t::algo},
      {"min_compress_bytes", &qcclConfig_t::minCompressBytes},
      {"seed", &qcclConfig_t::seed},
      {"update_steps", &qcclConfig_t::updateSteps},
      {"update_every", &qcclConfig_t::updateEvery},
      {"model", &qcclConfig_t::model},
      {"error_feedback", &qcclConfig_t::errorFeedback},
      {"fusion_threshold", &qcclConfig_t::fusionThreshold},
      {"cycle_time_ms", &qcclConfig_t::cycleTimeMs},
      {"timeline", &qcclConfig_t::timeline},
      {"debug", &qcclConfig_t::debug},
      {"timeout_s", &qcclConfig_t::timeoutS},
      {"compress_one_rank", &qcclConfig_t::compressOneRank},
      {"on_timeout", &qcclConfig_t::onTimeout},
  };
  return fields;
}

// Completion of one engine tensor.
class Handle {
 public:
  static void callback(qcclResult_t result, const char*, const char* error, void* user) {
    auto* self = static_cast<Handle*>(user);
    std::shared_ptr<Handle> last_reference;  // released after the unlock
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->result_ = result;
    self->error_ = error;
    self->done_ = true;
    self->cv_.notify_all();
    last_reference = std::move(self->keep_alive_);
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }
  // Waits (GIL released by the binding) and raises on failure.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return done_; });
    if (result_ != qcclSuccess)
      throw QcclError(std::string(qcclGetErrorString(result_)) + ": " + error_);
  }
  std::shared_ptr<Handle> keep_alive_;  // held by the engine until the callback

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  qcclResult_t result_ = qcclInternalError;
  std::string error_;
};

class Communicator {
 public:
  Communicator(py::object mpi_comm, const std::map<std::string, std::string>& options)
      : options_(options) {
    ensure_mpi();
    if (mpi_comm.is_none()) {
      mpi_ = MPI_COMM_WORLD;
    } else {
      // mpi4py communicators (or anything with py2f): the Fortran handle.
      if (!py::hasattr(mpi_comm, "py2f"))
        throw py::type_error("comm must be an mpi4py communicator (with py2f()) or None");
      mpi_ = MPI_Comm_f2c(mpi_comm.attr("py2f")().cast<int>());
    }
    set_config();
    py::gil_scoped_release release;
    check(qcclCommInitMpi(&comm_, &mpi_, &config_), nullptr);
  }
  // Over a Python transport object (no MPI): qcclCommInitTransport.
  struct OverTransport {};
  Communicator(OverTransport, const py::object& transport,
               const std::map<std::string, std::string>& options)
      : options_(options) {
    set_config();
    check(qccl_python::comm_init_python_transport(&comm_, transport, &config_), nullptr);
  }
  ~Communicator() { close(); }

  void close() {
    if (engine_started_) {
      // The engine's thread may be inside a Python transport callback,
      // waiting for the GIL.
      py::gil_scoped_release release;
      qcclEngineStop(comm_);
    }
    engine_started_ = false;
    if (comm_ != nullptr) qcclCommDestroy(comm_);
    comm_ = nullptr;
  }
  qcclComm_t comm() const {
    if (comm_ == nullptr) throw QcclError("this qccl communicator is closed");
    return comm_;
  }
  int rank() const {
    int r = 0;
    check(qcclCommUserRank(comm(), &r), comm_);
    return r;
  }
  int size() const {
    int n = 0;
    check(qcclCommCount(comm(), &n), comm_);
    return n;
  }
  void allreduce(uintptr_t send, uintptr_t recv, size_t count, int dtype, int op) {
    qcclComm_t c = comm();
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclAllReduce(reinterpret_cast<void*>(send), reinterpret_cast<void*>(recv), count,
                        static_cast<qcclDataType_t>(dtype), static_cast<qcclRedOp_t>(op), c,
                        nullptr);
    }
    check(r, c);
  }
  void allgather(uintptr_t send, uintptr_t recv, size_t count, int dtype) {
    qcclComm_t c = comm();
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclAllGather(reinterpret_cast<void*>(send), reinterpret_cast<void*>(recv), count,
                        static_cast<qcclDataType_t>(dtype), c, nullptr);
    }
    check(r, c);
  }
  void mark_step() { check(qcclCommMarkStep(comm()), comm_); }
  void set_learning_rate(double lr) { check(qcclCommSetLearningRate(comm(), lr), comm_); }

  py::dict stats(bool engine) const {
    qcclStats_t s;
    if (engine) {
      if (!engine_started_) throw QcclError("the engine is not started");
      check(qcclEngineGetStats(comm(), &s), comm_);
    } else {
      check(qcclCommGetStats(comm(), &s), comm_);
    }
    py::dict d;
    d["calls"] = s.calls;
    d["compressed_calls"] = s.compressedCalls;
    d["input_bytes"] = s.inputBytes;
    d["wire_bytes"] = s.wireBytes;
    d["compression_ratio"] = s.compressionRatio;
    d["method"] = static_cast<int>(s.method);
    d["bits"] = s.bits;
    d["table_version"] = s.tableVersion;
    py::list levels;
    for (int i = 0; i < s.numLevels; ++i) levels.append(s.levels[i]);
    d["levels"] = levels;
    d["predicted_variance"] = s.predictedVariance;
    d["step"] = s.step;
    return d;
  }

  // Collective. The engine runs on its own duplicate of this communicator's
  // transport, so direct calls on this communicator keep working.
  void start_engine() {
    if (engine_started_) return;
    qcclComm_t c = comm();
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclEngineStart(c);
    }
    check(r, c);
    engine_started_ = true;
  }
  void stop_engine() {
    if (!engine_started_) return;
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclEngineStop(comm_);
    }
    engine_started_ = false;
    check(r, comm_);
  }
  std::shared_ptr<Handle> enqueue(const std::string& name, uintptr_t buf, size_t count, int dtype,
                                  int op, bool uncompressed) {
    if (!engine_started_) throw QcclError("the engine is not started (start_engine())");
    auto handle = std::make_shared<Handle>();
    handle->keep_alive_ = handle;
    const qcclResult_t r = qcclEnqueueAllReduceFlags(
        comm_, name.c_str(), reinterpret_cast<void*>(buf), count,
        static_cast<qcclDataType_t>(dtype), static_cast<qcclRedOp_t>(op),
        uncompressed ? QCCL_ENQUEUE_UNCOMPRESSED : 0u, &Handle::callback, handle.get());
    if (r != qcclSuccess) {
      handle->keep_alive_.reset();
      check(r, comm_);
    }
    return handle;
  }

 private:
  // Config fields from options_ (the strings stay alive with this object).
  void set_config() {
    config_ = QCCL_CONFIG_INITIALIZER;
    for (const auto& [key, value] : options_) {
      auto it = config_fields().find(key);
      if (it == config_fields().end())
        throw py::value_error("unknown qccl option '" + key +
                              "' (see docs/python.md for the list)");
      config_.*(it->second) = value.c_str();
    }
  }

  std::map<std::string, std::string> options_;
  qcclConfig_t config_;
  MPI_Comm mpi_ = MPI_COMM_NULL;
  qcclComm_t comm_ = nullptr;
  bool engine_started_ = false;  // qcclEngineStart ran on comm_
};

}  // namespace

PYBIND11_MODULE(_qccl, m) {
  m.doc() = "qccl native module (use the `qccl` package)";
  py::register_exception<QcclError>(m, "QcclError", PyExc_RuntimeError);
  m.def("mpi_world", [] {
    ensure_mpi();
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return py::make_tuple(rank, size);
  });
  m.def("mpi_broadcast_int", [](int value, int root) {
    ensure_mpi();
    MPI_Bcast(&value, 1, MPI_INT, root, MPI_COMM_WORLD);
    return value;
  });
  m.def("mpi_barrier", [] {
    ensure_mpi();
    py::gil_scoped_release release;
    MPI_Barrier(MPI_COMM_WORLD);
  });
  m.def("mpi_initialized", [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    return initialized != 0;
  });
  m.def("mpi_finalize_if_initialized_here", [] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (mpi_initialized_here && !finalized) MPI_Finalize();
  });
  m.def("version", [] {
    int v = 0;
    qcclGetVersion(&v);
    return v;
  });
  // Python keeps it until the native call (or the engine's handle) is done.
  py::class_<qccl_python::DLPackBuffer>(m, "DLPackBuffer")
      .def(py::init<const py::object&>())
      .def_property_readonly("pointer", &qccl_python::DLPackBuffer::pointer)
      .def_property_readonly("count", &qccl_python::DLPackBuffer::count)
      .def_property_readonly("dtype", &qccl_python::DLPackBuffer::dtype)
      .def_property_readonly("device_type", &qccl_python::DLPackBuffer::device_type)
      .def("release", &qccl_python::DLPackBuffer::release);
  py::class_<Handle, std::shared_ptr<Handle>>(m, "Handle")
      .def("done", &Handle::done)
      .def("wait", &Handle::wait, py::call_guard<py::gil_scoped_release>());
  py::class_<Communicator>(m, "Communicator")
      .def(py::init<py::object, const std::map<std::string, std::string>&>())
      .def_static("over_transport",
                  [](const py::object& transport, const std::map<std::string, std::string>& o) {
                    return std::make_unique<Communicator>(Communicator::OverTransport{}, transport,
                                                          o);
                  })
      .def("close", &Communicator::close)
      .def("rank", &Communicator::rank)
      .def("size", &Communicator::size)
      .def("allreduce", &Communicator::allreduce)
      .def("allgather", &Communicator::allgather)
      .def("mark_step", &Communicator::mark_step)
      .def("set_learning_rate", &Communicator::set_learning_rate)
      .def("stats", &Communicator::stats, py::arg("engine") = false)
      .def("start_engine", &Communicator::start_engine)
      .def("stop_engine", &Communicator::stop_engine)
      .def("enqueue", &Communicator::enqueue);
}
