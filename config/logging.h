// One spdlog logger per module, all writing to stderr through one shared sink.
//
// Messages are an event then key=value pairs: log->warn("upstream down addr={} err={}", a, e).
// Levels: error = an operator must act; warn = degraded; info = lifecycle; debug/trace = per
// request (compiled out of release builds by SPDLOG_ACTIVE_LEVEL).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string_view>

namespace corral::logging {

// Returns the module's logger, creating it on first use (thread-safe).
std::shared_ptr<spdlog::logger> get(std::string_view module);

// Parses "trace".."off"; std::nullopt for anything else.
std::optional<spdlog::level::level_enum> parseLevel(std::string_view name);

// Sets the level of every module logger, present and future.
void setLevel(spdlog::level::level_enum level);

}  // namespace corral::logging
