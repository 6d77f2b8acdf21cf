// Logging through spdlog, filtered by QCCL_DEBUG, every line prefixed with
// the rank. TRACE is compiled out of release (NDEBUG) builds.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace qccl::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Parses TRACE|DEBUG|INFO|WARN|ERROR|OFF (case-insensitive).
bool parse_level(const std::string& text, Level* out);
const char* level_name(Level level);

void set_level(Level level);
Level level();
void set_rank(int rank);  // -1: no rank prefix
spdlog::logger& logger();

}  // namespace qccl::log

#define QCCL_LOG_DEBUG(...) ::qccl::log::logger().debug(__VA_ARGS__)
#define QCCL_LOG_INFO(...) ::qccl::log::logger().info(__VA_ARGS__)
#define QCCL_LOG_WARN(...) ::qccl::log::logger().warn(__VA_ARGS__)
#define QCCL_LOG_ERROR(...) ::qccl::log::logger().error(__VA_ARGS__)
#ifdef NDEBUG
#define QCCL_LOG_TRACE(...) ((void)0)
#else
#define QCCL_LOG_TRACE(...) ::qccl::log::logger().trace(__VA_ARGS__)
#endif
