#include "codec/device_backend.h"

#include <atomic>

namespace qccl {

#ifdef QCCL_HAVE_CUDA
DeviceBackend* cuda_device_backend();  // cuda_codec.cu
#endif

namespace {
std::atomic<DeviceBackend*> installed{nullptr};
}  // namespace

DeviceBackend* device_backend() {
  if (DeviceBackend* b = installed.load(std::memory_order_acquire)) return b;
#ifdef QCCL_HAVE_CUDA
  return cuda_device_backend();
#else
  return nullptr;
#endif
}

void install_device_backend(DeviceBackend* backend) {
  installed.store(backend, std::memory_order_release);
}

}  // namespace qccl
