#include "python_transport.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

namespace py = pybind11;

namespace qccl_python {
namespace {

// The ctx of the ops: the Python object and the text of its last exception.
// Only touched with the GIL held.
struct PythonTransport {
  PythonTransport(py::object t, int n) : transport(std::move(t)), nranks(n) {}
  py::object transport;
  int nranks;
  std::string last_error;
};

// A method of the transport, or None when it has none (optional ones fall
// back to qccl's allgatherv-based versions).
py::object method(const py::object& transport, const char* name) {
  return py::getattr(transport, name, py::none());
}

// Runs `body` on the transport with the GIL held; a Python exception becomes
// a failed callback whose lastError is the exception's text.
template <typename Body>
qcclResult_t call(void* ctx, Body&& body) {
  auto* self = static_cast<PythonTransport*>(ctx);
  py::gil_scoped_acquire gil;
  try {
    body(self->transport, self->nranks);
    return qcclSuccess;
  } catch (py::error_already_set& e) {
    // "Type: message", without the traceback pybind11 appends to what().
    self->last_error =
        std::string(py::str(e.type().attr("__name__"))) + ": " + std::string(py::str(e.value()));
  } catch (const std::exception& e) {
    self->last_error = e.what();
  }
  return qcclTransportError;
}

// Views valid during the call only: a transport must copy what it keeps.
// An empty piece may come with a NULL pointer; Python gets an empty view.
char g_empty[1];
py::memoryview readonly_view(const void* data, uint64_t bytes) {
  return py::memoryview::from_memory(data != nullptr ? data : g_empty,
                                     static_cast<py::ssize_t>(bytes));
}
py::memoryview writable_view(void* data, uint64_t bytes) {
  return py::memoryview::from_memory(data != nullptr ? data : g_empty,
                                     static_cast<py::ssize_t>(bytes), false);
}

py::list to_list(const uint64_t* values, int n) {
  py::list out;
  for (int r = 0; r < n; ++r) out.append(values[r]);
  return out;
}

// Bytes from the start of a receive area to the end of its last piece.
uint64_t extent(const uint64_t* bytes, const uint64_t* offsets, int n) {
  uint64_t end = 0;
  for (int r = 0; r < n; ++r) end = std::max(end, offsets[r] + bytes[r]);
  return end;
}

qcclResult_t allgatherv(void* ctx, const void* send, uint64_t send_bytes, void* recv,
                        const uint64_t* recv_bytes, const uint64_t* recv_offsets) {
  return call(ctx, [&](const py::object& t, int n) {
    t.attr("allgatherv")(readonly_view(send, send_bytes),
                         writable_view(recv, extent(recv_bytes, recv_offsets, n)),
                         to_list(recv_bytes, n), to_list(recv_offsets, n));
  });
}

qcclResult_t alltoallv(void* ctx, const void* send, const uint64_t* send_bytes,
                       const uint64_t* send_offsets, void* recv, const uint64_t* recv_bytes,
                       const uint64_t* recv_offsets) {
  return call(ctx, [&](const py::object& t, int n) {
    t.attr("alltoallv")(readonly_view(send, extent(send_bytes, send_offsets, n)),
                        to_list(send_bytes, n), to_list(send_offsets, n),
                        writable_view(recv, extent(recv_bytes, recv_offsets, n)),
                        to_list(recv_bytes, n), to_list(recv_offsets, n));
  });
}

qcclResult_t allreduce_sum(void* ctx, double* values, size_t count) {
  return call(ctx, [&](const py::object& t, int) {
    t.attr("allreduce_sum")(writable_view(values, count * sizeof(double)));
  });
}

const char* dtype_name(qcclDataType_t dtype) {
  switch (dtype) {
    case qcclFloat32: return "float32";
    case qcclFloat16: return "float16";
    case qcclBfloat16: return "bfloat16";
    default: return "unknown";
  }
}

// In place for Python: qccl's send is copied to recv first.
qcclResult_t allreduce_passthrough(void* ctx, const void* send, void* recv, size_t count,
                                   qcclDataType_t dtype) {
  const size_t bytes = count * (dtype == qcclFloat32 ? 4 : 2);
  if (send != recv && bytes > 0) std::memmove(recv, send, bytes);
  return call(ctx, [&](const py::object& t, int) {
    t.attr("allreduce_passthrough")(writable_view(recv, bytes), dtype_name(dtype));
  });
}

qcclResult_t barrier(void* ctx) {
  return call(ctx, [&](const py::object& t, int) { t.attr("barrier")(); });
}

qcclResult_t duplicate(void* ctx, void** new_ctx) {
  return call(ctx, [&](const py::object& t, int n) {
    py::object copy = t.attr("duplicate")();
    if (copy.attr("size").cast<int>() != n ||
        copy.attr("rank").cast<int>() != t.attr("rank").cast<int>())
      throw py::value_error("duplicate() returned a transport over other ranks");
    *new_ctx = new PythonTransport(std::move(copy), n);
  });
}

void destroy(void* ctx) {
  // After interpreter shutdown the object can only be leaked.
  if (!Py_IsInitialized()) return;
  py::gil_scoped_acquire gil;
  delete static_cast<PythonTransport*>(ctx);
}

const char* last_error(void* ctx) {
  return static_cast<PythonTransport*>(ctx)->last_error.c_str();
}

int int_attribute(const py::object& transport, const char* name) {
  py::object value = py::getattr(transport, name, py::none());
  if (!py::isinstance<py::int_>(value))
    throw py::type_error(std::string("the transport's `") + name + "` must be an int, got " +
                         std::string(py::str(py::type::of(value).attr("__name__"))));
  return value.cast<int>();
}

}  // namespace

qcclResult_t comm_init_python_transport(qcclComm_t* comm, const py::object& transport,
                                        const qcclConfig_t* config) {
  qcclTransportOps_t ops = QCCL_TRANSPORT_OPS_INITIALIZER;
  ops.rank = int_attribute(transport, "rank");
  ops.nranks = int_attribute(transport, "size");
  if (method(transport, "allgatherv").is_none())
    throw py::type_error(
        "the transport has no allgatherv(send, recv, recv_bytes, recv_offsets) method (the one "
        "that is required; see docs/python.md)");
  auto ctx = std::make_unique<PythonTransport>(transport, ops.nranks);
  ops.ctx = ctx.get();
  ops.allgatherv = &allgatherv;
  if (!method(transport, "alltoallv").is_none()) ops.alltoallv = &alltoallv;
  if (!method(transport, "allreduce_sum").is_none()) ops.allreduceSum = &allreduce_sum;
  if (!method(transport, "allreduce_passthrough").is_none())
    ops.allreducePassthrough = &allreduce_passthrough;
  if (!method(transport, "barrier").is_none()) ops.barrier = &barrier;
  if (!method(transport, "duplicate").is_none()) ops.duplicate = &duplicate;
  ops.destroy = &destroy;
  ops.lastError = &last_error;
  qcclResult_t r;
  {
    py::gil_scoped_release release;
    r = qcclCommInitTransport(comm, &ops, config);
  }
  if (r == qcclSuccess) ctx.release();  // the communicator owns it now (qccl.h)
  return r;
}

}  // namespace qccl_python
