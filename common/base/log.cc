#include "common/base/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>
#include <string>

namespace zm {
namespace {

std::mutex g_mu;
spdlog::level::level_enum g_level = spdlog::level::info;
LogFormat g_format = LogFormat::kText;

void Apply(spdlog::logger& logger) {
  logger.set_level(g_level);
  if (g_format == LogFormat::kJson) {
    logger.set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","scope":"%n","msg":"%v"})",
        spdlog::pattern_time_type::utc);
  } else {
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %n: %v", spdlog::pattern_time_type::utc);
  }
  logger.flush_on(spdlog::level::trace);
}

}  // namespace

void ConfigureLogging(std::string_view level, LogFormat format) {
  std::lock_guard lock(g_mu);
  g_level = spdlog::level::from_str(std::string(level));
  g_format = format;
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { Apply(*l); });
}

spdlog::logger& Log(std::string_view subsystem) {
  std::lock_guard lock(g_mu);
  std::string name(subsystem);
  if (auto existing = spdlog::get(name)) return *existing;
  auto logger = spdlog::stdout_logger_mt(name);
  Apply(*logger);
  return *logger;
}

}  // namespace zm
