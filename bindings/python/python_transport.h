// A qcclTransportOps_t whose callbacks call a Python object (docs/python.md
// "Bring your own transport"): qccl.torch's process-group transport, or any
// object with the same methods. Only the public C API is used.
#pragma once

#include <pybind11/pybind11.h>

#include "qccl/qccl.h"

namespace qccl_python {

// Creates a communicator over `transport` with qcclCommInitTransport. Call
// with the GIL held: it checks the object (py::type_error for one without
// rank, size or allgatherv) and releases the GIL during the collective
// init; every callback takes the GIL again. On success the communicator
// holds a reference to `transport` until it (or the engine's duplicate)
// is destroyed.
qcclResult_t comm_init_python_transport(qcclComm_t* comm, const pybind11::object& transport,
                                        const qcclConfig_t* config);

}  // namespace qccl_python
