// One engine callback awaited by a unit test: pass &Completion::callback
// and the object as `user`, then wait().
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "qccl/qccl.h"

namespace qccl::test {

struct Completion {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  qcclResult_t result = qcclInternalError;
  std::string error;
  // Runs on the engine's thread inside the callback, before `done` is set.
  std::function<void()> then;
  static void callback(qcclResult_t r, const char*, const char* error, void* user) {
    auto* self = static_cast<Completion*>(user);
    if (self->then) self->then();
    std::lock_guard<std::mutex> lock(self->mutex);
    self->result = r;
    self->error = error;
    self->done = true;
    self->cv.notify_all();
  }
  // False if the callback has not come within `seconds`.
  bool wait(int seconds = 60) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, std::chrono::seconds(seconds), [&] { return done; });
  }
};

}  // namespace qccl::test
