// Where device memory comes from in this process (docs/gpu.md "Buffer
// placement"): the CUDA runtime in a CUDA build, a stand-in that tests
// install (test/unit/fake_device.h), or none. The API layer asks it where a
// buffer lives; the collective layer gets its device codec from it.
#pragma once

#include <memory>

#include "codec/codec.h"

namespace qccl {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual const char* name() const = 0;
  // Whether `p` is device memory. Must not create a device context for a
  // host pointer: host-buffer calls in a CUDA build leave the GPUs alone.
  virtual bool is_device_memory(const void* p) const = 0;
  // The device that holds `p` (device memory), for a communicator's first
  // device call.
  virtual Result device_of(const void* p, int* device) const = 0;
  // Makes `device` current for the calling thread; *previous receives the
  // one to restore.
  virtual Result set_device(int device, int* previous) = 0;
  // A codec working on `device`'s memory.
  virtual Result make_codec(int device, std::unique_ptr<Codec>* out) = 0;
};

// The installed backend, else the build's default (CUDA builds: the CUDA
// runtime's), else null: then every buffer is host memory.
DeviceBackend* device_backend();

// Tests: make `backend` the process's backend (null: back to the default).
// Not thread-safe against running collectives.
void install_device_backend(DeviceBackend* backend);

}  // namespace qccl
