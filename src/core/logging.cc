#include "core/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>

namespace qccl::log {
namespace {

std::atomic<Level> g_level{Level::kWarn};

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kTrace: return spdlog::level::trace;
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::warn;
}

std::shared_ptr<spdlog::logger> make_logger() {
  // stderr, so that benchmark tables on stdout stay machine-readable.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("qccl", sink);
  logger->set_pattern("qccl %^%l%$: %v");
  logger->set_level(to_spdlog(g_level.load()));
  return logger;
}

spdlog::logger& instance() {
  static std::shared_ptr<spdlog::logger> logger = make_logger();
  return *logger;
}

}  // namespace

bool parse_level(const std::string& text, Level* out) {
  std::string upper(text);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  static const std::pair<const char*, Level> kNames[] = {
      {"TRACE", Level::kTrace}, {"DEBUG", Level::kDebug}, {"INFO", Level::kInfo},
      {"WARN", Level::kWarn},   {"ERROR", Level::kError}, {"OFF", Level::kOff}};
  for (const auto& [name, value] : kNames) {
    if (upper == name) {
      *out = value;
      return true;
    }
  }
  return false;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kTrace: return "TRACE";
    case Level::kDebug: return "DEBUG";
    case Level::kInfo: return "INFO";
    case Level::kWarn: return "WARN";
    case Level::kError: return "ERROR";
    case Level::kOff: return "OFF";
  }
  return "WARN";
}

void set_level(Level level) {
  g_level.store(level);
  instance().set_level(to_spdlog(level));
}

Level level() {
  return g_level.load();
}

void set_rank(int rank) {
  instance().set_pattern(rank < 0 ? std::string("qccl %^%l%$: %v")
                                  : fmt::format("qccl [rank {}] %^%l%$: %v", rank));
}

spdlog::logger& logger() {
  return instance();
}

}  // namespace qccl::log
