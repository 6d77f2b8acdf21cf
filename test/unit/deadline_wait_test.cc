// wait_with_deadline (src/transport/deadline_wait.h), the wait NcclTransport
// uses instead of cudaStreamSynchronize, driven with fakes in place of
// cudaStreamQuery / ncclCommGetAsyncError / ncclCommAbort: work that
// finishes succeeds without an abort; a stall, an asynchronous error or a
// failed query ends the wait with the right code and aborts exactly once;
// a non-blocking communicator's ncclInProgress is waited out, not failed.
#include "transport/deadline_wait.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>

namespace qccl {
namespace {

using Clock = DeadlineWaitOps::Clock;
using std::chrono::microseconds;

// Real-clock tests use a 50 ms timeout; a wait must end within this bound
// after its deadline (generous for a loaded CI machine, far below a hang).
constexpr double kShortTimeoutS = 0.05;
// For waits that must succeed after a few polls: a deadline no loaded
// machine reaches (a short one made these flaky under ASan at ctest -j2).
constexpr double kAmpleTimeoutS = 60.0;
constexpr double kWallBoundS = 2.0;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Answers `first` `count` times, then `last`.
struct Sequence {
  int count;
  Poll first;
  Poll last;
  int polls = 0;
  Poll operator()() { return polls++ < count ? first : last; }
};

TEST(DeadlineWait, WorkThatCompletesInTimeSucceedsWithoutAbort) {
  Sequence work{5, Poll::pending(), Poll::ready()};
  int aborts = 0;
  DeadlineWaitOps ops;
  ops.query_work = [&] { return work(); };
  ops.query_comm = [] { return Poll::ready(); };
  ops.abort = [&] { ++aborts; };
  const auto start = Clock::now();
  EXPECT_EQ(wait_with_deadline(ops, kAmpleTimeoutS, "barrier"), qcclSuccess);
  EXPECT_EQ(work.polls, 6);
  EXPECT_EQ(aborts, 0);
  EXPECT_LT(seconds_since(start), kWallBoundS);
}

TEST(DeadlineWait, StalledWorkTimesOutAfterTheDeadlineAndAbortsOnce) {
  int aborts = 0, comm_polls = 0;
  DeadlineWaitOps ops;
  ops.query_work = [] { return Poll::pending(); };
  ops.query_comm = [&] {
    ++comm_polls;
    return Poll::ready();
  };
  ops.abort = [&] { ++aborts; };
  clear_thread_error();
  const auto start = Clock::now();
  EXPECT_EQ(wait_with_deadline(ops, kShortTimeoutS, "allreduce_sum"), qcclTimeout);
  const double elapsed = seconds_since(start);
  EXPECT_GE(elapsed, kShortTimeoutS);  // not before the deadline
  EXPECT_LT(elapsed, kShortTimeoutS + kWallBoundS);
  EXPECT_EQ(aborts, 1);
  EXPECT_GT(comm_polls, 1);  // the communicator is watched while waiting
  const std::string& message = thread_last_error();
  EXPECT_TRUE(contains(message, "allreduce_sum")) << message;
  EXPECT_TRUE(contains(message, "QCCL_TIMEOUT_S=0.05 s")) << message;
  EXPECT_TRUE(contains(message, "still running on the device")) << message;
}

TEST(DeadlineWait, AsyncErrorWhileWaitingIsReportedAtOnceAndAbortsOnce) {
  Sequence comm{3, Poll::ready(),
                Poll::failed(qcclRemoteError, "NCCL async error: remote process exited")};
  int aborts = 0, work_polls = 0;
  DeadlineWaitOps ops;
  ops.query_work = [&] {
    ++work_polls;
    return Poll::pending();
  };
  ops.query_comm = [&] { return comm(); };
  ops.abort = [&] { ++aborts; };
  const auto start = Clock::now();
  // A long timeout: the error must end the wait, not the deadline.
  EXPECT_EQ(wait_with_deadline(ops, 60.0, "allgatherv (host buffers)"), qcclRemoteError);
  EXPECT_LT(seconds_since(start), kWallBoundS);
  EXPECT_EQ(aborts, 1);
  EXPECT_EQ(comm.polls, 4);
  EXPECT_EQ(work_polls, 3);  // the failed look at the communicator ends it
  const std::string& message = thread_last_error();
  EXPECT_TRUE(contains(message, "allgatherv (host buffers)")) << message;
  EXPECT_TRUE(contains(message, "remote process exited")) << message;
}

TEST(DeadlineWait, AsyncErrorWinsOverFinishedWork) {
  int aborts = 0;
  DeadlineWaitOps ops;
  ops.query_work = [] { return Poll::ready(); };
  ops.query_comm = [] { return Poll::failed(qcclTransportError, "ncclSystemError"); };
  ops.abort = [&] { ++aborts; };
  EXPECT_EQ(wait_with_deadline(ops, kAmpleTimeoutS, "barrier"), qcclTransportError);
  EXPECT_EQ(aborts, 1);
}

TEST(DeadlineWait, InProgressCommunicatorIsWaitedOutNotFailed) {
  Sequence comm{10, Poll::pending(), Poll::ready()};
  int aborts = 0;
  DeadlineWaitOps ops;  // no work: a non-blocking communicator after ncclInProgress
  ops.query_comm = [&] { return comm(); };
  ops.abort = [&] { ++aborts; };
  EXPECT_EQ(wait_with_deadline(ops, kAmpleTimeoutS, "ncclGroupEnd"), qcclSuccess);
  EXPECT_EQ(comm.polls, 11);
  EXPECT_EQ(aborts, 0);
}

TEST(DeadlineWait, FinishedWorkWaitsForAnInProgressCommunicator) {
  Sequence comm{4, Poll::pending(), Poll::ready()};
  DeadlineWaitOps ops;
  ops.query_work = [] { return Poll::ready(); };
  ops.query_comm = [&] { return comm(); };
  EXPECT_EQ(wait_with_deadline(ops, kAmpleTimeoutS, "barrier"), qcclSuccess);
  EXPECT_EQ(comm.polls, 5);
}

TEST(DeadlineWait, InProgressThatNeverEndsTimesOutAndAbortsOnce) {
  int aborts = 0;
  DeadlineWaitOps ops;
  ops.query_comm = [] { return Poll::pending(); };
  ops.abort = [&] { ++aborts; };
  const auto start = Clock::now();
  EXPECT_EQ(wait_with_deadline(ops, kShortTimeoutS, "ncclCommInitRank"), qcclTimeout);
  EXPECT_LT(seconds_since(start), kShortTimeoutS + kWallBoundS);
  EXPECT_EQ(aborts, 1);
  const std::string& message = thread_last_error();
  EXPECT_TRUE(contains(message, "ncclCommInitRank")) << message;
  EXPECT_TRUE(contains(message, "still in progress")) << message;
}

TEST(DeadlineWait, FailedWorkQueryIsReportedWithItsCodeAndAbortsOnce) {
  Sequence work{2, Poll::pending(),
                Poll::failed(qcclUnhandledCudaError, "cudaErrorIllegalAddress")};
  int aborts = 0;
  DeadlineWaitOps ops;
  ops.query_work = [&] { return work(); };
  ops.query_comm = [] { return Poll::ready(); };
  ops.abort = [&] { ++aborts; };
  EXPECT_EQ(wait_with_deadline(ops, 60.0, "alltoallv (host buffers)"), qcclUnhandledCudaError);
  EXPECT_EQ(aborts, 1);
  EXPECT_EQ(work.polls, 3);
  const std::string& message = thread_last_error();
  EXPECT_TRUE(contains(message, "alltoallv (host buffers)")) << message;
  EXPECT_TRUE(contains(message, "cudaErrorIllegalAddress")) << message;
}

TEST(DeadlineWait, WithoutAnAbortCallbackStillEndsTheWait) {
  DeadlineWaitOps ops;  // a borrowed communicator: not ours to abort
  ops.query_work = [] { return Poll::pending(); };
  ops.query_comm = [] { return Poll::ready(); };
  const auto start = Clock::now();
  EXPECT_EQ(wait_with_deadline(ops, kShortTimeoutS, "barrier"), qcclTimeout);
  EXPECT_LT(seconds_since(start), kShortTimeoutS + kWallBoundS);
  ops.query_comm = [] { return Poll::failed(qcclRemoteError, "peer gone"); };
  EXPECT_EQ(wait_with_deadline(ops, kShortTimeoutS, "barrier"), qcclRemoteError);
}

// Virtual time: the deadline is exact, the pauses are the backoff's, and
// work noticed done after the deadline still counts.
struct VirtualClock {
  Clock::time_point t{};
  microseconds slept{0};
  int zero_pauses = 0;
  microseconds longest{0};
};

DeadlineWaitOps virtual_ops(VirtualClock* clock) {
  DeadlineWaitOps ops;
  ops.now = [clock] { return clock->t; };
  ops.sleep = [clock](microseconds d) {
    if (d.count() == 0) ++clock->zero_pauses;
    clock->longest = std::max(clock->longest, d);
    clock->slept += d;
    clock->t += d + microseconds{1};  // each poll costs a microsecond
  };
  return ops;
}

TEST(DeadlineWait, TimesOutAtTheDeadlineWithBoundedPauses) {
  VirtualClock clock;
  int aborts = 0;
  DeadlineWaitOps ops = virtual_ops(&clock);
  ops.query_work = [] { return Poll::pending(); };
  ops.query_comm = [] { return Poll::ready(); };
  ops.abort = [&] { ++aborts; };
  EXPECT_EQ(wait_with_deadline(ops, 5.0, "barrier"), qcclTimeout);
  EXPECT_EQ(aborts, 1);
  const double elapsed = std::chrono::duration<double>(clock.t - Clock::time_point{}).count();
  EXPECT_GE(elapsed, 5.0);
  EXPECT_LT(elapsed, 5.0 + 0.002);  // at most one longest pause (1 ms) late
  EXPECT_EQ(clock.longest, microseconds{1000});
  EXPECT_GT(clock.zero_pauses, 0);  // the first polls do not sleep
}

TEST(DeadlineWait, WorkDoneWhenFirstPolledSucceedsEvenPastTheDeadline) {
  VirtualClock clock;
  int aborts = 0;
  DeadlineWaitOps ops = virtual_ops(&clock);
  ops.query_work = [&clock] {
    clock.t += std::chrono::seconds{10};  // the query itself was slow
    return Poll::ready();
  };
  ops.query_comm = [] { return Poll::ready(); };
  ops.abort = [&] { ++aborts; };
  EXPECT_EQ(wait_with_deadline(ops, 1.0, "barrier"), qcclSuccess);
  EXPECT_EQ(aborts, 0);
}

TEST(DeadlineWait, PollPausesStartAtZeroThenDoubleUpToOneMillisecond) {
  EXPECT_EQ(poll_pause(0), microseconds{0});
  unsigned first_sleep = 0;
  while (poll_pause(first_sleep) == microseconds{0}) ++first_sleep;
  EXPECT_EQ(poll_pause(first_sleep), microseconds{1});
  EXPECT_EQ(poll_pause(first_sleep + 1), microseconds{2});
  for (unsigned n = first_sleep; n < first_sleep + 100; ++n)
    EXPECT_LE(poll_pause(n), poll_pause(n + 1));
  EXPECT_EQ(poll_pause(first_sleep + 100), microseconds{1000});
  EXPECT_EQ(poll_pause(~0u), microseconds{1000});
}

}  // namespace
}  // namespace qccl
