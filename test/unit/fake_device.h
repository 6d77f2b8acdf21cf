// A device for CPU CI (docs/gpu.md "Testing without a GPU"): the Codec
// face of a device (codec/codec.h) and a DeviceBackend, on host memory.
// "Device memory" is host memory this backend allocated (so the API routes
// it down the device path); each stream is a worker thread that runs the
// enqueued work in order, so work enqueued on the wrong stream, or read
// before its stream has run it, gives a wrong result (and a report under
// TSan). Payload checks run on the "device" as CudaCodec's do: a bad
// payload sets the output to NaN and is reported by take_deferred_error().
// Counters let tests see synchronisations, allocations and device switches.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "codec/device_backend.h"
#include "codec/host_codec.h"
#include "codec/payload_format.h"

namespace qccl::fake {

// A stream: one worker thread running tasks in order.
class FakeStream {
 public:
  FakeStream() : worker_([this] { run(); }) {}
  ~FakeStream() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  FakeStream(const FakeStream&) = delete;
  FakeStream& operator=(const FakeStream&) = delete;

  void enqueue(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
      ++enqueued_;
    }
    cv_.notify_all();
  }
  // Until every task enqueued so far has run.
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t target = enqueued_;
    cv_.wait(lock, [&] { return done_ >= target; });
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      ++done_;
      cv_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  uint64_t enqueued_ = 0, done_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

class FakeDevice;

class FakeDeviceCodec final : public Codec {
 public:
  explicit FakeDeviceCodec(FakeDevice& device);
  const char* name() const override { return "fake-device"; }
  bool on_device() const override { return true; }
  bool owns(const void* p) const override;
  void set_stream(void* stream) override;

  Result encode(const void* in, DataType dtype, uint64_t count, const EncodeSpec& spec, void* out,
                uint64_t capacity, EncodeStats* stats) override {
    // Argument and spec checks at enqueue, like CudaCodec.
    PayloadHeader header;
    QCCL_CHECK(make_payload_header(spec, count, &header));
    if (capacity < header.total_bytes)
      return fail(qcclInvalidArgument, "encode: output capacity {} bytes < payload size {} bytes",
                  capacity, header.total_bytes);
    if (reinterpret_cast<uintptr_t>(out) % 4 != 0)
      return fail(qcclInvalidArgument, "encode: output buffer {} is not 4-byte aligned", out);
    // The table is copied at enqueue (CudaCodec passes it by value): the
    // caller's may be gone when the work runs.
    auto levels = std::make_shared<std::vector<float>>(spec.levels, spec.levels + spec.num_levels);
    EncodeSpec copy = spec;
    enqueue([=] {
      EncodeSpec s = copy;
      s.levels = levels->data();
      if (host_codec().encode(in, dtype, count, s, out, capacity, nullptr) != qcclSuccess)
        late_error_ = true;
    });
    if (stats == nullptr) return qcclSuccess;
    // Statistics are host data: like CudaCodec, wait for them.
    QCCL_CHECK(synchronize());
    std::vector<unsigned char> scratch(header.total_bytes);
    return host_codec().encode(in, dtype, count, spec, scratch.data(), scratch.size(), stats);
  }

  Result decode_sum(const void* payloads, uint64_t stride, int n, const PayloadHeader& expected,
                    float* out, bool accumulate, int* failed) override {
    *failed = -1;
    QuantLayout layout;
    QCCL_CHECK(check_payload_header(expected, expected.total_bytes, qcclInvalidArgument,
                                    "decode: expected header", &layout));
    if (reinterpret_cast<uintptr_t>(payloads) % 4 != 0 || stride % 4 != 0)
      return fail(qcclInvalidArgument, "decode: payloads at {} with stride {} are not aligned",
                  payloads, stride);
    enqueue([=] {
      int bad = -1;
      clear_thread_error();
      if (host_codec().decode_sum(payloads, stride, n, expected, out, accumulate, &bad) ==
          qcclSuccess)
        return;
      // As the device check does: NaN, never a plausible sum; reported later.
      const uint32_t nan_bits = 0x7fc00000u;
      for (uint64_t i = 0; i < expected.count; ++i) std::memcpy(out + i, &nan_bits, 4);
      corrupt_ = true;
    });
    return qcclSuccess;
  }

  Result scale(float* x, uint64_t count, float factor) override {
    enqueue([=] { host_codec().scale(x, count, factor); });
    return qcclSuccess;
  }
  Result cast_from_float(const float* in, uint64_t count, DataType dtype, void* out) override {
    enqueue([=] { host_codec().cast_from_float(in, count, dtype, out); });
    return qcclSuccess;
  }
  Result cast_to_float(const void* in, uint64_t count, DataType dtype, float* out) override {
    enqueue([=] { host_codec().cast_to_float(in, count, dtype, out); });
    return qcclSuccess;
  }
  Result sum_of_squares(const void* in, DataType dtype, uint64_t count, double* out) override {
    auto result = std::make_shared<double>(0);
    enqueue([=] { host_codec().sum_of_squares(in, dtype, count, result.get()); });
    QCCL_CHECK(synchronize());
    *out = *result;
    return qcclSuccess;
  }
  Result take_deferred_error() override {
    if (late_error_.exchange(false))
      return fail(qcclInternalError, "fake device: an enqueued encode failed");
    if (corrupt_.exchange(false))
      return fail(qcclCorruptPayload,
                  "payload: an earlier device decode met a payload whose header or table "
                  "checksum did not match the agreed layout (its output was set to NaN)");
    return qcclSuccess;
  }

  Result allocate(uint64_t bytes, void** out) override;
  void release(void* p) override;
  Result copy_to_host(void* host, const void* src, uint64_t bytes) override {
    enqueue([=] { std::memmove(host, src, bytes); });
    return qcclSuccess;
  }
  Result copy_from_host(void* dst, const void* host, uint64_t bytes) override {
    enqueue([=] { std::memmove(dst, host, bytes); });
    return qcclSuccess;
  }
  Result copy(void* dst, const void* src, uint64_t bytes) override {
    enqueue([=] { std::memmove(dst, src, bytes); });
    return qcclSuccess;
  }
  Result synchronize() override;

 private:
  void enqueue(std::function<void()> task);
  FakeDevice& device_;
  FakeStream* stream_;
  std::atomic<bool> corrupt_{false}, late_error_{false};
};

class FakeDevice final : public DeviceBackend {
 public:
  FakeDevice() { install_device_backend(this); }
  ~FakeDevice() override { install_device_backend(nullptr); }

  // Device memory for tests (and for the codec's workspace).
  void* alloc(uint64_t bytes) {
    void* p = std::calloc(bytes == 0 ? 1 : bytes, 1);
    std::lock_guard<std::mutex> lock(mutex_);
    blocks_[static_cast<const char*>(p)] = bytes == 0 ? 1 : bytes;
    ++allocations;
    return p;
  }
  void free(void* p) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks_.erase(static_cast<const char*>(p));
    }
    std::free(p);
  }
  std::unique_ptr<FakeStream> create_stream() { return std::make_unique<FakeStream>(); }
  FakeStream& default_stream() { return default_stream_; }

  const char* name() const override { return "fake-device"; }
  bool is_device_memory(const void* p) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    const char* c = static_cast<const char*>(p);
    auto it = blocks_.upper_bound(c);
    if (it == blocks_.begin()) return false;
    --it;
    return c < it->first + it->second;
  }
  Result device_of(const void* p, int* device) const override {
    if (!is_device_memory(p)) return fail(qcclInvalidArgument, "{} is not fake device memory", p);
    *device = 0;
    return qcclSuccess;
  }
  Result set_device(int device, int* previous) override {
    *previous = current_device();
    current_device() = device;
    ++device_switches;
    return qcclSuccess;
  }
  Result make_codec(int device, std::unique_ptr<Codec>* out) override {
    (void)device;
    ++codecs_made;
    *out = std::make_unique<FakeDeviceCodec>(*this);
    return qcclSuccess;
  }
  static int& current_device() {
    thread_local int device = -1;
    return device;
  }

  std::atomic<int> allocations{0}, syncs{0}, device_switches{0}, codecs_made{0};

 private:
  mutable std::mutex mutex_;
  std::map<const char*, uint64_t> blocks_;
  FakeStream default_stream_;
};

inline FakeDeviceCodec::FakeDeviceCodec(FakeDevice& device)
    : device_(device), stream_(&device.default_stream()) {}
inline bool FakeDeviceCodec::owns(const void* p) const {
  return device_.is_device_memory(p);
}
inline void FakeDeviceCodec::set_stream(void* stream) {
  stream_ = stream != nullptr ? static_cast<FakeStream*>(stream) : &device_.default_stream();
}
inline void FakeDeviceCodec::enqueue(std::function<void()> task) {
  stream_->enqueue(std::move(task));
}
inline Result FakeDeviceCodec::synchronize() {
  ++device_.syncs;
  stream_->wait();
  return qcclSuccess;
}
inline Result FakeDeviceCodec::allocate(uint64_t bytes, void** out) {
  *out = device_.alloc(bytes);
  return qcclSuccess;
}
inline void FakeDeviceCodec::release(void* p) {
  device_.free(p);
}

// NCCL's shape over the fake device: a transport that takes device memory,
// ordered on the stream given to set_stream (it waits for the stream's
// earlier work, then moves the bytes through `inner`).
class StreamOrderedTransport final : public Transport {
 public:
  StreamOrderedTransport(std::unique_ptr<Transport> inner, FakeDevice& device)
      : inner_(std::move(inner)), device_(device) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  bool accepts_device_memory() const override { return true; }
  void set_stream(void* stream) override {
    stream_ = stream != nullptr ? static_cast<FakeStream*>(stream) : &device_.default_stream();
  }
  Result allgatherv(const void* send, uint64_t send_bytes, void* recv, const uint64_t* recv_bytes,
                    const uint64_t* recv_offsets) override {
    order();
    const Result r = inner_->allgatherv(send, send_bytes, recv, recv_bytes, recv_offsets);
    // Only a payload (it starts with the magic), never a control message
    // such as the call agreement, so every rank reaches the decode.
    if (r == qcclSuccess && corrupt_next_payload && send_bytes > 64 && is_payload(send)) {
      corrupt_next_payload = false;
      static_cast<unsigned char*>(recv)[recv_offsets[0] + 40] ^= 0x5a;  // in the header/table
    }
    return r;
  }
  Result alltoallv(const void* send, const uint64_t* send_bytes, const uint64_t* send_offsets,
                   void* recv, const uint64_t* recv_bytes, const uint64_t* recv_offsets) override {
    order();
    return inner_->alltoallv(send, send_bytes, send_offsets, recv, recv_bytes, recv_offsets);
  }
  Result allreduce_sum(double* values, size_t n) override {
    return inner_->allreduce_sum(values, n);
  }
  Result allreduce_passthrough(const void* send, void* recv, uint64_t count,
                               DataType dtype) override {
    order();
    return inner_->allreduce_passthrough(send, recv, count, dtype);
  }
  Result barrier() override { return inner_->barrier(); }

  bool corrupt_next_payload = false;  // flip a header byte of rank 0's next payload

 private:
  void order() { (stream_ != nullptr ? stream_ : &device_.default_stream())->wait(); }
  static bool is_payload(const void* message) {
    uint32_t magic = 0;
    std::memcpy(&magic, message, sizeof(magic));
    return magic == kPayloadMagic;
  }
  std::unique_ptr<Transport> inner_;
  FakeDevice& device_;
  FakeStream* stream_ = nullptr;
};

}  // namespace qccl::fake
