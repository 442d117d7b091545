#pragma once
// One logger per subsystem (CONVENTIONS 11): Log("agent"), Log("zds"), Log("bpf"), ...
// Lines go to stdout as text ("2026-11-23T18:00:00.123Z info zds: ...") or JSON.

#include <spdlog/spdlog.h>

#include <string_view>

#include "common/base/strings.h"

namespace zm {

enum class LogFormat { kText, kJson };

// Configures every logger, existing and future. `level` is spdlog's name ("info", "debug").
void ConfigureLogging(std::string_view level, LogFormat format = LogFormat::kText);

// The logger of a subsystem, created on first use.
spdlog::logger& Log(std::string_view subsystem);

}  // namespace zm
