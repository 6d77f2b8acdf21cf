#include "engine/timeline.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/logging.h"

namespace qccl {
namespace {

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// errno values that say the path cannot be used as given (the caller's to
// fix); anything else (no file descriptors, no memory, I/O error) is the
// system's.
bool path_errno(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case EISDIR:
    case EACCES:
    case EPERM:
    case EROFS:
    case ENAMETOOLONG:
    case ELOOP:
    case ETXTBSY:
    case ENXIO: return true;
    default: return false;
  }
}

}  // namespace

// The unwritten events are lost either way; close() is where a failure is
// reported (Engine::stop), so the destructor only tidies up.
Timeline::~Timeline() {
  if (file_ == nullptr) return;
  flush();
  std::fclose(file_);
}

Result Timeline::open(const std::string& path, int rank) {
  if (path.empty()) return qcclSuccess;
  if (file_ != nullptr)
    return fail(qcclInternalError, "QCCL_TIMELINE: the timeline is already open ('{}')", path_);
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr) {
    const int err = errno;
    return fail(path_errno(err) ? qcclInvalidArgument : qcclSystemError,
                "QCCL_TIMELINE must be a writable file path: cannot create '{}': {}", path,
                std::strerror(err));
  }
  path_ = path;
  write_error_.clear();
  rank_ = rank;
  if (std::fputs("[\n", file_) == EOF) {
    write_failed("writing");
    return qcclSuccess;
  }
  end_of_events_ = std::ftell(file_);
  if (end_of_events_ < 0) {
    write_failed("reading the offset of");
    return qcclSuccess;
  }
  if (std::fputs("\n]\n", file_) == EOF || std::fflush(file_) != 0) write_failed("writing");
  return qcclSuccess;
}

void Timeline::write_failed(const char* what) {
  const int err = errno;
  if (!write_error_.empty()) return;
  write_error_ = fmt::format("QCCL_TIMELINE: {} '{}' failed: {}", what, path_, std::strerror(err));
  pending_.clear();
  QCCL_LOG_WARN("{}; no more timeline events are written (qcclEngineStop reports this)",
                write_error_);
}

Result Timeline::close() {
  if (file_ != nullptr) {
    flush();
    if (std::fclose(file_) != 0) write_failed("closing");
    file_ = nullptr;
  }
  if (!write_error_.empty()) return set_error(qcclSystemError, write_error_);
  return qcclSuccess;
}

int64_t Timeline::now_us() {
  // System clock so that the files of several ranks can be merged.
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Timeline::add_event(const std::string& json) {
  if (any_event_ || !pending_.empty()) pending_ += ",\n";
  pending_ += json;
}

int Timeline::track_of(const std::string& tensor) {
  auto it = tracks_.find(tensor);
  if (it != tracks_.end()) return it->second;
  const int tid = static_cast<int>(tracks_.size()) + 1;
  tracks_.emplace(tensor, tid);
  add_event(
      fmt::format(R"({{"name":"thread_name","ph":"M","pid":{},"tid":{},"args":{{"name":"{}"}}}})",
                  rank_, tid, json_escape(tensor)));
  return tid;
}

void Timeline::span(const std::string& tensor, const char* phase, int64_t start_us,
                    int64_t end_us) {
  if (!enabled()) return;
  const int tid = track_of(tensor);
  add_event(fmt::format(R"({{"name":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":{}}})", phase,
                        start_us, end_us > start_us ? end_us - start_us : 0, rank_, tid));
}

void Timeline::flush() {
  if (!enabled() || pending_.empty()) return;
  if (std::fseek(file_, end_of_events_, SEEK_SET) != 0) return write_failed("seeking in");
  if (std::fputs(pending_.c_str(), file_) == EOF) return write_failed("writing");
  any_event_ = true;
  pending_.clear();
  const long end = std::ftell(file_);
  if (end < 0) return write_failed("reading the offset of");
  end_of_events_ = end;
  if (std::fputs("\n]\n", file_) == EOF || std::fflush(file_) != 0) write_failed("writing");
}

}  // namespace qccl
