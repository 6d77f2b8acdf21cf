// gtest main for the multi-rank tests: MPI_Init_thread/MPI_Finalize around the
// tests, only rank 0 prints the gtest output, other ranks print only their
// failures (prefixed with the rank), and every rank exits non-zero when any
// rank failed, so mpirun and ctest see the failure whichever rank it was on.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <cstring>

namespace {

// MPI_THREAD_MULTIPLE (the engine's thread runs beside direct calls), or
// the level named by --mpi-thread-level=serialized|funneled|single (tests
// of the engine's refusal; test/mpi/CMakeLists.txt).
int requested_thread_level(int argc, char** argv) {
  const char* flag = "--mpi-thread-level=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], flag, std::strlen(flag)) != 0) continue;
    const char* level = argv[i] + std::strlen(flag);
    if (std::strcmp(level, "serialized") == 0) return MPI_THREAD_SERIALIZED;
    if (std::strcmp(level, "funneled") == 0) return MPI_THREAD_FUNNELED;
    if (std::strcmp(level, "single") == 0) return MPI_THREAD_SINGLE;
  }
  return MPI_THREAD_MULTIPLE;
}

// Prints a non-zero rank's failed assertions, which its silenced default
// printer would swallow.
class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.summary());
  }
  void OnTestEnd(const testing::TestInfo& info) override {
    if (info.result()->Failed())
      std::fprintf(stderr, "[rank %d] FAILED %s.%s\n", rank_, info.test_suite_name(), info.name());
  }

 private:
  int rank_;
};

}  // namespace

#if defined(__SANITIZE_THREAD__)
// Open MPI is not built with TSan. Under MPI_THREAD_MULTIPLE (the engine's
// thread beside direct calls) whichever thread polls MPI progresses every
// request: it copies data into (or out of) another thread's buffer, which
// that thread uses after its own MPI_Test said done, ordered by atomics TSan
// cannot see; and it takes its BTL locks (only under MULTIPLE) in an order
// TSan flags between connection setup and MPI_Finalize. So what
// uninstrumented libraries do is not reported (their locks still order
// instrumented code); races in qccl and the tests still are (checked with a
// deliberate one). TSAN_OPTIONS still overrides this default.
extern "C" const char* __tsan_default_options() {
  return "ignore_noninstrumented_modules=1";
}
#endif

int main(int argc, char** argv) {
  int provided = 0;
  const int requested = requested_thread_level(argc, argv);
  MPI_Init_thread(&argc, &argv, requested, &provided);
  if (provided < requested) {
    std::fprintf(stderr, "MPI provides thread level %d, the tests need %d\n", provided, requested);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int any_failed = failed;
  MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any_failed && !failed) std::fprintf(stderr, "a test failed on another rank\n");
  MPI_Finalize();
  return any_failed;
}
