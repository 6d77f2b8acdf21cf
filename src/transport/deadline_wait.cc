#include "transport/deadline_wait.h"

#include <algorithm>
#include <thread>

namespace qccl {
namespace {

constexpr unsigned kPollsWithoutPause = 64;
constexpr std::chrono::microseconds kLongestPause{1000};

// A timeout far beyond any QCCL_TIMEOUT_S (at most a day) still has to fit
// the clock's duration type.
constexpr double kLongestTimeoutS = 1e7;

}  // namespace

std::chrono::microseconds poll_pause(unsigned n) {
  if (n < kPollsWithoutPause) return std::chrono::microseconds{0};
  const unsigned doublings = std::min(n - kPollsWithoutPause, 10u);  // 2^10 us > 1 ms
  return std::min(std::chrono::microseconds{1u << doublings}, kLongestPause);
}

Result wait_with_deadline(const DeadlineWaitOps& ops, double timeout_s, const char* op) {
  using Clock = DeadlineWaitOps::Clock;
  const auto now = [&ops] { return ops.now ? ops.now() : Clock::now(); };
  const auto pause = [&ops](std::chrono::microseconds d) {
    if (ops.sleep) {
      ops.sleep(d);
    } else if (d.count() == 0) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(d);
    }
  };
  const auto abort = [&ops] {
    if (ops.abort) ops.abort();
  };
  const double bounded_s = std::min(std::max(timeout_s, 0.0), kLongestTimeoutS);
  const auto deadline =
      now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(bounded_s));

  for (unsigned n = 0;; ++n) {
    // The communicator first: once it has failed the work may never finish,
    // or finish with data from a dead peer.
    const Poll comm = ops.query_comm();
    if (comm.state == Poll::State::kFailed) {
      abort();
      return fail(comm.code, "{} failed: {}", op, comm.text);
    }
    const Poll work = ops.query_work ? ops.query_work() : Poll::ready();
    if (work.state == Poll::State::kFailed) {
      abort();
      return fail(work.code, "{} failed: {}", op, work.text);
    }
    if (work.state == Poll::State::kReady && comm.state == Poll::State::kReady) return qcclSuccess;
    if (now() >= deadline) {
      abort();
      return fail(qcclTimeout,
                  "{} did not complete within QCCL_TIMEOUT_S={} s ({}): a rank stopped "
                  "participating or is in a different collective",
                  op, timeout_s,
                  work.state == Poll::State::kPending ? "its work is still running on the device"
                                                      : "the communicator is still in progress");
    }
    pause(poll_pause(n));
  }
}

}  // namespace qccl
