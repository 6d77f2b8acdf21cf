#include "engine/timeline.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>

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

}  // namespace

Timeline::~Timeline() {
  if (file_ == nullptr) return;
  flush();
  std::fclose(file_);
}

Result Timeline::open(const std::string& path, int rank) {
  if (path.empty()) return qcclSuccess;
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr)
    return fail(qcclSystemError, "QCCL_TIMELINE: cannot create '{}': {}", path,
                std::strerror(errno));
  rank_ = rank;
  std::fputs("[\n", file_);
  end_of_events_ = std::ftell(file_);
  std::fputs("\n]\n", file_);
  std::fflush(file_);
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
  if (file_ == nullptr) return;
  const int tid = track_of(tensor);
  add_event(fmt::format(R"({{"name":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":{}}})", phase,
                        start_us, end_us > start_us ? end_us - start_us : 0, rank_, tid));
}

void Timeline::flush() {
  if (file_ == nullptr || pending_.empty()) return;
  std::fseek(file_, end_of_events_, SEEK_SET);
  std::fputs(pending_.c_str(), file_);
  any_event_ = true;
  pending_.clear();
  end_of_events_ = std::ftell(file_);
  std::fputs("\n]\n", file_);
  std::fflush(file_);
}

}  // namespace qccl
