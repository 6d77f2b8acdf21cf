// A wait that always ends (docs/gpu.md "NCCL faults"): polls the awaited
// work and the communicator's asynchronous state until the work is done,
// the communicator reports an error, or QCCL_TIMEOUT_S has passed. Every
// way of ending other than success aborts the communicator exactly once,
// so nothing left on the device waits for a peer that is gone.
//
// NcclTransport waits through this instead of cudaStreamSynchronize (which
// never returns when a peer has died); the work is cudaStreamQuery, the
// communicator ncclCommGetAsyncError, the abort ncclCommAbort. The loop
// itself is plain C++ over callbacks, so test/unit/deadline_wait_test.cc
// drives every branch with fakes on the CPU.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "core/result.h"

namespace qccl {

// One look at something being waited for.
struct Poll {
  enum class State { kReady, kPending, kFailed };
  State state = State::kReady;
  Result code = qcclSuccess;  // kFailed: what the wait returns
  std::string text;           // kFailed: the library's own words

  static Poll ready() { return Poll{}; }
  static Poll pending() { return Poll{State::kPending, qcclSuccess, {}}; }
  static Poll failed(Result code, std::string text) {
    return Poll{State::kFailed, code, std::move(text)};
  }
};

struct DeadlineWaitOps {
  using Clock = std::chrono::steady_clock;

  // The work (cudaStreamQuery): kReady once it has completed. Empty: there
  // is no work, only the communicator to wait for (a non-blocking NCCL
  // communicator still in ncclInProgress).
  std::function<Poll()> query_work;
  // The communicator's asynchronous state (ncclCommGetAsyncError): kReady
  // when idle or healthy, kPending while a non-blocking operation is in
  // progress, kFailed on an error. Required.
  std::function<Poll()> query_comm;
  // Called exactly once when the wait fails, never on success. Empty: the
  // communicator is not ours to abort (qcclCommInitNccl's).
  std::function<void()> abort;
  // Time and the pause between polls; empty: steady_clock and
  // std::this_thread (a zero pause yields the core).
  std::function<Clock::time_point()> now;
  std::function<void(std::chrono::microseconds)> sleep;
};

// Pause before poll `n` (0-based): none for the first polls, so a short
// wait costs no sleep, then doubling from 1 us up to 1 ms, which bounds
// both the latency added to a long wait and the CPU a stalled one burns.
std::chrono::microseconds poll_pause(unsigned n);

// Waits as above. Returns qcclSuccess when the work is done and the
// communicator is neither failed nor in progress. Otherwise, after
// ops.abort(), records a message naming `op` (what follows from the abort
// is the caller's to add) and returns:
// - qcclTimeout once `timeout_s` has passed (the message names the timeout
//   and says a rank stopped participating or is in another collective);
// - the communicator's Poll code (qcclRemoteError, qcclTransportError) with
//   its text when it reports an error, even while the work still runs;
// - the work's Poll code with its text when querying the work fails.
// The deadline is checked after each poll, so work that is done by then
// succeeds however late it is noticed; timeout_s <= 0 polls once.
Result wait_with_deadline(const DeadlineWaitOps& ops, double timeout_s, const char* op);

}  // namespace qccl
