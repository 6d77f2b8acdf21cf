// The native half of `import qccl` (docs/design.md §9): a Communicator over an
// MPI communicator or over a Python transport object (python_transport.h;
// qccl.torch's process groups), raw-pointer collectives (the Python layer
// turns numpy / torch / array-interface objects into pointers and dtypes;
// DLPack capsules are parsed in dlpack_buffer.h), stats, and the engine
// with completion handles that Python waits on. Only the public C API is
// used. The engine's callbacks never touch Python: they complete a Handle,
// and Python waits on it with the GIL released. A failing C call raises the
// exception class of its result code with the C library's message
// (docs/python.md "Errors").
#include <mpi.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <condition_variable>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dlpack_buffer.h"
#include "python_transport.h"
#include "qccl/qccl.h"

namespace py = pybind11;

namespace {

// A failed C call: raised as the Python class of `code` (error_classes).
struct QcclError : std::runtime_error {
  QcclError(qcclResult_t result, const std::string& message)
      : std::runtime_error(message), code(result) {}
  qcclResult_t code;
};

// The binding's own refusal of a communicator after close(): the C handle
// is gone, so no C call can say it. A QcclInvalidUsageError in Python.
struct ClosedError : QcclError {
  explicit ClosedError(const std::string& message) : QcclError(qcclInvalidUsage, message) {}
};

// Python exception classes: QcclError (a RuntimeError) and one subclass per
// result code; codes without one raise QcclError itself.
struct ErrorClass {
  qcclResult_t code;
  const char* name;
  const char* doc;
};
constexpr ErrorClass kErrorClasses[] = {
    {qcclInvalidArgument, "QcclInvalidArgumentError",
     "qcclInvalidArgument: a bad argument or configuration value."},
    {qcclInvalidUsage, "QcclInvalidUsageError",
     "qcclInvalidUsage: a call out of order (engine not started or started twice, ...)."},
    {qcclTimeout, "QcclTimeoutError", "qcclTimeout: a collective ran past QCCL_TIMEOUT_S."},
    {qcclTransportError, "QcclTransportError", "qcclTransportError: MPI, NCCL or a transport."},
    {qcclCorruptPayload, "QcclCorruptPayloadError",
     "qcclCorruptPayload: a compressed payload failed validation."},
    {qcclRemoteError, "QcclRemoteError", "qcclRemoteError: another process failed."},
    {qcclSystemError, "QcclSystemError", "qcclSystemError: out of memory or a system call."},
    {qcclUnhandledCudaError, "QcclCudaError", "qcclUnhandledCudaError: a CUDA call failed."},
    {qcclInternalError, "QcclInternalError", "qcclInternalError: a bug in qccl."},
};

// Owned references, created once in the module init (never freed: the
// module lives until the interpreter exits).
PyObject* base_error_class = nullptr;
std::map<std::string, PyObject*>& error_classes() {
  static auto* classes = new std::map<std::string, PyObject*>();
  return *classes;
}

PyObject* class_of(qcclResult_t code) {
  for (const ErrorClass& c : kErrorClasses)
    if (c.code == code) return error_classes().at(c.name);
  return base_error_class;
}

void add_error_class(py::module_& m, const char* name, const char* doc, PyObject* base) {
  PyObject* cls =
      PyErr_NewExceptionWithDoc((std::string("qccl.") + name).c_str(), doc, base, nullptr);
  if (cls == nullptr) throw py::error_already_set();
  error_classes()[name] = cls;
  m.attr(name) = py::handle(cls);
}

void add_error_classes(py::module_& m) {
  base_error_class = PyErr_NewExceptionWithDoc(
      "qccl.QcclError", "A qccl call failed; the message is the C library's.", PyExc_RuntimeError,
      nullptr);
  if (base_error_class == nullptr) throw py::error_already_set();
  m.attr("QcclError") = py::handle(base_error_class);
  for (const ErrorClass& c : kErrorClasses) add_error_class(m, c.name, c.doc, base_error_class);
  add_error_class(m, "QcclClosedError",
                  "The communicator was closed: no call on it is possible any more.",
                  error_classes().at("QcclInvalidUsageError"));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ClosedError& e) {
      PyErr_SetString(error_classes().at("QcclClosedError"), e.what());
    } catch (const QcclError& e) {
      PyErr_SetString(class_of(e.code), e.what());
    }
  });
}

// The C library's text for a failed call. This thread's last error, not the
// communicator's: another thread (the engine's, a second Python thread) may
// overwrite that one meanwhile.
void check(qcclResult_t r) {
  if (r == qcclSuccess) return;
  throw QcclError(r, std::string(qcclGetErrorString(r)) + ": " + qcclGetLastError(nullptr));
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
      throw QcclError(result_, std::string(qcclGetErrorString(result_)) + ": " + error_);
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
    // Checked before MPI is initialised: a bad argument must not start MPI.
    if (!mpi_comm.is_none() && !py::hasattr(mpi_comm, "py2f"))
      throw py::type_error("comm must be an mpi4py communicator (with py2f()) or None");
    set_config();
    ensure_mpi();
    // mpi4py communicators (or anything with py2f): the Fortran handle.
    mpi_ = mpi_comm.is_none() ? MPI_COMM_WORLD : MPI_Comm_f2c(mpi_comm.attr("py2f")().cast<int>());
    py::gil_scoped_release release;
    check(qcclCommInitMpi(&comm_, &mpi_, &config_));
  }
  // Over a Python transport object (no MPI): qcclCommInitTransport.
  struct OverTransport {};
  Communicator(OverTransport, const py::object& transport,
               const std::map<std::string, std::string>& options)
      : options_(options) {
    set_config();
    check(qccl_python::comm_init_python_transport(&comm_, transport, &config_));
  }
  // With the GIL held (pybind11 destroys with it): the engine is stopped
  // before the buffers it writes into are let go.
  ~Communicator() {
    close();
    in_flight_.clear();
  }

  // Idempotent: a second close() does nothing.
  void close() {
    if (engine_started_) {
      engine_started_ = false;
      // The engine's thread may be inside a Python transport callback,
      // waiting for the GIL.
      py::gil_scoped_release release;
      qcclEngineStop(comm_);
    }
    if (comm_ != nullptr) qcclCommDestroy(comm_);
    comm_ = nullptr;
    release_completed();
  }
  qcclComm_t comm() const {
    if (comm_ == nullptr)
      throw ClosedError("this qccl communicator is closed (close() was called); create a new one");
    return comm_;
  }
  int rank() const {
    int r = 0;
    check(qcclCommUserRank(comm(), &r));
    return r;
  }
  int size() const {
    int n = 0;
    check(qcclCommCount(comm(), &n));
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
    check(r);
  }
  void allgather(uintptr_t send, uintptr_t recv, size_t count, int dtype) {
    qcclComm_t c = comm();
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclAllGather(reinterpret_cast<void*>(send), reinterpret_cast<void*>(recv), count,
                        static_cast<qcclDataType_t>(dtype), c, nullptr);
    }
    check(r);
  }
  void mark_step() { check(qcclCommMarkStep(comm())); }
  void set_learning_rate(double lr) { check(qcclCommSetLearningRate(comm(), lr)); }

  py::dict stats(bool engine) const {
    qcclStats_t s;
    check(engine ? qcclEngineGetStats(comm(), &s) : qcclCommGetStats(comm(), &s));
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
  // transport, so direct calls on this communicator keep working. A second
  // start is the C library's qcclInvalidUsage.
  void start_engine() {
    qcclComm_t c = comm();
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclEngineStart(c);
    }
    check(r);
    engine_started_ = true;
  }
  // Collective. Stopping an engine that is not running is the C library's
  // qcclInvalidUsage. Every enqueued buffer has completed afterwards.
  void stop_engine() {
    qcclComm_t c = comm();
    qcclResult_t r;
    {
      py::gil_scoped_release release;
      r = qcclEngineStop(c);
    }
    engine_started_ = false;  // the C library forgets the engine, whatever stop returned
    release_completed();
    check(r);
  }
  bool engine_running() const { return engine_started_; }

  // `keep` (the caller's buffer and its DLPack export) stays referenced
  // here until the engine completes the tensor, whatever the caller drops
  // (docs/python.md "Buffer lifetime").
  std::shared_ptr<Handle> enqueue(const std::string& name, uintptr_t buf, size_t count, int dtype,
                                  int op, bool uncompressed, py::object keep) {
    qcclComm_t c = comm();
    release_completed();
    auto handle = std::make_shared<Handle>();
    handle->keep_alive_ = handle;
    const qcclResult_t r = qcclEnqueueAllReduceFlags(
        c, name.c_str(), reinterpret_cast<void*>(buf), count, static_cast<qcclDataType_t>(dtype),
        static_cast<qcclRedOp_t>(op), uncompressed ? QCCL_ENQUEUE_UNCOMPRESSED : 0u,
        &Handle::callback, handle.get());
    if (r != qcclSuccess) {
      handle->keep_alive_.reset();
      check(r);
    }
    in_flight_.push_back({handle, std::move(keep)});
    return handle;
  }
  // Buffers still referenced for the engine (completed ones go at the next
  // enqueue, stop_engine or close).
  size_t buffers_held() const { return in_flight_.size(); }

 private:
  struct InFlight {
    std::shared_ptr<Handle> handle;
    py::object keep;
  };

  // Drops the references of completed tensors. Called with the GIL held
  // only (the engine's callback never touches Python objects). The last
  // reference may run arbitrary Python (__del__, a DLPack deleter) that
  // calls back into this communicator: they are dropped after in_flight_
  // is consistent again.
  void release_completed() {
    std::vector<InFlight> completed;
    auto pending_end = std::stable_partition(in_flight_.begin(), in_flight_.end(),
                                             [](const InFlight& f) { return !f.handle->done(); });
    std::move(pending_end, in_flight_.end(), std::back_inserter(completed));
    in_flight_.erase(pending_end, in_flight_.end());
  }

  // Config fields from options_ (the strings stay alive with this object).
  void set_config() {
    config_ = QCCL_CONFIG_INITIALIZER;
    for (const auto& [key, value] : options_) {
      auto it = config_fields().find(key);
      if (it == config_fields().end())
        throw py::value_error("unknown qccl option '" + key +
                              "' (see docs/python.md for the list)");
      if (value.find('\0') != std::string::npos)
        throw py::value_error("qccl option '" + key + "' contains a NUL character");
      config_.*(it->second) = value.c_str();
    }
  }

  std::map<std::string, std::string> options_;
  qcclConfig_t config_;
  MPI_Comm mpi_ = MPI_COMM_NULL;
  qcclComm_t comm_ = nullptr;
  bool engine_started_ = false;      // qcclEngineStart ran on comm_
  std::vector<InFlight> in_flight_;  // enqueued buffers, touched with the GIL held
};

}  // namespace

PYBIND11_MODULE(_qccl, m) {
  m.doc() = "qccl native module (use the `qccl` package)";
  add_error_classes(m);
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
      .def("engine_running", &Communicator::engine_running)
      .def("enqueue", &Communicator::enqueue)
      .def("buffers_held", &Communicator::buffers_held);
}
