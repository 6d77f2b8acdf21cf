// QCCL_TIMELINE: a chrome://tracing / Perfetto JSON array of complete ("X")
// events, one track (tid) per tensor name, pid = rank. The file is valid
// JSON whenever no flush is in progress: after each flush the closing
// bracket is written and the next flush overwrites it (docs/design.md §8).
// Used by the cycle thread only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "core/result.h"

namespace qccl {

// Fails safe: a path that cannot be created is qcclInvalidArgument at
// open (engine start; config.cc checks it earlier, at communicator
// creation). A write that fails later (disk full, I/O error) is logged once,
// stops the timeline (no more events are buffered), and is returned by
// close() as qcclSystemError naming the path, so qcclEngineStop reports it.
class Timeline {
 public:
  ~Timeline();
  // Creates (truncates) `path`; an empty path disables the timeline.
  Result open(const std::string& path, int rank);
  bool enabled() const { return file_ != nullptr && write_error_.empty(); }

  // A span [start_us, end_us] of `phase` ("NEGOTIATE", ...) for `tensor`.
  void span(const std::string& tensor, const char* phase, int64_t start_us, int64_t end_us);
  // Writes the buffered events and the closing bracket.
  void flush();
  // Flushes and closes the file: qcclSystemError (recorded with fail())
  // if any write since open failed or the close did. Idempotent.
  Result close();

  static int64_t now_us();

 private:
  int track_of(const std::string& tensor);
  void add_event(const std::string& json);
  // Records the first failed write (errno) and stops the timeline.
  void write_failed(const char* what);

  std::FILE* file_ = nullptr;
  std::string path_;
  std::string write_error_;  // the first failed write, "" while all went well
  int rank_ = 0;
  long end_of_events_ = 0;  // file offset where the closing "\n]\n" starts
  bool any_event_ = false;
  std::string pending_;
  std::map<std::string, int> tracks_;
};

}  // namespace qccl
