// Fails safe: QCCL_TIMELINE. A path that cannot be written fails the
// communicator's creation (qcclInvalidArgument naming the variable and the
// path, on every rank through the configuration agreement), or the
// engine's start when it became unwritable since; a write that fails while
// the engine runs (disk full) is returned by qcclEngineStop as
// qcclSystemError naming the path instead of being dropped. Over the
// in-process fake transport, through the public API.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "engine_completion.h"
#include "fake_transport.h"
#include "qccl/qccl.h"

namespace {

using namespace qccl::fake;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

using qccl::test::Completion;

// A fresh empty directory under TMPDIR (or /tmp), removed with its files.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base != nullptr && base[0] != '\0' ? base : "/tmp") + "/qccl_timeline_XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    for (const std::string& f : files_) {
      ::rmdir(f.c_str());  // a file replaced by a directory
      std::remove(f.c_str());
    }
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

// One rank over the fake transport. Returns the init result; on failure
// the ctx (still the caller's) is deleted here.
qcclResult_t one_rank_comm(FakeWorld* world, const char* timeline, qcclComm_t* comm) {
  auto* ctx = new FakeRank(world, 0);
  const qcclTransportOps_t ops = fake_ops(ctx);
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.method = "none";
  config.timeoutS = "60";
  config.timeline = timeline;
  const qcclResult_t r = qcclCommInitTransport(comm, &ops, &config);
  if (r != qcclSuccess) delete ctx;
  return r;
}

// One tensor through the engine; its callback's result.
qcclResult_t reduce_one_tensor(qcclComm_t comm, const char* name) {
  std::vector<float> buf(64, 1.0f);
  Completion done;
  const qcclResult_t r = qcclEnqueueAllReduce(comm, name, buf.data(), buf.size(), qcclFloat32,
                                              qcclSum, &Completion::callback, &done);
  if (r != qcclSuccess) return r;
  if (!done.wait(60)) return qcclTimeout;
  return done.result;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Communicator creation rejects a path the engine could not create,
// without creating anything.
void expect_init_rejects(const std::string& path, const std::string& why) {
  FakeWorld world(1);
  qcclComm_t comm = nullptr;
  EXPECT_EQ(one_rank_comm(&world, path.c_str(), &comm), qcclInvalidArgument) << path;
  EXPECT_EQ(comm, nullptr);
  const std::string error = qcclGetLastError(nullptr);
  EXPECT_TRUE(contains(error, "QCCL_TIMELINE must be a writable file path")) << error;
  EXPECT_TRUE(contains(error, "'" + path + "'")) << error;
  EXPECT_TRUE(contains(error, why)) << error;
  if (comm != nullptr) qcclCommDestroy(comm);
}

TEST(TimelineCheck, MissingDirectoryFailsCommunicatorCreation) {
  expect_init_rejects("/nonexistent-qccl-dir/x.json", "/nonexistent-qccl-dir");
}

TEST(TimelineCheck, DirectoryFailsCommunicatorCreation) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  expect_init_rejects(dir.path(), "it is a directory");
  expect_init_rejects(dir.path() + "/", "it is a directory");
}

TEST(TimelineCheck, FileUsedAsADirectoryFailsCommunicatorCreation) {
  TempDir dir;
  const std::string file = dir.file("plain");
  std::ofstream(file) << "x";
  expect_init_rejects(file + "/x.json", std::strerror(ENOTDIR));
}

TEST(TimelineCheck, ConfigValidateRejectsItToo) {
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.timeline = "/nonexistent-qccl-dir/x.json";
  EXPECT_EQ(qcclConfigValidate(&config), qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(nullptr), "/nonexistent-qccl-dir/x.json"))
      << qcclGetLastError(nullptr);
  config.timeline = "";  // empty: no timeline
  EXPECT_EQ(qcclConfigValidate(&config), qcclSuccess) << qcclGetLastError(nullptr);
}

// Checked, not created: validation leaves no file behind.
TEST(TimelineCheck, ValidationCreatesNothing) {
  TempDir dir;
  const std::string path = dir.file("t.json");
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.timeline = path.c_str();
  EXPECT_EQ(qcclConfigValidate(&config), qcclSuccess) << qcclGetLastError(nullptr);
  struct stat st;
  EXPECT_NE(::stat(path.c_str(), &st), 0);
}

// Writable at creation, gone at qcclEngineStart: the start fails with
// qcclInvalidArgument naming the path, and the communicator stays usable.
TEST(TimelineCheck, PathGoneBeforeEngineStartFailsTheStart) {
  TempDir dir;
  const std::string sub = dir.file("sub");
  ASSERT_EQ(::mkdir(sub.c_str(), 0700), 0);
  const std::string path = sub + "/t.json";
  FakeWorld world(1);
  qcclComm_t comm = nullptr;
  ASSERT_EQ(one_rank_comm(&world, path.c_str(), &comm), qcclSuccess) << qcclGetLastError(nullptr);
  ASSERT_EQ(::rmdir(sub.c_str()), 0);
  EXPECT_EQ(qcclEngineStart(comm), qcclInvalidArgument);
  const std::string error = qcclGetLastError(comm);
  EXPECT_TRUE(contains(error, "QCCL_TIMELINE")) << error;
  EXPECT_TRUE(contains(error, "'" + path + "'")) << error;
  EXPECT_TRUE(contains(error, std::strerror(ENOENT))) << error;
  // Not left half-started.
  EXPECT_EQ(qcclEngineStop(comm), qcclInvalidUsage);
  float x[2] = {1, 2};
  EXPECT_EQ(qcclAllReduce(x, x, 2, qcclFloat32, qcclSum, comm, nullptr), qcclSuccess);
  EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
}

TEST(TimelineCheck, PathTurnedIntoADirectoryFailsTheStart) {
  TempDir dir;
  const std::string path = dir.file("t.json");
  FakeWorld world(1);
  qcclComm_t comm = nullptr;
  ASSERT_EQ(one_rank_comm(&world, path.c_str(), &comm), qcclSuccess) << qcclGetLastError(nullptr);
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  EXPECT_EQ(qcclEngineStart(comm), qcclInvalidArgument);
  EXPECT_TRUE(contains(qcclGetLastError(comm), "'" + path + "'")) << qcclGetLastError(comm);
  EXPECT_TRUE(contains(qcclGetLastError(comm), std::strerror(EISDIR))) << qcclGetLastError(comm);
  EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
}

// The good case still works and stops cleanly with a complete trace.
TEST(TimelineCheck, WritableTimelineStopsCleanly) {
  TempDir dir;
  const std::string path = dir.file("t.json");
  FakeWorld world(1);
  qcclComm_t comm = nullptr;
  ASSERT_EQ(one_rank_comm(&world, path.c_str(), &comm), qcclSuccess) << qcclGetLastError(nullptr);
  ASSERT_EQ(qcclEngineStart(comm), qcclSuccess) << qcclGetLastError(comm);
  EXPECT_EQ(reduce_one_tensor(comm, "grad"), qcclSuccess);
  EXPECT_EQ(qcclEngineStop(comm), qcclSuccess) << qcclGetLastError(comm);
  const std::string text = read_file(path);
  EXPECT_EQ(text.rfind("[\n", 0), 0u) << text;
  EXPECT_TRUE(contains(text, "\"COMMUNICATE\"")) << text;
  EXPECT_EQ(text.substr(text.size() - 3), "\n]\n") << text;
  EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
}

// Disk full: /dev/full opens but every write fails with ENOSPC. The
// tensors are still reduced; qcclEngineStop returns qcclSystemError naming
// the path.
TEST(TimelineCheck, DiskFullIsReportedByEngineStop) {
  FakeWorld world(1);
  qcclComm_t comm = nullptr;
  ASSERT_EQ(one_rank_comm(&world, "/dev/full", &comm), qcclSuccess) << qcclGetLastError(nullptr);
  ASSERT_EQ(qcclEngineStart(comm), qcclSuccess) << qcclGetLastError(comm);
  EXPECT_EQ(reduce_one_tensor(comm, "a"), qcclSuccess);
  EXPECT_EQ(reduce_one_tensor(comm, "b"), qcclSuccess);
  EXPECT_EQ(qcclEngineStop(comm), qcclSystemError);
  const std::string error = qcclGetLastError(comm);
  EXPECT_TRUE(contains(error, "QCCL_TIMELINE")) << error;
  EXPECT_TRUE(contains(error, "'/dev/full'")) << error;
  EXPECT_TRUE(contains(error, std::strerror(ENOSPC))) << error;
  // Stopped for good: a second stop says the engine is not started.
  EXPECT_EQ(qcclEngineStop(comm), qcclInvalidUsage);
  EXPECT_EQ(qcclCommDestroy(comm), qcclSuccess);
}

// A write that fails while the engine runs (after the file was created and
// its header written): a file-size limit makes the first cycle's flush
// fail with EFBIG. In a child process, since the limit is per process.
TEST(TimelineCheckDeathTest, WriteFailingMidRunIsReportedByEngineStop) {
  TempDir dir;
  const std::string path = dir.file("t.json");
  EXPECT_EXIT(
      {
        std::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead
        FakeWorld world(1);
        qcclComm_t comm = nullptr;
        if (one_rank_comm(&world, path.c_str(), &comm) != qcclSuccess) std::_Exit(2);
        struct rlimit limit;
        if (::getrlimit(RLIMIT_FSIZE, &limit) != 0) std::_Exit(3);
        const rlim_t soft = limit.rlim_cur;
        limit.rlim_cur = 64;  // the header (5 bytes) fits, the first events do not
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) std::_Exit(3);
        if (qcclEngineStart(comm) != qcclSuccess) std::_Exit(4);
        const qcclResult_t reduced = reduce_one_tensor(comm, "a_tensor_with_a_long_name");
        const qcclResult_t stopped = qcclEngineStop(comm);
        const std::string error = qcclGetLastError(comm);
        limit.rlim_cur = soft;
        ::setrlimit(RLIMIT_FSIZE, &limit);
        std::fprintf(stderr, "reduced=%d stopped=%d error=%s\n", reduced, stopped, error.c_str());
        const bool ok = reduced == qcclSuccess && stopped == qcclSystemError &&
                        contains(error, "'" + path + "'") && contains(error, std::strerror(EFBIG));
        std::_Exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
